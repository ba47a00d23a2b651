// Options for create_connection and create_server (asyncio's keyword arguments).
//
// Thread-safety: plain values.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>

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
};

}  // namespace tulip
