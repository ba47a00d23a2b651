// Options for create_connection, create_server, create_unix_connection and
// create_unix_server (asyncio's keyword arguments), TLS's among them (tls.hpp).
//
// Thread-safety: plain values.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>

#include "tulip/ssl_context.hpp"
#include "tulip/tls.hpp"

namespace tulip {

/// TCP keep-alive probing (SO_KEEPALIVE with TCP_KEEPIDLE/KEEPINTVL/KEEPCNT).
struct KeepAliveOptions {
  int idle_seconds = 7200;    ///< Silence before the first probe.
  int interval_seconds = 75;  ///< Between probes.
  int probe_count = 9;        ///< Unanswered probes before the connection is dropped.
};

/// Options of EventLoop::create_connection (asyncio's keyword arguments).
struct ConnectOptions {
  /// AF_INET or AF_INET6 to use only that family; AF_UNSPEC tries every address.
  int family = AF_UNSPEC;
  /// Bind to this numeric local address (and port, 0 for any) before connecting;
  /// only resolved addresses of the same family are tried.
  std::optional<std::string> local_host;
  std::uint16_t local_port = 0;  ///< The local port to bind with local_host (0: any).
  /// Seconds for the whole attempt (resolution and every address); 0: no limit.
  /// A tulip addition: asyncio spells this with asyncio.wait_for().
  double timeout = 0;
  /// TCP_NODELAY, on by default as in asyncio.
  bool nodelay = true;
  /// TCP keep-alive probing; none by default.
  std::optional<KeepAliveOptions> keepalive;
  /// Happy Eyeballs (RFC 8305), as asyncio's happy_eyeballs_delay: when an
  /// attempt has not connected after this many seconds, the next address is
  /// tried alongside it (and at once when an attempt fails); the first to
  /// connect wins and the others are closed. Unset (the default, as in
  /// asyncio): one address at a time, each until it succeeds or fails.
  std::optional<double> happy_eyeballs_delay;
  /// asyncio's interleave: reorder the resolved addresses so that families
  /// alternate, after the first `interleave` addresses of the first family.
  /// Unset: 1 with happy_eyeballs_delay, else no reordering; 0: no reordering.
  std::optional<int> interleave;

  /// TLS (asyncio's ssl=): a client context; the connection completes once
  /// the handshake has succeeded (see tls.hpp). Unset: plain TCP.
  std::optional<SslContext> ssl;
  /// The name sent with SNI and checked against the server's certificate;
  /// unset: `host`, as asyncio. Empty: neither (allowed only when the
  /// context does not check hostnames). Only with `ssl`.
  std::optional<std::string> server_hostname;
  /// Seconds the TLS handshake may take (asyncio's default, 60).
  double ssl_handshake_timeout = kDefaultSslHandshakeTimeout;
  /// Seconds close() waits for the peer's close_notify (asyncio's default, 30).
  double ssl_shutdown_timeout = kDefaultSslShutdownTimeout;
  /// A TLS session to resume (from an earlier connection's "ssl_session").
  std::optional<SslSession> ssl_session;
};

/// Options of EventLoop::create_server (asyncio's keyword arguments).
struct ServerOptions {
  /// AF_INET or AF_INET6 to bind only that family.
  int family = AF_UNSPEC;
  /// listen() backlog, and the most connections accepted per readiness event.
  int backlog = 100;
  /// SO_REUSEADDR, on by default as in asyncio on Unix.
  bool reuse_address = true;
  /// SO_REUSEPORT: several servers share the port and the kernel balances.
  bool reuse_port = false;
  /// Listen at once; else call Server::start_serving() or serve_forever().
  bool start_serving = true;
  /// TCP_NODELAY on accepted connections.
  bool nodelay = true;
  /// TCP keep-alive probing on accepted connections; none by default.
  std::optional<KeepAliveOptions> keepalive;

  /// TLS (asyncio's ssl=): a server context; every accepted connection's
  /// protocol sees connection_made once its handshake has succeeded (see
  /// tls.hpp). Unset: plain TCP.
  std::optional<SslContext> ssl;
  /// Seconds each TLS handshake may take (asyncio's default, 60).
  double ssl_handshake_timeout = kDefaultSslHandshakeTimeout;
  /// Seconds close() waits for the peer's close_notify (asyncio's default, 30).
  double ssl_shutdown_timeout = kDefaultSslShutdownTimeout;
};

/// Options of EventLoop::create_unix_connection.
struct UnixConnectOptions {
  /// Seconds for the whole attempt; 0: no limit (as ConnectOptions::timeout).
  double timeout = 0;
  /// TLS, as ConnectOptions::ssl.
  std::optional<SslContext> ssl;
  /// The server's name for SNI and verification: required with `ssl` when
  /// the context checks hostnames (a path names no host; asyncio requires it too).
  std::optional<std::string> server_hostname;
  /// Seconds the TLS handshake may take.
  double ssl_handshake_timeout = kDefaultSslHandshakeTimeout;
  /// Seconds close() waits for the peer's close_notify.
  double ssl_shutdown_timeout = kDefaultSslShutdownTimeout;
  /// A TLS session to resume.
  std::optional<SslSession> ssl_session;
};

/// Options of EventLoop::create_unix_server (asyncio's keyword arguments).
struct UnixServerOptions {
  /// listen() backlog, and the most connections accepted per readiness event.
  int backlog = 100;
  /// Listen at once; else call Server::start_serving() or serve_forever().
  bool start_serving = true;
  /// Remove the socket file when the server closes, unless another file has
  /// replaced it meanwhile (asyncio 3.13's cleanup_socket). Abstract names
  /// have no file. A server on an adopted descriptor never removes anything.
  bool cleanup_socket = true;
  /// TLS, as ServerOptions::ssl.
  std::optional<SslContext> ssl;
  /// Seconds each TLS handshake may take.
  double ssl_handshake_timeout = kDefaultSslHandshakeTimeout;
  /// Seconds close() waits for the peer's close_notify.
  double ssl_shutdown_timeout = kDefaultSslShutdownTimeout;
};

}  // namespace tulip
