// tulip-echo-server: the seed's companion server, built on tulip.
//
// Default mode: echo the first chunk received, then close (the asyncio docs'
// echo server, which the seed's client talks to). --keep-open echoes every byte
// until the peer half-closes, with backpressure. --unix PATH serves on a Unix
// socket instead of TCP; --udp echoes each datagram to its sender. See
// docs/tools.md.
#include <csignal>
#include <cstdio>
#include <string>

#include "echo_server_protocol.hpp"
#include "tool_support.hpp"
#include "tulip/tulip.hpp"

namespace {

using namespace tulip;
using namespace tulip::tools;

constexpr const char* kProgram = "tulip-echo-server";
constexpr const char* kUsage =
    "usage: tulip-echo-server [--host H] [--port P | --unix PATH] [--udp] [--keep-open]\n"
    "                         [--quiet] [--backlog N] [--reuse-port] [--nodelay | --no-nodelay]\n"
    "                         [--keepalive-idle S] [--keepalive-count N] [--keepalive-interval "
    "S]\n";

// After SIGINT/SIGTERM, connections get this long to flush before they are aborted.
constexpr double kShutdownGraceSeconds = 1.0;

struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8888;
  bool keep_open = false;
  bool quiet = false;
  ServerOptions server;
  std::optional<std::string> unix_path;  // --unix: a Unix socket instead of TCP
  bool udp = false;
  bool host_given = false;
  bool port_given = false;
  bool tcp_tuning_given = false;  // --nodelay, --no-nodelay, --keepalive-*
  bool backlog_given = false;
};

[[noreturn]] void usage_error(const std::string& message) {
  error_line(kProgram, "error: " + message);
  std::fputs(kUsage, stderr);
  std::exit(kExitUsage);
}

Options parse_arguments(int argc, char** argv) {
  Options options;
  ArgumentCursor cursor(argc, argv);
  auto keepalive = [&options]() -> KeepAliveOptions& {
    if (!options.server.keepalive) options.server.keepalive = KeepAliveOptions{};
    return *options.server.keepalive;
  };
  while (!cursor.done()) {
    std::string name = cursor.next();
    // A flag given as "--flag=value" is a mistake, not something to ignore.
    auto flag = [&]() {
      if (cursor.has_inline_value()) usage_error(name + " takes no value");
    };
    auto required = [&]() {
      auto value = cursor.value();
      if (!value) usage_error("option " + name + " needs a value");
      return *value;
    };
    auto positive = [&](const char* what) {
      std::string value = required();
      auto count = parse_count(value);
      if (!count || *count <= 0) {
        usage_error(name + " must be a positive " + what + ", not '" + value + "'");
      }
      return static_cast<int>(*count);
    };
    if (name == "--help" || name == "-h") {
      flag();
      std::fputs(kUsage, stdout);
      std::exit(kExitOk);
    } else if (name == "--host") {
      options.host = required();
      options.host_given = true;
    } else if (name == "--port") {
      std::string value = required();
      auto port = parse_port(value, 0);
      if (!port) usage_error("--port must be a number from 0 to 65535, not '" + value + "'");
      options.port = *port;
      options.port_given = true;
    } else if (name == "--unix") {
      options.unix_path = required();
      if (options.unix_path->empty()) usage_error("--unix must not be empty");
    } else if (name == "--udp") {
      flag();
      options.udp = true;
    } else if (name == "--keep-open") {
      flag();
      options.keep_open = true;
    } else if (name == "--quiet" || name == "-q") {
      flag();
      options.quiet = true;
    } else if (name == "--backlog") {
      options.server.backlog = positive("number");
      options.backlog_given = true;
    } else if (name == "--reuse-port") {
      flag();
      options.server.reuse_port = true;
    } else if (name == "--nodelay") {
      flag();
      options.server.nodelay = true;
      options.tcp_tuning_given = true;
    } else if (name == "--no-nodelay") {
      flag();
      options.server.nodelay = false;
      options.tcp_tuning_given = true;
    } else if (name == "--keepalive-idle") {
      keepalive().idle_seconds = positive("number of seconds");
    } else if (name == "--keepalive-count") {
      keepalive().probe_count = positive("number");
    } else if (name == "--keepalive-interval") {
      keepalive().interval_seconds = positive("number of seconds");
    } else {
      usage_error("unknown option '" + name + "'");
    }
  }
  if (options.server.keepalive) options.tcp_tuning_given = true;
  if (options.unix_path) {
    if (options.udp) usage_error("--unix and --udp cannot be combined");
    if (options.port_given) usage_error("--port cannot be combined with --unix");
    if (options.host_given) usage_error("--host cannot be combined with --unix");
    if (options.server.reuse_port) usage_error("--reuse-port cannot be combined with --unix");
  }
  if ((options.unix_path || options.udp) && options.tcp_tuning_given) {
    usage_error("--nodelay, --no-nodelay and --keepalive-* are TCP options");
  }
  if (options.udp && options.backlog_given) usage_error("--backlog has no meaning with --udp");
  return options;
}

