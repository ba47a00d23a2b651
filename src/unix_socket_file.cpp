#include "unix_socket_file.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>

#include "socket_ops.hpp"
#include "tulip/errors.hpp"

namespace tulip::detail {

std::string describe_unix_path(const std::string& path) {
  if (!path.empty() && path.front() == '\0') {
    auto address = SocketAddress::from_path(path);
    return address ? address->to_string() : "an abstract name";
  }
  return "'" + path + "'";
}

SocketAddress unix_address_or_throw(const std::string& path, const char* operation) {
  if (auto address = SocketAddress::from_path(path)) return *address;
  if (path.empty()) {
    throw OSError(errno_code(EINVAL),
                  std::string(operation) + " a Unix socket: the path must not be empty");
  }
  if (path.find('\0', 1) != std::string::npos) {
    throw OSError(errno_code(EINVAL), std::string(operation) +
                                          " a Unix socket: the path may hold a NUL byte only "
                                          "as its first byte (an abstract name)");
  }
  std::string shown = describe_unix_path(path);
  throw OSError(errno_code(ENAMETOOLONG), std::string(operation) + " " + shown + ": the path is " +
                                              std::to_string(path.size()) +
                                              " bytes, longer than the " +
                                              std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                                              " a Unix socket address can hold");
}

void remove_stale_socket_file(const SocketAddress& address, int type) {
  std::string path = address.path();
  struct stat status;
  if (::lstat(path.c_str(), &status) != 0 || !S_ISSOCK(status.st_mode)) return;
  // A socket file outlives the socket that bound it. Ask it: a refused
  // connection means nobody is bound there (stale, ours to replace); an
  // accepted one, a full backlog, or a socket of another type (EPROTOTYPE)
  // means a live socket is there, and taking its path would cut it off from
  // everyone who sends to it. (A datagram connect() only checks the peer.)
  std::error_code error;
  int probe = open_socket(AF_UNIX, type, 0, error);
  if (probe < 0) return;  // cannot tell: bind() will report what it finds
  int status_code = ::connect(probe, address.data(), address.size());
  int connect_error = status_code == 0 ? 0 : errno;
  close_fd(probe);
  if (connect_error == 0 || connect_error == EAGAIN || connect_error == EINPROGRESS ||
      connect_error == EPROTOTYPE) {
    const char* who = connect_error == EPROTOTYPE ? "a socket of another type is bound there"
                      : type == SOCK_STREAM       ? "a server is already listening there"
                                                  : "a socket is already bound there";
    throw OSError(errno_code(EADDRINUSE),
                  "error while attempting to bind on address '" + path + "': " + who);
  }
  if (connect_error == ECONNREFUSED) ::unlink(path.c_str());
}

std::optional<SocketFileIdentity> identify_socket_file(const std::string& path) {
  struct stat status;
  if (::lstat(path.c_str(), &status) != 0 || !S_ISSOCK(status.st_mode)) return std::nullopt;
  return SocketFileIdentity{status.st_dev, status.st_ino};
}

void remove_socket_file_if_unchanged(const std::string& path, const SocketFileIdentity& identity) {
  auto current = identify_socket_file(path);
  // Another server may have removed our file and bound its own there: leave it.
  if (current && current->device == identity.device && current->inode == identity.inode) {
    ::unlink(path.c_str());
  }
}

void bind_unix_socket(int fd, const SocketAddress& address) {
  if (::bind(fd, address.data(), address.size()) == 0) return;
  std::error_code error = errno_code(errno);
  std::string hint;
  if (error == std::errc::no_such_file_or_directory) hint = " (the directory does not exist)";
  throw OSError(error, "error while attempting to bind on address " +
                           describe_unix_path(address.path()) + ": " + error.message() + hint);
}

int open_unix_listening_socket(const SocketAddress& address, int backlog) {
  std::string shown = describe_unix_path(address.path());
  std::error_code error;
  int fd = open_socket(AF_UNIX, SOCK_STREAM, 0, error);
  if (fd < 0) throw OSError(error, "socket() for " + shown + " failed: " + error.message());
  try {
    bind_unix_socket(fd, address);
  } catch (...) {
    close_fd(fd);
    throw;
  }
  if (::listen(fd, backlog) < 0) {
    error = errno_code(errno);
    close_fd(fd);
    throw OSError(error, "listen() on " + shown + " failed: " + error.message());
  }
  return fd;
}

}  // namespace tulip::detail
