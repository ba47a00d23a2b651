// The machinery of the loop's socket operations (sock_recv, sock_sendall,
// sock_sendfile, ...). Not API.
//
// Built, as asyncio's selector loop builds them, on add_reader/add_writer:
// an operation tries its system call at once and, if the socket is not
// ready, installs a reader or writer that tries again on readiness and
// removes itself once the operation is over. It remembers the generation of
// the reader or writer it installed and removes only that one, so a cancelled
// operation never removes a reader that someone installed on the descriptor
// since.
//
// Thread-safety: loop thread only.
#pragma once

#include <fcntl.h>

#include <cerrno>
#include <cstdint>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "fd_watcher.hpp"
#include "loop_access.hpp"
#include "socket_ops.hpp"
#include "tulip/event_loop.hpp"

namespace tulip::detail {

/// "name(fd N)", how every message of an operation starts.
inline std::string operation_label(const char* name, int fd) {
  return std::string(name) + "(fd " + std::to_string(fd) + ")";
}

/// OSError for operation `name` on `fd` failing with errno `error`.
inline std::exception_ptr operation_error(const char* name, int fd, int error) {
  return std::make_exception_ptr(
      OSError(errno_code(error), operation_label(name, fd) + ": " + errno_code(error).message()));
}

/// Throws unless `fd` is an open, non-blocking descriptor that no transport of
/// `loop` owns: reading a transport's socket behind its back would steal its bytes.
inline void check_operation_descriptor(EventLoop& loop, int fd, const char* name) {
  if (fd < 0) throw std::invalid_argument(operation_label(name, fd) + ": invalid descriptor");
  if (LoopAccess::backend(loop).owns(fd)) {
    throw RuntimeError(
        operation_label(name, fd) +
        ": the descriptor is used by a transport, server or connection of this loop");
  }
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) std::rethrow_exception(operation_error(name, fd, errno));
  if ((flags & O_NONBLOCK) == 0) {
    throw std::invalid_argument(operation_label(name, fd) + ": the socket must be non-blocking");
  }
  // An operation still waiting on a file this number named before it was
  // closed can never be woken: it fails now, and does not stand in the way.
  drop_stale_watcher(loop, fd);
}

/// Runs `attempt` (bool(Future<T>&): true once it has completed the Future) now
/// and then on each readiness of `fd` (`write`: writability) until it finishes
/// or the Future is cancelled. `check` (void(): throws to refuse) runs first,
/// after the descriptor checks; what it throws fails the Future.
template <class T, class Attempt, class Check>
Future<T> socket_operation(EventLoop& loop, int fd, bool write, const char* name, Attempt attempt,
                           Check check) {
  Future<T> result = loop.create_future<T>();
  try {
    check_operation_descriptor(loop, fd, name);
    check();
  } catch (...) {
    result.set_exception(std::current_exception());
    return result;
  }
  if (attempt(result)) return result;
  if (watch_generation(loop, fd, write) != 0) {
    // Replacing it (as asyncio does) would leave the other waiter hanging forever.
    result.set_exception(std::make_exception_ptr(
        RuntimeError(operation_label(name, fd) + ": another operation or " +
                     (write ? "add_writer" : "add_reader") + " already waits on this descriptor")));
    return result;
  }
  auto retry = std::make_shared<Attempt>(std::move(attempt));
  auto generation = std::make_shared<std::uint64_t>(0);
  Callback on_ready = [&loop, fd, write, result, retry, generation]() mutable {
    if (result.done() || (*retry)(result)) {
      remove_watch_if_current(loop, fd, write, *generation);
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
  *generation = watch_generation(loop, fd, write);
  set_lost_callback(loop, fd, write, [result, name, fd](bool closed) mutable {
    if (result.done()) return;
    std::string why = closed ? "the descriptor was closed while the operation waited"
                             : "the descriptor was taken by a transport, server or connection "
                               "of this loop while the operation waited";
    result.set_exception(std::make_exception_ptr(
        OSError(errno_code(EBADF), operation_label(name, fd) + ": " + why)));
  });
  result.add_done_callback([&loop, fd, write, generation](Future<T>& done) {
    // Cancelled while waiting: stop watching (only what this operation installed).
    if (done.cancelled()) remove_watch_if_current(loop, fd, write, *generation);
  });
  return result;
}

/// socket_operation without an extra check.
template <class T, class Attempt>
Future<T> socket_operation(EventLoop& loop, int fd, bool write, const char* name, Attempt attempt) {
  return socket_operation<T>(loop, fd, write, name, std::move(attempt), [] {});
}

}  // namespace tulip::detail
