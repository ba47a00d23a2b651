// EventLoop::sock_*: asyncio's socket operations on descriptors the caller owns.
//
// Built, as asyncio's selector loop builds them, on add_reader/add_writer:
// each operation tries its system call at once and, if the socket is not
// ready, installs a reader or writer that tries again on readiness and
// removes itself once the operation is over. Readiness works with any backend
// that can watch plain descriptors; a completion backend may later submit the
// operations themselves.
//
// An operation remembers the generation of the reader or writer it installed
// and removes only that one, so a cancelled operation never removes a reader
// that someone installed on the descriptor since.
#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "fd_watcher.hpp"
#include "loop_access.hpp"
#include "socket_ops.hpp"
#include "tulip/event_loop.hpp"

namespace tulip {
namespace {

std::string label(const char* name, int fd) {
  return std::string(name) + "(fd " + std::to_string(fd) + ")";
}

std::exception_ptr os_error(const char* name, int fd, int error) {
  return std::make_exception_ptr(OSError(
      detail::errno_code(error), label(name, fd) + ": " + detail::errno_code(error).message()));
}

// Throws unless `fd` is an open, non-blocking descriptor that no transport of
// `loop` owns: reading a transport's socket behind its back would steal its bytes.
void check_descriptor(EventLoop& loop, int fd, const char* name) {
  if (fd < 0) throw std::invalid_argument(label(name, fd) + ": invalid descriptor");
  if (detail::LoopAccess::backend(loop).owns(fd)) {
    throw RuntimeError(
        label(name, fd) +
        ": the descriptor is used by a transport, server or connection of this loop");
  }
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) std::rethrow_exception(os_error(name, fd, errno));
  if ((flags & O_NONBLOCK) == 0) {
    throw std::invalid_argument(label(name, fd) + ": the socket must be non-blocking");
  }
}

// Runs `attempt` (bool(Future<T>&): true once it has completed the Future) now
// and then on each readiness of `fd` (`write`: writability) until it finishes
// or the Future is cancelled.
template <class T, class Attempt>
Future<T> socket_operation(EventLoop& loop, int fd, bool write, const char* name, Attempt attempt) {
  Future<T> result = loop.create_future<T>();
  try {
    check_descriptor(loop, fd, name);
  } catch (...) {
    result.set_exception(std::current_exception());
    return result;
  }
  if (attempt(result)) return result;
  if (detail::watch_generation(loop, fd, write) != 0) {
    // Replacing it (as asyncio does) would leave the other waiter hanging forever.
    result.set_exception(std::make_exception_ptr(
        RuntimeError(label(name, fd) + ": another operation or " +
                     (write ? "add_writer" : "add_reader") + " already waits on this descriptor")));
    return result;
  }
  auto retry = std::make_shared<Attempt>(std::move(attempt));
  auto generation = std::make_shared<std::uint64_t>(0);
  Callback on_ready = [&loop, fd, write, result, retry, generation]() mutable {
    if (result.done() || (*retry)(result)) {
      detail::remove_watch_if_current(loop, fd, write, *generation);
    }
  };
  try {
    if (write) {
      loop.add_writer(fd, std::move(on_ready));
    } else {
      loop.add_reader(fd, std::move(on_ready));
    }
  } catch (...) {
    result.set_exception(std::current_exception());
    return result;
  }
  *generation = detail::watch_generation(loop, fd, write);
  result.add_done_callback([&loop, fd, write, generation](Future<T>& done) {
    // Cancelled while waiting: stop watching (only what this operation installed).
    if (done.cancelled()) detail::remove_watch_if_current(loop, fd, write, *generation);
  });
  return result;
}

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