// --udp: echoes each datagram to its sender (--keep-open is implied: a
// datagram endpoint has no connection to close).
class UdpEchoProtocol final : public DatagramProtocol {
 public:
  explicit UdpEchoProtocol(const Options& options) : options_(options) {}

  void connection_made(DatagramTransport& transport) override { transport_ = &transport; }

  void datagram_received(std::string_view data, const SocketAddress& from) override {
    if (!options_.quiet) log_line("recv: " + python_bytes_repr(data) + " from " + from.to_string());
    transport_->sendto(data, from);
    if (!options_.quiet) log_line("sent: " + python_bytes_repr(data) + " to " + from.to_string());
  }

  void error_received(std::error_code error) override {
    if (!options_.quiet) log_line("error received: " + error.message());
  }

  void connection_lost(std::error_code) override { transport_ = nullptr; }

 private:
  const Options& options_;
  DatagramTransport* transport_ = nullptr;  // valid from connection_made until connection_lost
};

int run_udp(const Options& options) {
  EventLoop loop;
  loop.set_exception_handler(
      [](EventLoop&, const ExceptionContext& context) { error_line(kProgram, describe(context)); });
  DatagramEndpoint<UdpEchoProtocol> endpoint;
  DatagramOptions datagram_options;
  datagram_options.reuse_port = options.server.reuse_port;
  try {
    endpoint = loop.run_until_complete(loop.create_datagram_endpoint(
        [&options] { return std::make_shared<UdpEchoProtocol>(options); },
        HostPort{options.host, options.port}, std::nullopt, datagram_options));
  } catch (const std::exception& e) {
    error_line(kProgram, e.what());
    return kExitConnectionError;
  }
  Future<void> stopped = loop.create_future();
  auto shut_down = [&] {
    if (stopped.done()) return;
    if (!options.quiet) log_line("shutting down");
    endpoint.transport->abort();
    stopped.set_result();
  };
  loop.add_signal_handler(SIGINT, shut_down);
  loop.add_signal_handler(SIGTERM, shut_down);
  // Announced once the signals are handled: a script that stops the server
  // as soon as it reads this line gets a clean shutdown.
  auto address = endpoint.transport->get_extra_info<SocketAddress>("sockname");
  log_line("Serving on " + (address ? address->to_string() : std::string("None")));
  loop.run_until_complete(stopped);
  return kExitOk;
}

int run(const Options& options) {
  EventLoop loop;
  loop.set_exception_handler(
      [](EventLoop&, const ExceptionContext& context) { error_line(kProgram, describe(context)); });
  std::shared_ptr<Server> server;
  try {
    auto factory = [&options] {
      return std::make_shared<EchoServerProtocol>(options.keep_open, options.quiet);
    };
    if (options.unix_path) {
      UnixServerOptions unix_options;
      unix_options.backlog = options.server.backlog;
      server = loop.run_until_complete(
          loop.create_unix_server(factory, *options.unix_path, unix_options));
    } else {
      server = loop.run_until_complete(
          loop.create_server(factory, options.host, options.port, options.server));
    }
  } catch (const std::exception& e) {
    error_line(kProgram, e.what());
    return kExitConnectionError;
  }

  auto shut_down = [&] {
    if (!server->is_serving()) return;
    if (!options.quiet) log_line("shutting down");
    server->close();
    server->close_clients();
    // A client that never reads would keep close() flushing forever.
    loop.call_later(kShutdownGraceSeconds, [server] { server->abort_clients(); });
  };
  loop.add_signal_handler(SIGINT, shut_down);
  loop.add_signal_handler(SIGTERM, shut_down);
  // Announced once the signals are handled: a script that stops the server
  // as soon as it reads this line (a Unix server's file is then removed) gets
  // a clean shutdown, not the default action of SIGTERM.
  std::string addresses;
  for (const ServerSocket& socket : server->sockets()) {
    if (!addresses.empty()) addresses += ", ";
    addresses += socket.sockname.to_string();
  }
  log_line("Serving on " + addresses);

  try {
    loop.run_until_complete(server->serve_forever());
  } catch (const CancelledError&) {
    // What serve_forever() ends with when the server is closed, as in asyncio.
  }
  loop.run_until_complete(server->wait_closed());
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse_arguments(argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return options.udp ? run_udp(options) : run(options);
  } catch (const std::exception& e) {
    error_line(kProgram, std::string("error: ") + e.what());
    return kExitConnectionError;
  }
}
