// ConnectionLog: the per-connection log lines of tulip-echo-server
// (docs/tools.md, "Server log lines"), for both implementations: the Protocol
// one (echo_server_protocol.hpp) and the streams one (echo_server_streams.hpp)
// print through it, so they print the same lines.
//
// Thread-safety: the loop's thread only.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

#include "tool_support.hpp"
#include "tulip/socket_address.hpp"
#include "tulip/transport.hpp"

namespace tulip::tools {

class ConnectionLog {
 public:
  explicit ConnectionLog(bool quiet) : quiet_(quiet) {}

  bool quiet() const { return quiet_; }

  /// "connection from ('127.0.0.1', 40312)", then for a TLS connection (its
  /// handshake done) "tls: TLSv1.3 TLS_AES_256_GCM_SHA384".
  void connection_made(const Transport& transport) const {
    if (quiet_) return;
    log_line("connection from " + peer(transport));
    if (auto tls = tls_summary(transport)) log_line("tls: " + *tls);
  }
  /// "recv: b'...'": a chunk arrived.
  void received(std::string_view data) const {
    if (!quiet_) log_chunk("recv: ", data);
  }
  /// "sent: b'...'": the chunk was written back.
  void sent(std::string_view data) const {
    if (!quiet_) log_chunk("sent: ", data);
  }
  /// "close the client socket": default mode, after the first echo.
  void closing() const {
    if (!quiet_) log_line("close the client socket");
  }
  /// "the peer finished sending": EOF.
  void peer_finished() const {
    if (!quiet_) log_line("the peer finished sending");
  }
  /// "connection from ... closed", with ": <cause>" when it ended on an error.
  void connection_lost(const Transport& transport, std::error_code error) const {
    if (!quiet_) {
      log_line("connection from " + peer(transport) + " closed" +
               (error ? ": " + error.message() : ""));
    }
  }

 private:
  // Computed when logged rather than kept: with --quiet an idle connection then
  // costs the server no string. (peername stays readable after the close.)
  static std::string peer(const Transport& transport) {
    auto address = transport.get_extra_info<SocketAddress>("peername");
    return address ? address->to_string() : std::string("None");
  }

  // Out of line, so that the echo path itself builds no string (it is what the
  // benchmarks measure, with --quiet).
  [[gnu::noinline, gnu::cold]] static void log_chunk(const char* what, std::string_view data) {
    log_line(what + python_bytes_repr(data));
  }

  bool quiet_;
};

}  // namespace tulip::tools
