#include "pipe_ops.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <stdexcept>
#include <string>

#include "socket_ops.hpp"

namespace tulip::detail {

ssize_t read_from_pipe(int fd, void* data, std::size_t size) noexcept {
  for (;;) {
    ssize_t n = ::read(fd, data, size);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

ssize_t write_to_pipe(int fd, const iovec* buffers, std::size_t count) noexcept {
  sigset_t sigpipe;
  sigemptyset(&sigpipe);
  sigaddset(&sigpipe, SIGPIPE);
  sigset_t previous;
  pthread_sigmask(SIG_BLOCK, &sigpipe, &previous);
  ssize_t result;
  for (;;) {
    ssize_t n = count == 1 ? ::write(fd, buffers[0].iov_base, buffers[0].iov_len)
                           : ::writev(fd, buffers, static_cast<int>(count));
    if (n >= 0) {
      result = n;
      break;
    }
    if (errno == EINTR) continue;
    result = -errno;
    break;
  }
  // A SIGPIPE this write raised is pending on this thread now; take it, unless
  // the thread had SIGPIPE blocked already (then it is the thread owner's to
  // handle, as it would have been without us).
  if (result == -EPIPE && !sigismember(&previous, SIGPIPE)) {
    timespec no_wait{};
    while (::sigtimedwait(&sigpipe, nullptr, &no_wait) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return result;
}

bool prepare_pipe_descriptor(int fd, const char* operation) {
  struct stat status;
  if (::fstat(fd, &status) < 0) {
    throw_os_error(errno, std::string(operation) + "(" + std::to_string(fd) + ")");
  }
  bool fifo_or_socket = S_ISFIFO(status.st_mode) || S_ISSOCK(status.st_mode);
  if (!fifo_or_socket && !S_ISCHR(status.st_mode)) {
    throw std::invalid_argument(std::string(operation) + "(" + std::to_string(fd) +
                                "): pipe transports are for pipes, sockets and character "
                                "devices only, not regular files or directories");
  }
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    throw_os_error(errno, std::string(operation) + "(" + std::to_string(fd) + "): fcntl");
  }
  return fifo_or_socket;
}

}  // namespace tulip::detail
