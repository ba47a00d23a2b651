// tulip-echo-server's command line: its options and their parser, shared by
// both implementations (Protocol and --streams). See docs/tools.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "tulip/connection_options.hpp"

namespace tulip::tools {

/// The program name that starts every error line.
inline constexpr const char* kServerProgram = "tulip-echo-server";

/// What the command line asked for.
struct ServerToolOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8888;
  bool keep_open = false;
  bool quiet = false;
  ServerOptions server;
  std::optional<std::string> unix_path;  // --unix: a Unix socket instead of TCP
  bool udp = false;
  bool streams = false;  // --streams: the implementation written on the streams API
  // --threads: loops serving the port together (a ServerGroup); 0: one per CPU.
  unsigned threads = 1;
  bool host_given = false;
  bool port_given = false;
  bool tcp_tuning_given = false;  // --nodelay, --no-nodelay, --keepalive-*
  bool backlog_given = false;
  // --tls: serve TLS with the certificate chain in --cert and its key in --key
  // (or in --cert); load_tls() puts the context into `server`.
  bool tls = false;
  std::optional<std::string> cert;
  std::optional<std::string> key;
  bool handshake_timeout_given = false;

  /// The options of a --unix server (the backlog, TLS).
  UnixServerOptions unix_server_options() const {
    UnixServerOptions unix_options;
    unix_options.backlog = server.backlog;
    unix_options.ssl = server.ssl;
    unix_options.ssl_handshake_timeout = server.ssl_handshake_timeout;
    return unix_options;
  }
};

/// Parses argv. Prints the usage and exits 0 for --help; on any mistake prints
/// one error line and the usage on stderr and exits 2.
ServerToolOptions parse_server_arguments(int argc, char** argv);

/// With --tls, makes the server's TLS context from --cert and --key. Throws
/// SslError naming the file and the reason when they cannot be loaded (the
/// tool then exits 1).
void load_tls(ServerToolOptions& options);

}  // namespace tulip::tools
