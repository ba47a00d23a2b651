// How create_connection, create_server and their Unix versions put a TLS
// layer on their connections. Not API.
//
// The backend-neutral machinery (connector, server) stays ignorant of TLS: it
// is handed a protocol factory that makes an SslProtocol around the
// application's protocol and, for a client, a completion that waits for the
// handshake instead of connection_made. This header names no OpenSSL type, so
// those files need no OpenSSL headers; without TLS (TULIP_HAS_TLS 0) the
// functions throw, and no SslContext can exist to call them with.
//
// Thread-safety: the loop's thread only.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "tulip/connection.hpp"
#include "tulip/connection_options.hpp"
#include "tulip/ssl_context.hpp"
#include "tulip/tls.hpp"

namespace tulip::detail {

/// How one connection's TLS layer is made.
struct TlsLayerSettings {
  explicit TlsLayerSettings(SslContext ssl_context) : context(std::move(ssl_context)) {}
  SslContext context;
  bool server_side = false;
  std::string server_hostname;  // empty: no SNI and no hostname check
  double handshake_timeout = kDefaultSslHandshakeTimeout;
  double shutdown_timeout = kDefaultSslShutdownTimeout;
  std::optional<SslSession> session;
};

/// Throws std::invalid_argument if `settings` cannot make a connection: a
/// context of the other side, a client context that checks hostnames without
/// a hostname, a timeout that is not positive.
void check_tls_settings(const TlsLayerSettings& settings);

/// A TLS client connection in the making: what cancelling the caller's Future
/// stops (the connect attempt, then the handshake).
class TlsClientAttempt;

/// Makes `factory` and `completion` those of a TLS client: the factory wraps
/// each protocol in an SslProtocol, and the completion reports once the
/// handshake is over (or failed). Returns the operation cancellation must
/// stop; give it the connect attempt with set_connect_operation. Throws what
/// check_tls_settings throws.
std::shared_ptr<CancellableOperation> wrap_tls_client(EventLoop& loop, ProtocolFactory& factory,
                                                      ConnectCompletion& completion,
                                                      TlsLayerSettings settings);
/// The connect attempt the TLS attempt `operation` stops when cancelled.
void set_connect_operation(CancellableOperation& operation,
                           std::weak_ptr<CancellableOperation> connect);

/// A server's factory made TLS: each accepted connection's protocol is
/// wrapped in a server-side SslProtocol. Throws what check_tls_settings throws.
ProtocolFactory wrap_tls_server(EventLoop& loop, ProtocolFactory factory,
                                TlsLayerSettings settings);

/// The TLS settings of a client connection to `host` from `options` (the
/// server's name defaults to `host`, as asyncio's).
template <class Options>
TlsLayerSettings client_tls_settings(const Options& options, const std::string& host) {
  TlsLayerSettings settings(*options.ssl);
  settings.server_hostname = options.server_hostname.value_or(host);
  settings.handshake_timeout = options.ssl_handshake_timeout;
  settings.shutdown_timeout = options.ssl_shutdown_timeout;
  settings.session = options.ssl_session;
  return settings;
}

/// The TLS settings of a server's connections from `options`.
template <class Options>
TlsLayerSettings server_tls_settings(const Options& options) {
  TlsLayerSettings settings(*options.ssl);
  settings.server_side = true;
  settings.handshake_timeout = options.ssl_handshake_timeout;
  settings.shutdown_timeout = options.ssl_shutdown_timeout;
  return settings;
}

}  // namespace tulip::detail
