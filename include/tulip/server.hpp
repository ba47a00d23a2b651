// Server: what create_server and create_unix_server return (asyncio.Server).
//
// A Server owns its listening sockets and accepts connections on them; each
// accepted connection gets a transport and a protocol from the factory. The
// loop keeps a serving Server alive until close(); a std::shared_ptr<Server>
// kept by the application stays valid after that too.
//
// Semantics follow asyncio.Server: close() stops listening and leaves accepted
// connections open; close_clients() / abort_clients() close or abort them;
// wait_closed() completes once the server is closed and all its connections are
// gone. When accept() fails for lack of resources (EMFILE, ENFILE, ENOBUFS,
// ENOMEM) the server tells the exception handler, stops accepting for one
// second, and then serves again, rather than spinning or dying.
//
// Thread-safety: loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tulip/connection_options.hpp"
#include "tulip/export.hpp"
#include "tulip/future.hpp"
#include "tulip/handle.hpp"
#include "tulip/socket_address.hpp"

namespace tulip {

class EventLoop;
class StreamProtocol;
class Transport;

namespace detail {
class Listener;
struct ServerAccess;
}  // namespace detail

/// One listening socket of a Server.
struct ServerSocket {
  int fd;                  ///< The listening descriptor (the Server owns it).
  SocketAddress sockname;  ///< The address it listens on (the port picked, for port 0).
};

/// A listening TCP or Unix stream server and its accepted connections
/// (asyncio.Server). Made by EventLoop::create_server / create_unix_server;
/// shared, so it can be kept after close().
class TULIP_API Server : public std::enable_shared_from_this<Server> {
 public:
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// The loop the server runs on.
  EventLoop& get_loop() const noexcept { return loop_; }

  /// Stops listening and closes the listening sockets. Accepted connections stay
  /// open. A Unix server removes its socket file, unless another file replaced
  /// it or cleanup_socket is off. A pending serve_forever() Future is cancelled, as asyncio cancels
  /// the serve_forever() task. Idempotent.
  void close();
  /// close() every accepted connection (they flush first).
  void close_clients();
  /// abort() every accepted connection.
  void abort_clients();

  /// Completes once the server is closed and every accepted connection is gone.
  Future<void> wait_closed();
  /// Starts serving (if not yet) and returns a Future that never completes by
  /// itself: close() cancels it (asyncio: serve_forever() raises
  /// CancelledError), and cancelling it closes the server. Throws RuntimeError
  /// if the server is closed or a serve_forever() Future is already pending.
  Future<void> serve_forever();
  /// Starts accepting, if the server was created with start_serving = false.
  void start_serving();

  /// True while accepting connections.
  bool is_serving() const noexcept { return serving_; }
  /// The listening sockets (empty once closed); asyncio returns socket objects.
  std::vector<ServerSocket> sockets() const;
  /// Accepted connections whose connection_lost has not returned yet.
  std::size_t connection_count() const noexcept { return clients_; }
  /// Connections accepted since the server was made (handed to the factory).
  std::uint64_t accepted_count() const noexcept { return accepted_; }

 private:
  /// @cond INTERNAL
  using ProtocolFactory = std::function<std::shared_ptr<StreamProtocol>()>;
  // Listeners, transports and create_server reach these through detail::ServerAccess.
  friend struct detail::ServerAccess;

  Server(EventLoop& loop, ProtocolFactory factory, ServerOptions options);
  void add_listener(int fd);
  void on_accepted(int fd, const SocketAddress& peer);
  // accept() failed with `error`: report it and stop accepting for a while.
  void pause_accepting(int error);
  void attach(Transport* transport);
  void detach(Transport* transport);
  void set_accepting(bool accepting);
  void maybe_wake_closed_waiters();
  // A Unix server's socket file, removed on close() if it is still the one
  // bound (identified by device and inode); empty: nothing to remove.
  void set_socket_file(std::string path, std::uint64_t device, std::uint64_t inode);

  EventLoop& loop_;
  ProtocolFactory factory_;
  ServerOptions options_;
  std::vector<std::unique_ptr<detail::Listener>> listeners_;
  // Accepted connections not yet released. A count, not a set: the transports
  // are in the loop's registry already, and close_clients() finds them there
  // (a set cost a node and a bucket per connection).
  std::size_t clients_ = 0;
  // Set while closed with connections left: their transports hold the server
  // by a plain pointer, so it keeps itself alive until the last is released.
  std::shared_ptr<Server> kept_for_clients_;
  std::vector<Future<void>> closed_waiters_;
  Future<void> serve_forever_waiter_;
  TimerHandle resume_accepting_;
  std::string socket_file_;
  std::uint64_t socket_file_device_ = 0;
  std::uint64_t socket_file_inode_ = 0;
  std::uint64_t accepted_ = 0;
  bool serving_ = false;
  bool closed_ = false;
  /// @endcond
};

}  // namespace tulip
