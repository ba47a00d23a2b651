// SslContext: the TLS settings of connections (Python's ssl.SSLContext), on OpenSSL.
//
// A context is made for one side of a connection and shared by every
// connection that uses it. Copies of an SslContext share one OpenSSL SSL_CTX,
// as Python code passes one SSLContext object around: a setting changed on a
// copy applies to all of them, for connections started afterwards.
//
//     tulip::ConnectOptions options;
//     options.ssl = tulip::SslContext::create_default_context();   // asyncio: ssl=True
//     loop.create_connection(factory, "example.org", 443, options);
//
//     tulip::SslContext server(tulip::SslContext::Side::kServer);
//     server.load_cert_chain("cert.pem", "key.pem");
//     tulip::ServerOptions server_options;
//     server_options.ssl = server;
//
// Defaults, as Python's: a client context verifies the server's certificate
// (VerifyMode::kRequired) and its name (check_hostname); a server context asks
// for no client certificate. Both refuse anything older than TLS 1.2, refuse
// renegotiation, and use OpenSSL's default cipher lists.
//
// native_handle() gives the SSL_CTX* for anything this class does not cover
// (include <openssl/ssl.h> and link OpenSSL yourself to use it).
//
// Errors: a setting OpenSSL refuses (a certificate file that cannot be read, a
// key that does not match, a cipher list that selects nothing) throws SslError
// with OpenSSL's reason; a setting that makes no sense (kNone with
// check_hostname on) throws std::invalid_argument. When tulip was built without
// TLS (TULIP_HAS_TLS is 0, see <tulip/config.hpp>), every constructor throws
// RuntimeError.
//
// Thread-safety: configure a context before its first connection starts; from
// then on it may be used by connections on any number of loops and threads, as
// OpenSSL's SSL_CTX may. The SNI callback runs on the thread of the
// connection's loop.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tulip/export.hpp"

/// OpenSSL's context type, declared as <openssl/ssl.h> declares it.
typedef struct ssl_ctx_st SSL_CTX;
/// OpenSSL's session type, declared as <openssl/ssl.h> declares it.
typedef struct ssl_session_st SSL_SESSION;

namespace tulip {

namespace detail {
struct SslContextState;
}  // namespace detail

/// A TLS protocol version (Python's ssl.TLSVersion).
enum class TlsVersion { kTlsV1, kTlsV1_1, kTlsV1_2, kTlsV1_3 };

/// Whether and how the peer's certificate is verified (Python's ssl.VerifyMode).
enum class VerifyMode {
  kNone,      ///< CERT_NONE: no certificate is asked for (server) or checked (client).
  kOptional,  ///< CERT_OPTIONAL: a server asks for one and checks it if the client sends it.
  kRequired,  ///< CERT_REQUIRED: the peer must present a certificate that verifies.
};

/// A TLS session a client can resume (Python's ssl.SSLSession): take it from
/// a finished connection's get_extra_info<SslSession>("ssl_session") and pass
/// it as the ssl_session option of the next connection to the same server,
/// which then skips the full handshake if the server agrees
/// (get_extra_info<bool>("session_reused")). Copies share the session.
class TULIP_API SslSession {
 public:
  /// No session.
  SslSession() = default;
  /// Takes over one reference to `session` (null: no session).
  explicit SslSession(SSL_SESSION* session);

  /// True if this holds a session.
  bool valid() const noexcept { return session_ != nullptr; }
  /// The OpenSSL session, owned by this object (and its copies); null if none.
  SSL_SESSION* native_handle() const noexcept { return session_.get(); }

 private:
  std::shared_ptr<SSL_SESSION> session_;
};

/// TLS settings shared by connections (see the file comment).
class TULIP_API SslContext {
 public:
  /// Which end of connections a context is for.
  enum class Side {
    kClient,  ///< Python's PROTOCOL_TLS_CLIENT: verifies the server by default.
    kServer,  ///< Python's PROTOCOL_TLS_SERVER: needs load_cert_chain before use.
  };

  /// A context for `side` with Python's defaults for it and no CA
  /// certificates loaded (a client then trusts nothing until
  /// load_verify_locations or set_default_verify_paths). Throws SslError if
  /// OpenSSL cannot make one, RuntimeError if tulip was built without TLS.
  explicit SslContext(Side side);

