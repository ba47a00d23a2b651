// tulip-echo-server: the seed's companion server, built on tulip.
//
// Default mode: echo the first chunk received, then close (the asyncio docs'
// echo server, which the seed's client talks to). --keep-open echoes every byte
// until the peer half-closes, with backpressure. See docs/tools.md.
#include <csignal>
#include <cstdio>
#include <string>

#include "tool_support.hpp"
#include "tulip/tulip.hpp"

namespace {

using namespace tulip;
using namespace tulip::tools;

constexpr const char* kProgram = "tulip-echo-server";
constexpr const char* kUsage =
    "usage: tulip-echo-server [--host H] [--port P] [--keep-open] [--quiet] [--backlog N]\n"
    "                         [--reuse-port] [--nodelay | --no-nodelay]\n"
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
    } else if (name == "--port") {
      std::string value = required();
      auto port = parse_port(value, 0);
      if (!port) usage_error("--port must be a number from 0 to 65535, not '" + value + "'");
      options.port = *port;
    } else if (name == "--keep-open") {
      flag();
      options.keep_open = true;
    } else if (name == "--quiet" || name == "-q") {
      flag();
      options.quiet = true;
    } else if (name == "--backlog") {
      options.server.backlog = positive("number");
    } else if (name == "--reuse-port") {
      flag();
      options.server.reuse_port = true;
    } else if (name == "--nodelay") {
      flag();
      options.server.nodelay = true;
    } else if (name == "--no-nodelay") {
      flag();
      options.server.nodelay = false;
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
  return options;
}

class EchoServerProtocol final : public Protocol {
 public:
  explicit EchoServerProtocol(const Options& options) : options_(options) {}

  void connection_made(Transport& transport) override {
    transport_ = &transport;
    if (!options_.quiet) log("connection from " + peer());
  }

  void data_received(std::string_view data) override {
    if (!options_.quiet) log_chunk("recv: ", data);
    transport_->write(data);
    if (!options_.quiet) log_chunk("sent: ", data);
    if (!options_.keep_open) {
      log("close the client socket");
      transport_->close();
    }
  }

  // Backpressure: a peer that does not read makes our write buffer grow; stop
  // reading from it until the buffer drains, so memory stays bounded.
  void pause_writing() override { transport_->pause_reading(); }
  void resume_writing() override { transport_->resume_reading(); }

  bool eof_received() override {
    log("the peer finished sending");
    return false;  // the transport closes itself once everything echoed is sent
  }

  void connection_lost(std::error_code error) override {
    if (!options_.quiet) {
      log("connection from " + peer() + " closed" + (error ? ": " + error.message() : ""));
    }
    transport_ = nullptr;
  }

 private:
  // Computed when logged rather than kept: with --quiet an idle connection then
  // costs the server no string.
  std::string peer() const {
    auto address = transport_->get_extra_info<SocketAddress>("peername");
    return address ? address->to_string() : std::string("None");
  }

  void log(const std::string& message) const {
    if (!options_.quiet) log_line(message);
  }

  // Out of line, so that the echo path itself builds no string (it is what the
  // benchmarks measure, with --quiet).
  [[gnu::noinline, gnu::cold]] void log_chunk(const char* what, std::string_view data) const {
    log_line(what + python_bytes_repr(data));
  }

  const Options& options_;
  Transport* transport_ = nullptr;  // valid from connection_made until connection_lost
};

int run(const Options& options) {
  EventLoop loop;
  loop.set_exception_handler(
      [](EventLoop&, const ExceptionContext& context) { error_line(kProgram, describe(context)); });
  std::shared_ptr<Server> server;
  try {
    server = loop.run_until_complete(
        loop.create_server([&options] { return std::make_shared<EchoServerProtocol>(options); },
                           options.host, options.port, options.server));
  } catch (const std::exception& e) {
    error_line(kProgram, e.what());
    return kExitConnectionError;
  }
  std::string addresses;
  for (const ServerSocket& socket : server->sockets()) {
    if (!addresses.empty()) addresses += ", ";
    addresses += socket.sockname.to_string();
  }
  log_line("Serving on " + addresses);

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
    return run(options);
  } catch (const std::exception& e) {
    error_line(kProgram, std::string("error: ") + e.what());
    return kExitConnectionError;
  }
}
