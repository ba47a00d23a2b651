// Thin wrappers over the socket system calls. Not API.
//
// Each reports its error as a value (a std::error_code, or -errno from the
// byte-moving calls on the hot path) instead of leaving it in errno, so callers
// cannot read a stale errno after another call; EINTR is retried here.
//
// Thread-safety: plain functions.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstddef>
#include <string>
#include <system_error>

namespace tulip::detail {

[[noreturn]] void throw_os_error(int error, const std::string& what);

inline std::error_code errno_code(int error) { return {error, std::generic_category()}; }

/// True for the errors that mean "try again later" on a non-blocking socket.
inline bool would_block(int error) { return error == EAGAIN || error == EWOULDBLOCK; }

/// A non-blocking, close-on-exec socket, or -1 with `error` set.
int open_socket(int family, int type, int protocol, std::error_code& error);

// The three calls below run once per read or write of every connection: they
// are inline and report -errno, because building a std::error_code costs an
// out-of-line call even when there is no error.

/// recv() into [data, data+size): bytes read, 0 at EOF, or -errno.
inline ssize_t receive(int fd, void* data, std::size_t size) noexcept {
  for (;;) {
    ssize_t n = ::recv(fd, data, size, 0);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

/// send() with MSG_NOSIGNAL (a closed peer never raises SIGPIPE): bytes sent,
/// or -errno (-EAGAIN included).
inline ssize_t send_bytes(int fd, const void* data, std::size_t size) noexcept {
  for (;;) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

/// sendmsg() of `count` buffers with MSG_NOSIGNAL: bytes sent, or -errno.
inline ssize_t send_buffers(int fd, const iovec* buffers, std::size_t count) noexcept {
  if (count == 1) return send_bytes(fd, buffers[0].iov_base, buffers[0].iov_len);
  msghdr message{};
  message.msg_iov = const_cast<iovec*>(buffers);
  message.msg_iovlen = count;
  for (;;) {
    ssize_t n = ::sendmsg(fd, &message, MSG_NOSIGNAL);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

/// sendfile(2) of up to `count` bytes of `file_fd` from `*offset` to the socket
/// `socket_fd` (advancing `*offset`), retrying EINTR: bytes sent, 0 at the end
/// of the file, or -errno. sendfile has no MSG_NOSIGNAL: SIGPIPE is blocked
/// around the call and one it raised is taken back, so that a peer that went
/// away never kills the process (the promise every send of tulip keeps).
ssize_t send_file(int socket_fd, int file_fd, off_t* offset, std::size_t count) noexcept;

/// The socket's pending error (SO_ERROR), e.g. after a non-blocking connect.
std::error_code socket_error(int fd);

/// setsockopt() of an int option; returns the error, if any.
std::error_code set_int_option(int fd, int level, int name, int value);

/// getsockopt() of an int option, or -1 if it fails.
int get_int_option(int fd, int level, int name);

/// Closes `fd` (ignoring EINTR, which on Linux still closes it).
void close_fd(int fd) noexcept;

/// Owns a descriptor until something takes it (release()), so that every path
/// that does not get that far (an error, a cancellation, a loop closed before
/// a queued step ran) closes it.
class OwnedFd {
 public:
  explicit OwnedFd(int fd) noexcept : fd_(fd) {}
  OwnedFd(OwnedFd&& other) noexcept : fd_(other.release()) {}
  OwnedFd& operator=(OwnedFd&&) = delete;
  ~OwnedFd() { close_fd(fd_); }

  int get() const noexcept { return fd_; }
  int release() noexcept {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

}  // namespace tulip::detail