  /// Python's ssl.create_default_context(): as the constructor, with the
  /// system's CA certificates loaded (set_default_verify_paths). For a client:
  /// verification and hostname checking on, which is what asyncio's ssl=True
  /// gives.
  static SslContext create_default_context(Side side = Side::kClient);

  /// The side this context is for.
  Side side() const noexcept;

  /// Loads this end's certificate chain (PEM: the certificate first, then any
  /// intermediates) and its private key (`keyfile` empty: from `certfile`),
  /// decrypting the key with `password` if it is encrypted. Throws SslError
  /// naming the file and OpenSSL's reason, also when the key does not match
  /// the certificate.
  void load_cert_chain(const std::string& certfile, const std::string& keyfile = {},
                       const std::string& password = {});

  /// Trusts the CA certificates in `cafile` (PEM), in the hashed directory
  /// `capath`, and/or in `cadata` (PEM text); empty arguments are skipped.
  /// Throws std::invalid_argument if all are empty, SslError if one cannot
  /// be loaded.
  void load_verify_locations(const std::string& cafile = {}, const std::string& capath = {},
                             std::string_view cadata = {});

  /// Trusts the system's CA certificates (OpenSSL's default paths; on Debian,
  /// /etc/ssl/certs). Throws SslError if OpenSSL cannot set them.
  void set_default_verify_paths();

  /// The application protocols to offer (client) or accept (server) with ALPN,
  /// most preferred first (e.g. {"h2", "http/1.1"}). A server picks the first
  /// of its own list the client offers; with no overlap the handshake goes on
  /// without ALPN. Throws std::invalid_argument for an empty name or one over
  /// 255 bytes.
  void set_alpn_protocols(const std::vector<std::string>& protocols);

  /// The cipher list for TLS 1.2 and older, in OpenSSL's syntax
  /// ("ECDHE+AESGCM"). Throws SslError if it selects no cipher.
  void set_ciphers(const std::string& ciphers);
  /// The TLS 1.3 cipher suites, in OpenSSL's syntax
  /// ("TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256"); an OpenSSL
  /// setting Python does not have. Throws SslError if it selects none.
  void set_ciphersuites(const std::string& ciphersuites);

  /// The oldest protocol version to accept (default TLS 1.2).
  void set_minimum_version(TlsVersion version);
  /// The oldest protocol version accepted.
  TlsVersion minimum_version() const;
  /// The newest protocol version to accept (default: the newest OpenSSL has,
  /// TLS 1.3).
  void set_maximum_version(TlsVersion version);
  /// The newest protocol version accepted.
  TlsVersion maximum_version() const;

  /// Whether a client checks that the server's certificate is for the
  /// server_hostname it connects to (default on for clients). Turning it on
  /// sets the verify mode to kRequired if it was kNone, as Python does.
  void set_check_hostname(bool check);
  /// Whether a client checks the server's name.
  bool check_hostname() const noexcept;

  /// How the peer's certificate is verified (a client: default kRequired; a
  /// server: default kNone, kOptional/kRequired ask for client
  /// certificates). Throws std::invalid_argument for kNone while
  /// check_hostname is on (Python's ValueError).
  void set_verify_mode(VerifyMode mode);
  /// How the peer's certificate is verified.
  VerifyMode verify_mode() const noexcept;

  /// Called on a server for each handshake whose client names a server
  /// (SNI), with that name: return a context to serve this connection with
  /// instead (another certificate), or nullopt to keep this one. An exception
  /// fails that handshake (the client sees an alert). Python's sni_callback.
  using SniCallback = std::function<std::optional<SslContext>(const std::string& server_name)>;
  /// Installs (or, with an empty function, removes) the SNI callback.
  void set_sni_callback(SniCallback callback);

  /// OpenSSL's SSL_CTX, owned by this context (and its copies).
  SSL_CTX* native_handle() const noexcept;

  /// @cond INTERNAL
  const std::shared_ptr<detail::SslContextState>& state() const noexcept { return state_; }
  explicit SslContext(std::shared_ptr<detail::SslContextState> state) : state_(std::move(state)) {}
  /// @endcond

 private:
  std::shared_ptr<detail::SslContextState> state_;
};

}  // namespace tulip
