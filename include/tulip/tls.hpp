// TLS on stream connections: what a TLS transport tells, and start_tls's options.
//
// TLS is a layer between a stream transport and your protocol, as asyncio's
// sslproto: the connection's socket transport carries TLS records and the
// layer's own transport, which your protocol gets in connection_made, carries
// your bytes. It works on every stream transport (TCP, Unix, even another TLS
// transport) because it uses only their public Transport interface.
//
// Turning it on:
//  * ConnectOptions::ssl / UnixConnectOptions::ssl: create_connection,
//    create_unix_connection and open_connection speak TLS as a client; their
//    Future completes, and connection_made runs, only once the handshake has
//    succeeded. A failed handshake fails the Future with SslError
//    (SslCertVerificationError for a certificate that does not verify), a
//    slow one with ConnectionError (Error::kSslHandshakeTimeout) after
//    ssl_handshake_timeout seconds.
//  * ServerOptions::ssl / UnixServerOptions::ssl: create_server,
//    create_unix_server and start_server make each accepted connection a TLS
//    server; the protocol factory runs at accept time, connection_made after
//    the handshake. A connection whose handshake fails or times out is closed
//    and logged at debug level; its protocol sees no callback (as asyncio).
//  * EventLoop::start_tls upgrades a connection that is already open (after a
//    STARTTLS exchange, say) and completes with the new transport.
//
// The TLS transport, against a socket transport:
//  * write() encrypts at once (OpenSSL writes the records straight into the
//    buffer handed to the socket transport) and never keeps your memory.
//  * get_write_buffer_size() is the bytes waiting below: records in the socket
//    transport's buffer plus bytes not yet encrypted. pause_writing() and
//    resume_writing() follow that sum at the water marks you set; the socket
//    transport gets the same marks.
//  * pause_reading() pauses the socket transport too: nothing more is read
//    from the kernel until resume_reading().
//  * can_write_eof() is false and write_eof() throws RuntimeError: TLS has no
//    half-close (asyncio raises NotImplementedError, a RuntimeError).
//  * close() sends close_notify after what was written, stops delivering data,
//    then waits (at most ssl_shutdown_timeout seconds) for the peer's
//    close_notify or its EOF before closing the socket; connection_lost(no
//    error) follows, or Error::kSslShutdownTimeout if the peer never answered.
//    abort() closes at once, sending nothing more.
//  * The peer's close_notify is eof_received() on your protocol, then the
//    transport answers with its own and closes; returning true from
//    eof_received has no effect (asyncio logs a warning, so does tulip).
//  * A peer that closes the TCP connection without close_notify is reported
//    as asyncio reports it: eof_received(), then connection_lost with no
//    error. A truncation attack is therefore not an error by itself; a
//    protocol that frames its own messages (HTTP's Content-Length) notices a
//    short message, and get_extra_info<bool>("close_notify_received") tells
//    whether the peer ended the stream properly.
//  * A record that does not decrypt, a renegotiation the peer insists on, or
//    any other TLS error after the handshake ends the connection:
//    connection_lost carries the error (category ssl_category()), with
//    OpenSSL's reason as its message. Renegotiation is refused.
//
// get_extra_info on a TLS transport, beyond the socket transport's names
// ("peername", "sockname", "socket", "peercred"), which it passes through:
//  * "ssl_object": SSL*, the connection's OpenSSL object (borrowed; valid
//    until connection_lost returns).
//  * "sslcontext": the SslContext.
//  * "peercert": PeerCertificate, if the peer presented a certificate.
//  * "cipher": CipherInfo (name, protocol version, secret bits).
//  * "compression": std::string, the compression method; empty std::any when
//    none (always, with OpenSSL's defaults).
//  * "selected_alpn_protocol": std::string; empty std::any when none.
//  * "server_hostname": std::string, the name sent (client) or received
//    (server) with SNI; empty std::any when none.
//  * "ssl_session": SslSession, for resumption; "session_reused": bool.
//  * "close_notify_received": bool, whether the peer's close_notify came.
//
// Thread-safety: loop thread only, like every transport.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tulip/ssl_context.hpp"

/// OpenSSL's connection type, declared as <openssl/ssl.h> declares it.
typedef struct ssl_st SSL;

namespace tulip {

/// asyncio's SSL_HANDSHAKE_TIMEOUT: 60 seconds.
inline constexpr double kDefaultSslHandshakeTimeout = 60.0;
/// asyncio's SSL_SHUTDOWN_TIMEOUT: 30 seconds.
inline constexpr double kDefaultSslShutdownTimeout = 30.0;

/// The negotiated cipher (Python's SSLObject.cipher(): name, protocol, bits).
struct CipherInfo {
  std::string name;      ///< OpenSSL's name, e.g. "TLS_AES_128_GCM_SHA256".
  std::string protocol;  ///< The protocol version, e.g. "TLSv1.3".
  int secret_bits = 0;   ///< The symmetric key's strength in bits.
};

/// The certificate the peer presented (Python's getpeercert(), in C++ types).
struct PeerCertificate {
  std::string subject;  ///< The subject, one line, RFC 2253 ("CN=localhost,O=tulip").
  std::string issuer;   ///< The issuer, in the same form.
  /// The subjectAltName entries, each as "DNS:name", "IP Address:addr", ...
  std::vector<std::string> subject_alt_names;
  std::string serial_number;  ///< The serial number in upper-case hexadecimal.
  std::string not_before;     ///< Start of validity, e.g. "Jan  1 00:00:00 2025 GMT".
  std::string not_after;      ///< End of validity, in the same form.
  std::string der;            ///< The whole certificate, DER-encoded (getpeercert(True)).
};

/// Options of EventLoop::start_tls (asyncio's keyword arguments).
struct StartTlsOptions {
  /// Act as the TLS server (the context must be a server context).
  bool server_side = false;
  /// The server's name for SNI and certificate verification (client side).
  /// Required when the context checks hostnames; an IP address is checked
  /// against the certificate's IP entries and not sent with SNI.
  std::optional<std::string> server_hostname;
  /// Seconds the handshake may take before the connection is aborted.
  double ssl_handshake_timeout = kDefaultSslHandshakeTimeout;
  /// Seconds close() waits for the peer's close_notify.
  double ssl_shutdown_timeout = kDefaultSslShutdownTimeout;
  /// A session to resume (client side).
  std::optional<SslSession> ssl_session;
};

}  // namespace tulip
