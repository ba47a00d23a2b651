#include "listener.hpp"

#include <sys/socket.h>

#include <cerrno>

#include "loop_internals.hpp"
#include "socket_ops.hpp"
#include "tulip/server.hpp"

namespace tulip::detail {

Listener::Listener(EventLoop& loop, Server& server, int fd, int backlog)
    : loop_(loop),
      server_(server),
      fd_(fd),
      backlog_(backlog),
      address_(SocketAddress::local_of(fd)) {}

Listener::~Listener() {
  loop_.internals().backend.set_interest(fd_, this, 0);
  close_fd(fd_);
}

void Listener::set_accepting(bool accepting) {
  loop_.internals().backend.set_interest(fd_, this, accepting ? kReadable : 0u);
}

void Listener::on_io_event(std::uint32_t) {
  // A protocol factory may close the server from inside on_accepted(): that
  // destroys this listener, and may drop the last reference to the server. Keep
  // the server alive, and touch no member once it has stopped serving.
  std::shared_ptr<Server> server = server_.shared_from_this();
  for (int i = 0; i < backlog_; ++i) {
    sockaddr_storage peer;
    socklen_t peer_length = sizeof(peer);
    int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &peer_length,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      // accept() tells the peer's address for free: the transport need not ask.
      server->on_accepted(fd, SocketAddress(reinterpret_cast<const sockaddr*>(&peer), peer_length));
      if (!server->is_serving()) return;  // `this` may be gone
      continue;
    }
    int error = errno;
    if (error == EINTR || error == ECONNABORTED || error == EPROTO) continue;
    if (would_block(error)) return;
    // Out of descriptors or memory (or anything unexpected): level-triggered
    // readiness would report the pending connection again at once, so back off
    // instead of spinning; the server resumes after a delay.
    server_.pause_accepting(error);
    return;
  }
}

}  // namespace tulip::detail
