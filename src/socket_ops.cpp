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
