#include "socket_ops.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <csignal>
#include <ctime>

#include <cerrno>

#include "tulip/errors.hpp"

namespace tulip::detail {

void throw_os_error(int error, const std::string& what) {
  throw OSError(errno_code(error), what + ": " + errno_code(error).message());
}

int open_socket(int family, int type, int protocol, std::error_code& error) {
  int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) error = errno_code(errno);
  return fd;
}

std::error_code socket_error(int fd) {
  int value = 0;
  socklen_t length = sizeof(value);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length) < 0) return errno_code(errno);
  return value == 0 ? std::error_code{} : errno_code(value);
}

std::error_code set_int_option(int fd, int level, int name, int value) {
  if (::setsockopt(fd, level, name, &value, sizeof(value)) < 0) return errno_code(errno);
  return {};
}

int get_int_option(int fd, int level, int name) {
  int value = 0;
  socklen_t length = sizeof(value);
  if (::getsockopt(fd, level, name, &value, &length) < 0) return -1;
  return value;
}

ssize_t send_file(int socket_fd, int file_fd, off_t* offset, std::size_t count) noexcept {
  sigset_t pipe_signal;
  sigset_t previous;
  ::sigemptyset(&pipe_signal);
  ::sigaddset(&pipe_signal, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_signal, &previous);
  ssize_t n;
  do {
    n = ::sendfile(socket_fd, file_fd, offset, count);
  } while (n < 0 && errno == EINTR);
  int error = n < 0 ? errno : 0;
  if ((n < 0 || static_cast<std::size_t>(n) < count) && !::sigismember(&previous, SIGPIPE)) {
    // A call cut short may have raised SIGPIPE at this thread while it was
    // blocked (the splice path raises it even when it reports the bytes it
    // moved): take it back before unblocking. A thread that blocks SIGPIPE
    // itself keeps whatever is pending, which may not be ours.
    timespec no_wait{};
    while (::sigtimedwait(&pipe_signal, nullptr, &no_wait) < 0 && errno == EINTR) {
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return n < 0 ? -error : n;
}

void close_fd(int fd) noexcept {
  if (fd >= 0) ::close(fd);
}

}  // namespace tulip::detail
