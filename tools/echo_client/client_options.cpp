#include "client_options.hpp"

#include <cstdio>
#include <cstdlib>

#include "tool_support.hpp"

namespace tulip::tools {
namespace {

constexpr const char* kUsage =
    "usage: tulip-echo-client [--host H] [--port P | --unix PATH] [--udp] [--message TEXT]\n"
    "                         [--size N] [--eof] [--verify] [--timeout SEC]\n"
    "                         [--happy-eyeballs-delay SEC] [--quiet] [--streams]\n"
    "                         [--backend auto|epoll|io_uring]\n"
    "                         [--tls [--cafile FILE] [--server-hostname NAME] [--insecure]\n"
    "                          [--handshake-timeout SEC]]\n";

// The largest UDP payload over IPv4 (65535 less the IP and UDP headers).
constexpr std::uint64_t kMaxDatagram = 65507;
// How long --udp waits for its echo when --timeout is not given.
constexpr double kDefaultUdpTimeout = 5.0;

[[noreturn]] void usage_error(const std::string& message) {
  error_line(kClientProgram, "error: " + message);
  std::fputs(kUsage, stderr);
  std::exit(kExitUsage);
}

void check_combinations(ClientOptions& options) {
  if (options.unix_path) {
    if (options.udp) usage_error("--unix and --udp cannot be combined");
    if (options.port_given) usage_error("--port cannot be combined with --unix");
    if (options.host_given) usage_error("--host cannot be combined with --unix");
  }
  if (options.happy_eyeballs_delay && (options.unix_path || options.udp)) {
    usage_error("--happy-eyeballs-delay applies to TCP connections only");
  }
  if (options.udp) {
    if (options.eof) usage_error("--eof has no meaning with --udp (a datagram has no end)");
    if (options.size && *options.size > kMaxDatagram) {
      usage_error("--size must be at most " + std::to_string(kMaxDatagram) +
                  " bytes with --udp (one datagram)");
    }
    // asyncio has no streams API for datagrams: --udp has one implementation.
    if (options.streams) {
      usage_error("--streams and --udp cannot be combined: there are no streams for datagrams");
    }
    if (options.timeout == 0) options.timeout = kDefaultUdpTimeout;
  }
  if (!options.tls) {
    if (options.cafile) usage_error("--cafile needs --tls");
    if (options.server_hostname) usage_error("--server-hostname needs --tls");
    if (options.insecure) usage_error("--insecure needs --tls");
    if (options.handshake_timeout) usage_error("--handshake-timeout needs --tls");
    return;
  }
  if (options.udp) usage_error("--tls and --udp cannot be combined (TLS runs over a stream)");
  // TLS has no half-close: its close_notify ends the whole connection.
  if (options.eof) usage_error("--eof cannot be combined with --tls: TLS has no half-close");
  if (options.insecure && options.cafile) {
    usage_error("--insecure and --cafile cannot be combined (--insecure verifies nothing)");
  }
  if (options.unix_path && !options.server_hostname && !options.insecure) {
    usage_error(
        "--tls with --unix needs --server-hostname (the name the certificate is for) "
        "or --insecure");
  }
}

}  // namespace

ClientOptions parse_client_arguments(int argc, char** argv) {
  ClientOptions options;
  ArgumentCursor cursor(argc, argv);
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
    if (name == "--help" || name == "-h") {
      flag();
      std::fputs(kUsage, stdout);
      std::exit(kExitOk);
    } else if (name == "--host") {
      options.host = required();
      options.host_given = true;
      if (options.host.empty()) usage_error("--host must not be empty");
    } else if (name == "--port") {
      std::string value = required();
      auto port = parse_port(value, 1);
      if (!port) usage_error("--port must be a number from 1 to 65535, not '" + value + "'");
      options.port = *port;
      options.port_given = true;
    } else if (name == "--unix") {
      options.unix_path = required();
      if (options.unix_path->empty()) usage_error("--unix must not be empty");
    } else if (name == "--udp") {
      flag();
      options.udp = true;
    } else if (name == "--message") {
      options.message = required();
      if (options.message.empty()) usage_error("--message must not be empty");
    } else if (name == "--size") {
      std::string value = required();
      auto size = parse_size(value);
      if (!size || *size == 0) {
        usage_error("--size must be a positive byte count (e.g. 4096, 64K, 64MiB), not '" + value +
                    "'");
      }
      options.size = size;
    } else if (name == "--eof") {
      flag();
      options.eof = true;
    } else if (name == "--verify") {
      flag();
      options.verify = true;
    } else if (name == "--timeout") {
      std::string value = required();
      auto seconds = parse_seconds(value);
      if (!seconds)
        usage_error("--timeout must be a positive number of seconds, not '" + value + "'");
      options.timeout = *seconds;
    } else if (name == "--happy-eyeballs-delay") {
      std::string value = required();
      auto seconds = parse_seconds(value);
      if (!seconds) {
        usage_error("--happy-eyeballs-delay must be a positive number of seconds, not '" + value +
                    "'");
      }
      options.happy_eyeballs_delay = *seconds;
    } else if (name == "--quiet" || name == "-q") {
      flag();
      options.quiet = true;
    } else if (name == "--backend") {
      if (auto error = select_backend(required())) usage_error(*error);
    } else if (name == "--streams") {
      flag();
      options.streams = true;
    } else if (name == "--tls") {
      flag();
      options.tls = true;
    } else if (name == "--cafile") {
      options.cafile = required();
      if (options.cafile->empty()) usage_error("--cafile must not be empty");
    } else if (name == "--server-hostname") {
      options.server_hostname = required();
      if (options.server_hostname->empty()) usage_error("--server-hostname must not be empty");
    } else if (name == "--insecure") {
      flag();
      options.insecure = true;
    } else if (name == "--handshake-timeout") {
      std::string value = required();
      auto seconds = parse_seconds(value);
      if (!seconds) {
        usage_error("--handshake-timeout must be a positive number of seconds, not '" + value +
                    "'");
      }
      options.handshake_timeout = *seconds;
    } else {
      usage_error("unknown option '" + name + "'");
    }
  }
  check_combinations(options);
  return options;
}

}  // namespace tulip::tools
