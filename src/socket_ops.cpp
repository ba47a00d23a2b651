#include "socket_ops.hpp"

#include <fcntl.h>
#include <unistd.h>

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

ssize_t receive(int fd, void* data, std::size_t size, std::error_code& error) {
  for (;;) {
    ssize_t n = ::recv(fd, data, size, 0);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    error = errno_code(errno);
    return -1;
  }
}

ssize_t send_buffers(int fd, const iovec* buffers, std::size_t count, std::error_code& error) {
  msghdr message{};
  message.msg_iov = const_cast<iovec*>(buffers);
  message.msg_iovlen = count;
  for (;;) {
    ssize_t n = ::sendmsg(fd, &message, MSG_NOSIGNAL);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    error = errno_code(errno);
    return -1;
  }
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

void close_fd(int fd) noexcept {
  if (fd >= 0) ::close(fd);
}

}  // namespace tulip::detail
