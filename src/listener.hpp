// Listener: one listening socket of a Server, accepting on readiness. Not API.
//
// Accepts up to `backlog` connections per readiness event (asyncio does the
// same), so a burst of clients is taken in one go without starving the rest of
// the loop.
//
// Thread-safety: loop thread only.
#pragma once

#include "io_backend.hpp"
#include "tulip/socket_address.hpp"

namespace tulip {
class Server;
class EventLoop;
}  // namespace tulip

namespace tulip::detail {

class Listener final : private IoWatcher {
 public:
  /// Takes ownership of the bound, listening socket `fd`.
  Listener(EventLoop& loop, Server& server, int fd, int backlog);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  int fd() const noexcept { return fd_; }
  const SocketAddress& address() const noexcept { return address_; }
  void set_accepting(bool accepting);

 private:
  void on_io_event(std::uint32_t events) override;

  EventLoop& loop_;
  Server& server_;
  int fd_;
  int backlog_;
  SocketAddress address_;
};

}  // namespace tulip::detail
