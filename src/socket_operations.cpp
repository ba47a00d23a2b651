// EventLoop::sock_*: asyncio's socket operations on descriptors the caller owns
// (the machinery they share is in socket_operation.hpp). Readiness works with
// any backend that can watch plain descriptors; a completion backend may later
// submit the operations themselves.
#include <sys/socket.h>

#include <cerrno>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "socket_operation.hpp"

namespace tulip {
namespace {

using detail::socket_operation;

std::exception_ptr os_error(const char* name, int fd, int error) {
  return detail::operation_error(name, fd, error);
}

std::string label(const char* name, int fd) { return detail::operation_label(name, fd); }

// For the receive calls: true if the operation is over (result or error set).
template <class T>
bool settle_error(Future<T>& result, const char* name, int fd, int error) {
  if (detail::would_block(error)) return false;
  result.set_exception(os_error(name, fd, error));
  return true;
}

ssize_t receive_from(int fd, void* data, std::size_t size, SocketAddress& sender) {
  sockaddr_storage from;
  socklen_t length = sizeof(from);
  for (;;) {
    ssize_t n = ::recvfrom(fd, data, size, 0, reinterpret_cast<sockaddr*>(&from), &length);
    if (n >= 0) {
      sender = SocketAddress(reinterpret_cast<const sockaddr*>(&from), length);
      return n;
    }
    if (errno != EINTR) return -errno;
  }
}

}  // namespace

Future<std::string> EventLoop::sock_recv(int fd, std::size_t nbytes) {
  return socket_operation<std::string>(
      *this, fd, false, "sock_recv", [fd, nbytes](Future<std::string>& result) {
        std::string data(nbytes, '\0');
        ssize_t n = detail::receive(fd, data.data(), nbytes);
        if (n < 0) return settle_error(result, "sock_recv", fd, static_cast<int>(-n));
        data.resize(static_cast<std::size_t>(n));
        result.set_result(std::move(data));
        return true;
      });
}

Future<std::size_t> EventLoop::sock_recv_into(int fd, std::span<std::byte> buffer) {
  return socket_operation<std::size_t>(
      *this, fd, false, "sock_recv_into", [fd, buffer](Future<std::size_t>& result) {
        ssize_t n = detail::receive(fd, buffer.data(), buffer.size());
        if (n < 0) return settle_error(result, "sock_recv_into", fd, static_cast<int>(-n));
        result.set_result(static_cast<std::size_t>(n));
        return true;
      });
}

Future<std::pair<std::string, SocketAddress>> EventLoop::sock_recvfrom(int fd,
                                                                       std::size_t bufsize) {
  using Received = std::pair<std::string, SocketAddress>;
  return socket_operation<Received>(
      *this, fd, false, "sock_recvfrom", [fd, bufsize](Future<Received>& result) {
        std::string data(bufsize, '\0');
        SocketAddress sender;
        ssize_t n = receive_from(fd, data.data(), bufsize, sender);
        if (n < 0) return settle_error(result, "sock_recvfrom", fd, static_cast<int>(-n));
        data.resize(std::min(static_cast<std::size_t>(n), bufsize));
        result.set_result(Received{std::move(data), sender});
        return true;
      });
}

Future<std::pair<std::size_t, SocketAddress>> EventLoop::sock_recvfrom_into(
    int fd, std::span<std::byte> buffer) {
  using Received = std::pair<std::size_t, SocketAddress>;
  return socket_operation<Received>(
      *this, fd, false, "sock_recvfrom_into", [fd, buffer](Future<Received>& result) {
        SocketAddress sender;
        ssize_t n = receive_from(fd, buffer.data(), buffer.size(), sender);
        if (n < 0) return settle_error(result, "sock_recvfrom_into", fd, static_cast<int>(-n));
        result.set_result(Received{static_cast<std::size_t>(n), sender});
        return true;
      });
}

Future<void> EventLoop::sock_sendall(int fd, std::string data) {
  return socket_operation<void>(
      *this, fd, true, "sock_sendall",
      [fd, data = std::move(data), sent = std::size_t{0}](Future<void>& result) mutable {
        while (sent < data.size()) {
          ssize_t n = detail::send_bytes(fd, data.data() + sent, data.size() - sent);
          if (n < 0) return settle_error(result, "sock_sendall", fd, static_cast<int>(-n));
          sent += static_cast<std::size_t>(n);
        }
        result.set_result();
        return true;
      });
}

Future<std::size_t> EventLoop::sock_sendto(int fd, std::string data, SocketAddress address) {
  return socket_operation<std::size_t>(
      *this, fd, true, "sock_sendto",
      [fd, data = std::move(data), address](Future<std::size_t>& result) {
        for (;;) {
          ssize_t n =
              ::sendto(fd, data.data(), data.size(), MSG_NOSIGNAL, address.data(), address.size());
          if (n >= 0) {
            result.set_result(static_cast<std::size_t>(n));
            return true;
          }
          if (errno != EINTR) return settle_error(result, "sock_sendto", fd, errno);
        }
      });
}

Future<void> EventLoop::sock_connect(int fd, SocketAddress address) {
  return socket_operation<void>(
      *this, fd, true, "sock_connect",
      [fd, address, started = false](Future<void>& result) mutable {
        if (started) {
          // Writable: the attempt has ended, and SO_ERROR says how.
          std::error_code error = detail::socket_error(fd);
          if (error) {
            result.set_exception(os_error("sock_connect", fd, error.value()));
          } else {
            result.set_result();
          }
          return true;
        }
        started = true;
        if (::connect(fd, address.data(), address.size()) == 0) {
          result.set_result();
          return true;
        }
        int error = errno;
        if (error == EINPROGRESS || error == EINTR) return false;  // wait for writability
        result.set_exception(std::make_exception_ptr(OSError(
            detail::errno_code(error), label("sock_connect", fd) + ": connect to " +
                                           address.to_string() +
                                           " failed: " + detail::errno_code(error).message())));
        return true;
      });
}

Future<std::pair<int, SocketAddress>> EventLoop::sock_accept(int fd) {
  using Accepted = std::pair<int, SocketAddress>;
  return socket_operation<Accepted>(
      *this, fd, false, "sock_accept", [fd](Future<Accepted>& result) {
        for (;;) {
          sockaddr_storage peer;
          socklen_t length = sizeof(peer);
          int accepted = ::accept4(fd, reinterpret_cast<sockaddr*>(&peer), &length,
                                   SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (accepted >= 0) {
            result.set_result(Accepted{
                accepted, SocketAddress(reinterpret_cast<const sockaddr*>(&peer), length)});
            return true;
          }
          int error = errno;
          // A connection that went away before it was accepted: wait for the next.
          if (error == EINTR) continue;
          if (error == ECONNABORTED || error == EPROTO) return false;
          return settle_error(result, "sock_accept", fd, error);
        }
      });
}

}  // namespace tulip
