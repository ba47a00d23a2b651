// tulip-echo-server: the seed's companion server, built on tulip.
//
// Default mode: echo the first chunk received, then close (the asyncio docs'
// echo server, which the seed's client talks to). --keep-open echoes every byte
// until the peer half-closes, with backpressure. --unix PATH serves on a Unix
// socket instead of TCP; --udp echoes each datagram to its sender. This file
// holds the Protocol implementation; --streams serves the same way with the
// streams API (streams_server.cpp); --threads N serves TCP from N loops on N
// threads (a ServerGroup, serving.cpp). See docs/tools.md.
#include <csignal>
#include <cstdio>
#include <string>

#include "echo_server_protocol.hpp"
#include "server_options.hpp"
#include "serving.hpp"
#include "streams_server.hpp"
#include "tool_support.hpp"
#include "tulip/tulip.hpp"

namespace {

using namespace tulip;
using namespace tulip::tools;

using Options = ServerToolOptions;
constexpr const char* kProgram = kServerProgram;

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
  report_server_errors(loop);
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
  if (options.threads != 1) {
    // The factory runs on every loop's thread at once: it reads only `options`.
    auto factory = [&options] {
      return std::make_shared<EchoServerProtocol>(options.keep_open, options.quiet);
    };
    return serve_group_until_signalled(
        options, tcp_server_opener(factory, options.host, options.server), nullptr);
  }
  EventLoop loop;
  report_server_errors(loop);
  std::shared_ptr<Server> server;
  try {
    auto factory = [&options] {
      return std::make_shared<EchoServerProtocol>(options.keep_open, options.quiet);
    };
    if (options.unix_path) {
      server = loop.run_until_complete(
          loop.create_unix_server(factory, *options.unix_path, options.unix_server_options()));
    } else {
      server = loop.run_until_complete(
          loop.create_server(factory, options.host, options.port, options.server));
    }
  } catch (const std::exception& e) {
    error_line(kProgram, e.what());
    return kExitConnectionError;
  }
  return serve_until_signalled(loop, options, server);
}

// With --tls, a client whose handshake fails reaches no protocol: the
// library says why at debug level, which the server logs as one of its lines
// ("SSL handshake failed (('127.0.0.1', 40312)): wrong version number"). The
// library's other messages keep its own format.
void log_failed_handshakes(const Options& options) {
  if (!options.tls || options.quiet) return;
  set_log_level(LogLevel::kDebug);
  set_log_sink([](LogLevel level, std::string_view message) {
    if (level == LogLevel::kDebug) {
      log_line(message);
    } else {
      error_line("tulip", message);
    }
  });
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse_server_arguments(argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  try {
    load_tls(options);
  } catch (const std::exception& e) {
    error_line(kProgram, e.what());
    return kExitConnectionError;
  }
  log_failed_handshakes(options);
  try {
    if (options.udp) return run_udp(options);
    return options.streams ? run_streams_server(options) : run(options);
  } catch (const std::exception& e) {
    error_line(kProgram, std::string("error: ") + e.what());
    return kExitConnectionError;
  }
}
