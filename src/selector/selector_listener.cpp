// SelectorListener: a listening socket that accepts on readiness.
//
// Accepts up to `backlog` connections per readiness event (asyncio does the
// same), so a burst of clients is taken in one go without starving the rest of
// the loop.
#include <sys/socket.h>

#include <cerrno>

#include "selector/epoll_backend.hpp"
#include "server_access.hpp"
#include "socket_ops.hpp"

namespace tulip::detail {
namespace {

class SelectorListener final : public Listener, private IoWatcher {
 public:
  SelectorListener(EpollBackend& backend, Server& server, int fd, int backlog)
      : backend_(backend),
        server_(server),
        fd_(fd),
        backlog_(backlog),
        address_(SocketAddress::local_of(fd)) {
    backend_.claim(fd_);
  }
  ~SelectorListener() override { backend_.close_socket(fd_); }

  int fd() const noexcept override { return fd_; }
  const SocketAddress& address() const noexcept override { return address_; }
  void set_accepting(bool accepting) override {
    backend_.set_interest(fd_, this, accepting ? kReadable : 0u);
  }

 private:
  void on_io_event(std::uint32_t) override {
    // A protocol factory may close the server from inside on_accepted(): that
    // destroys this listener, and may drop the last reference to the server.
    // Keep the server alive, and touch no member once it has stopped serving.
    std::shared_ptr<Server> server = server_.shared_from_this();
    for (int i = 0; i < backlog_; ++i) {
      sockaddr_storage peer;
      socklen_t peer_length = sizeof(peer);
      int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &peer_length,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        // accept() tells the peer's address for free: the transport need not ask.
        ServerAccess::on_accepted(
            *server, fd, SocketAddress(reinterpret_cast<const sockaddr*>(&peer), peer_length));
        if (!server->is_serving()) return;  // `this` may be gone
        continue;
      }
      int error = errno;
      if (error == EINTR || error == ECONNABORTED || error == EPROTO) continue;
      if (would_block(error)) return;
      // Out of descriptors or memory (or anything unexpected): level-triggered
      // readiness would report the pending connection again at once, so back
      // off instead of spinning; the server resumes after a delay.
      ServerAccess::pause_accepting(*server, error);
      return;
    }
  }

  EpollBackend& backend_;
  Server& server_;
  int fd_;
  int backlog_;
  SocketAddress address_;
};

}  // namespace

std::unique_ptr<Listener> EpollBackend::make_listener(Server& server, int fd, int backlog) {
  return std::make_unique<SelectorListener>(*this, server, fd, backlog);
}

}  // namespace tulip::detail
