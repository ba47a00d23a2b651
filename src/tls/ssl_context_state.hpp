// SslContextState: what an SslContext shares between its copies. Not API.
//
// The OpenSSL SSL_CTX and the settings OpenSSL does not keep itself (whether
// clients check hostnames, the SNI callback, the ALPN list a server picks
// from). OpenSSL's callbacks find the state of an SSL_CTX through its ex_data
// slot (from()), so the state lives exactly as long as the SSL_CTX it owns.
//
// Thread-safety: configured before use, then read from any loop's thread.
#pragma once

#include <openssl/ssl.h>

#include <string>

#include "tulip/ssl_context.hpp"

namespace tulip::detail {

struct SslContextState {
  SslContextState(SSL_CTX* native, SslContext::Side context_side);
  ~SslContextState();
  SslContextState(const SslContextState&) = delete;
  SslContextState& operator=(const SslContextState&) = delete;

  /// The state whose SSL_CTX is `ctx`; null for a context tulip did not make.
  static SslContextState* from(const SSL_CTX* ctx) noexcept;

  SSL_CTX* ctx;
  SslContext::Side side;
  bool check_hostname;
  VerifyMode verify_mode;
  /// ALPN protocols in wire format (each prefixed by its length), for a
  /// server's choice; a client hands the same bytes to OpenSSL.
  std::string alpn_wire;
  SslContext::SniCallback sni_callback;
};

/// A client context's new-session callback (tls_engine.cpp): hands TLS 1.3
/// tickets and TLS 1.2 sessions to the connection that received them.
int on_new_session(SSL* ssl, SSL_SESSION* session);

}  // namespace tulip::detail
