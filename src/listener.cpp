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
  for (int i = 0; i < backlog_; ++i) {
    int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      server_.on_accepted(fd);
      if (!server_.is_serving()) return;  // a protocol factory may have closed the server
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
