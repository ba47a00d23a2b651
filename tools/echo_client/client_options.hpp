// tulip-echo-client's command line: its options and their parser, shared by
// both implementations (Protocol and --streams). See docs/tools.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace tulip::tools {

/// The program name that starts every error line.
inline constexpr const char* kClientProgram = "tulip-echo-client";

/// What the command line asked for.
struct ClientOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8888;
  std::string message = "Hello World!";
  std::optional<std::uint64_t> size;  // send a generated payload of this many bytes instead
  bool eof = false;
  bool verify = false;
  double timeout = 0;  // seconds; 0: none
  bool quiet = false;
  std::optional<std::string> unix_path;  // --unix: a Unix socket instead of TCP
  bool udp = false;
  bool streams = false;  // --streams: the implementation written on the streams API
  bool host_given = false;
  bool port_given = false;
  std::optional<double> happy_eyeballs_delay;
  // --tls: TLS, verifying the server against --cafile (else the system's CA
  // store) and --server-hostname (else --host); --insecure verifies nothing.
  bool tls = false;
  std::optional<std::string> cafile;
  std::optional<std::string> server_hostname;
  bool insecure = false;
  std::optional<double> handshake_timeout;  // seconds; unset: asyncio's 60
};

/// Parses argv. Prints the usage and exits 0 for --help; on any mistake prints
/// one error line and the usage on stderr and exits 2.
ClientOptions parse_client_arguments(int argc, char** argv);

}  // namespace tulip::tools
