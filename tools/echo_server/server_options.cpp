#include "server_options.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "tool_support.hpp"
#include "tulip/ssl_context.hpp"

namespace tulip::tools {
namespace {

constexpr const char* kUsage =
    "usage: tulip-echo-server [--host H] [--port P | --unix PATH] [--udp] [--keep-open]\n"
    "                         [--quiet] [--backlog N] [--reuse-port] [--nodelay | --no-nodelay]\n"
    "                         [--keepalive-idle S] [--keepalive-count N] [--keepalive-interval "
    "S]\n"
    "                         [--streams] [--threads N] [--backend auto|epoll|io_uring]\n"
    "                         [--tls --cert FILE [--key FILE]\n"
    "                         [--handshake-timeout SEC]]\n";

// More loops than this is a typing mistake, not a machine.
constexpr long kMaxThreads = 1024;

[[noreturn]] void usage_error(const std::string& message) {
  error_line(kServerProgram, "error: " + message);
  std::fputs(kUsage, stderr);
  std::exit(kExitUsage);
}

void check_combinations(const ServerToolOptions& options) {
  if (options.unix_path) {
    if (options.udp) usage_error("--unix and --udp cannot be combined");
    if (options.port_given) usage_error("--port cannot be combined with --unix");
    if (options.host_given) usage_error("--host cannot be combined with --unix");
    if (options.server.reuse_port) usage_error("--reuse-port cannot be combined with --unix");
  }
  if ((options.unix_path || options.udp) && options.tcp_tuning_given) {
    usage_error("--nodelay, --no-nodelay and --keepalive-* are TCP options");
  }
  // Several Unix listeners cannot bind one path, and a UDP group would need a
  // datagram endpoint per loop: --threads is for TCP (docs/tools.md).
  if (options.threads != 1) {
    if (options.unix_path) usage_error("--threads cannot be combined with --unix (TCP only)");
    if (options.udp) usage_error("--threads cannot be combined with --udp (TCP only)");
  }
  if (options.udp && options.backlog_given) usage_error("--backlog has no meaning with --udp");
  // asyncio has no streams API for datagrams: --udp has one implementation.
  if (options.udp && options.streams) {
    usage_error("--streams and --udp cannot be combined: there are no streams for datagrams");
  }
  if (!options.tls) {
    if (options.cert) usage_error("--cert needs --tls");
    if (options.key) usage_error("--key needs --tls");
    if (options.handshake_timeout_given) usage_error("--handshake-timeout needs --tls");
    return;
  }
  if (options.udp) usage_error("--tls and --udp cannot be combined (TLS runs over a stream)");
  if (!options.cert) usage_error("--tls needs --cert FILE (the server's certificate chain)");
}

}  // namespace

ServerToolOptions parse_server_arguments(int argc, char** argv) {
  ServerToolOptions options;
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
    } else if (name == "--backend") {
      if (auto error = select_backend(required())) usage_error(*error);
    } else if (name == "--streams") {
      flag();
      options.streams = true;
    } else if (name == "--threads") {
      std::string value = required();
      auto count = parse_count(value);
      if (!count || *count < 0 || *count > kMaxThreads) {
        usage_error("--threads must be a number from 0 to " + std::to_string(kMaxThreads) +
                    " (0: one per CPU), not '" + value + "'");
      }
      options.threads = static_cast<unsigned>(*count);
    } else if (name == "--tls") {
      flag();
      options.tls = true;
    } else if (name == "--cert") {
      options.cert = required();
      if (options.cert->empty()) usage_error("--cert must not be empty");
    } else if (name == "--key") {
      options.key = required();
      if (options.key->empty()) usage_error("--key must not be empty");
    } else if (name == "--handshake-timeout") {
      std::string value = required();
      auto seconds = parse_seconds(value);
      if (!seconds) {
        usage_error("--handshake-timeout must be a positive number of seconds, not '" + value +
                    "'");
      }
      options.server.ssl_handshake_timeout = *seconds;
      options.handshake_timeout_given = true;
    } else {
      usage_error("unknown option '" + name + "'");
    }
  }
  if (options.server.keepalive) options.tcp_tuning_given = true;
  check_combinations(options);
  return options;
}

void load_tls(ServerToolOptions& options) {
  if (!options.tls) return;
  SslContext context(SslContext::Side::kServer);
  context.load_cert_chain(*options.cert, options.key.value_or(std::string()));
  options.server.ssl = std::move(context);
}

}  // namespace tulip::tools
