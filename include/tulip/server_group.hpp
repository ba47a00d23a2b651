// ServerGroup: a loop per core. N threads, each running its own EventLoop
// with its own listening socket on the same address (SO_REUSEPORT, so the
// kernel spreads incoming connections over the sockets by a hash of their
// addresses and ports). A connection lives and dies on the loop that accepted
// it: its protocol factory runs there, its callbacks run there, and nothing of
// it is shared with the other loops.
//
// asyncio has no such class (a Python process serves from one loop); it is
// what a C++ server needs to use more than one core. The pieces stay asyncio's:
// every loop is an ordinary EventLoop with an ordinary Server on it.
//
// Lifecycle: start() opens the servers and returns once every loop listens (or
// throws the first error, with every loop already stopped); stop() closes the
// listeners, lets the connections finish up to a timeout, aborts the rest and
// joins the threads. A stopped group can be started again.
//
// Threads: the loop threads start with every signal blocked, so SIGINT and
// SIGTERM reach the thread that made the group (run a loop there with
// add_signal_handler, and call stop() once it hears them). Work between loops
// goes only through EventLoop::call_soon_threadsafe.
//
// Thread-safety: start(), stop(), statistics() and the accessors are called
// from one controlling thread, never from a loop of the group (stop() joins
// those threads). The ServerOpener and the hooks run on every loop thread at
// once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tulip/connection_options.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/export.hpp"
#include "tulip/server.hpp"
#include "tulip/socket_address.hpp"

namespace tulip {

/// Options of a ServerGroup.
struct ServerGroupOptions {
  /// How many loops (threads); 0: one per CPU this process may run on.
  unsigned threads = 0;
  /// CPU affinity: loop i runs only on CPU cpus[i % cpus.size()]. Empty: the
  /// scheduler decides. A CPU the process may not use makes start() fail.
  std::vector<int> cpus;
  /// Called on each loop's thread once its EventLoop exists, before the
  /// server opens (to set an exception handler, say). An exception thrown
  /// here fails start().
  std::function<void(EventLoop&)> on_loop_start;
  /// Called on each loop's thread after stop() has closed its server and
  /// every connection is gone, before the loop is closed; it may run the loop
  /// (to let tasks finish, say).
  std::function<void(EventLoop&)> on_loop_finish;
};

/// What one loop of a ServerGroup has done.
struct LoopStatistics {
  /// Connections accepted since the loop started.
  std::uint64_t accepted = 0;
  /// Accepted connections still open.
  std::size_t open = 0;
};

/// What stop() does with the open connections before its timeout.
enum class ShutdownMode {
  /// Leave them alone: they end by themselves, or are aborted at the timeout.
  kLetFinish,
  /// close() them at once (each flushes what it has buffered first); those
  /// still flushing at the timeout are aborted.
  kCloseClients,
};

/// N loops on N threads serving one TCP address through SO_REUSEPORT (see the
/// file comment).
class TULIP_API ServerGroup {
 public:
  /// Opens one loop's server on `port`: runs on that loop's thread, before the
  /// loop serves, on every loop thread at once; may run the loop (to wait for
  /// create_server's Future); throws to fail start(). The server must listen
  /// with SO_REUSEPORT (tcp_server_opener sets it), or only one loop can bind.
  using ServerOpener = std::function<std::shared_ptr<Server>(EventLoop& loop, std::uint16_t port)>;

  /// A group whose loops open their servers with `opener`, on `port`. Port 0:
  /// the first loop binds an ephemeral port, the others bind that same one.
  /// Starts nothing (see start()).
  explicit ServerGroup(ServerOpener opener, std::uint16_t port, ServerGroupOptions options = {});
  /// Stops the group if it runs, aborting every connection at once.
  ~ServerGroup();

  ServerGroup(const ServerGroup&) = delete;
  ServerGroup& operator=(const ServerGroup&) = delete;

  /// Starts the threads and opens their servers; returns once every loop
  /// listens. Throws what a loop's opener (or hook, or affinity) threw, the
  /// first loop's error first, after stopping the loops already serving;
  /// throws RuntimeError if the group is already running.
  void start();

  /// Stops every loop: closes its listeners, leaves its connections up to
  /// `timeout_seconds` to end (see ShutdownMode), aborts the rest, and joins
  /// its thread. Returns once all threads have ended. Does nothing if the
  /// group is not running.
  void stop(double timeout_seconds, ShutdownMode mode = ShutdownMode::kLetFinish);

  /// True between a successful start() and stop().
  bool is_running() const noexcept { return running_; }
  /// The number of loops of the last start() (0 before it).
  std::size_t size() const noexcept { return loops_.size(); }
  /// The port every loop listens on (the one picked, for port 0); 0 before start().
  std::uint16_t port() const noexcept { return bound_port_; }
  /// The addresses the first loop listens on (every loop listens on the same).
  const std::vector<SocketAddress>& addresses() const noexcept { return addresses_; }

  /// One entry per loop, in loop order. While running, each loop is asked on
  /// its own thread (through call_soon_threadsafe) and the call waits for the
  /// answers; after stop(), the figures at the moment each loop ended. Throws
  /// RuntimeError if called from one of the group's loops.
  std::vector<LoopStatistics> statistics() const;

 private:
  /// @cond INTERNAL
  struct LoopSlot;
  void launch(LoopSlot& slot, std::uint16_t port);
  void run_loop(LoopSlot& slot, std::uint16_t port);
  void wait_started(LoopSlot& slot);
  void stop_slots(double timeout_seconds, ShutdownMode mode);

  ServerOpener opener_;
  std::uint16_t requested_port_;
  ServerGroupOptions options_;
  std::vector<std::unique_ptr<LoopSlot>> loops_;
  std::uint16_t bound_port_ = 0;
  std::vector<SocketAddress> addresses_;
  bool running_ = false;
  /// @endcond
};

/// A ServerOpener serving `protocol_factory` (as EventLoop::create_server
/// takes it) on `host` with `options`, SO_REUSEPORT forced on. The factory is
/// copied; the copy is called on every loop's thread at once, each call on the
/// thread of the loop that accepted the connection, so it must be safe to call
/// concurrently (a lambda capturing only constants or thread-safe state).
template <class Factory>
ServerGroup::ServerOpener tcp_server_opener(Factory protocol_factory, std::string host,
                                            ServerOptions options = {}) {
  options.reuse_port = true;
  return [factory = std::move(protocol_factory), host = std::move(host),
          options = std::move(options)](EventLoop& loop, std::uint16_t port) {
    return loop.run_until_complete(loop.create_server(factory, host, port, options));
  };
}

}  // namespace tulip
