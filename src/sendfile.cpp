// EventLoop::sendfile and EventLoop::sock_sendfile: asyncio's loop.sendfile
// and loop.sock_sendfile.
//
// loop.sendfile asks the backend first (IoBackend::start_sendfile): a plain
// stream socket transport of the readiness backend sends with the kernel's
// sendfile(2). Otherwise, or when the kernel refuses the file before the
// first byte, the buffered path reads the file and writes it through the
// transport (buffered_sendfile.cpp), unless the caller disabled it
// (fallback=false, then RuntimeError / SendfileNotAvailableError as asyncio).
//
// loop.sock_sendfile is a socket operation (socket_operation.hpp) on a
// descriptor the caller owns: one sendfile(2) call per writability event, or,
// when the kernel cannot send that file, pread() and send() of 256 KiB chunks.
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "buffered_sendfile.hpp"
#include "io_backend.hpp"
#include "loop_access.hpp"
#include "sendfile_support.hpp"
#include "socket_operation.hpp"
#include "socket_ops.hpp"
#include "tulip/event_loop.hpp"

namespace tulip {
namespace detail {

namespace {

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a pipe";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

}  // namespace

std::uint64_t check_file_to_send(const char* operation, int file_fd, std::int64_t offset) {
  if (offset < 0) {
    throw std::invalid_argument(std::string(operation) +
                                ": offset must be a non-negative integer (got " +
                                std::to_string(offset) + ")");
  }
  struct stat status;
  if (file_fd < 0 || ::fstat(file_fd, &status) != 0) {
    std::error_code error = errno_code(file_fd < 0 ? EBADF : errno);
    throw OSError(error, std::string(operation) + ": file_fd " + std::to_string(file_fd) + ": " +
                             error.message());
  }
  if (!S_ISREG(status.st_mode)) {
    throw std::invalid_argument(std::string(operation) + ": file_fd " + std::to_string(file_fd) +
                                " is " + file_kind(status.st_mode) +
                                "; only a regular file can be sent");
  }
  return static_cast<std::uint64_t>(offset);
}

ssize_t read_file_at(int file_fd, char* data, std::size_t size, std::uint64_t offset) noexcept {
  for (;;) {
    ssize_t n = ::pread(file_fd, data, size, static_cast<off_t>(offset));
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

void set_file_position_after(int file_fd, std::uint64_t offset, std::size_t sent) noexcept {
  if (sent > 0) ::lseek(file_fd, static_cast<off_t>(offset + sent), SEEK_SET);
}

std::string bytes_sent_text(std::size_t sent) {
  return "after " + std::to_string(sent) + (sent == 1 ? " byte" : " bytes");
}

namespace {

// What the caller learns when the kernel's sendfile ended without success.
std::exception_ptr native_failure(int file_fd, const SendfileOutcome& outcome) {
  const std::error_code& error = outcome.error;
  if (outcome.connection_ended) {
    std::string what =
        error == std::errc::connection_aborted
            ? "the transport was closed " + bytes_sent_text(outcome.sent)
            : "the connection failed " + bytes_sent_text(outcome.sent) + ": " + error.message();
    return std::make_exception_ptr(ConnectionError(error, "sendfile: " + what));
  }
  return std::make_exception_ptr(
      OSError(error, "sendfile: sending file_fd " + std::to_string(file_fd) + " failed " +
                         bytes_sent_text(outcome.sent) + ": " + error.message()));
}

}  // namespace
}  // namespace detail

Future<std::size_t> EventLoop::sendfile(Transport& transport, int file_fd, std::int64_t offset,
                                        std::size_t count, bool fallback) {
  Future<std::size_t> result = create_future<std::size_t>();
  try {
    if (&transport.get_loop() != this) {
      throw std::invalid_argument("sendfile: the transport belongs to a different loop");
    }
    if (transport.is_closing()) throw RuntimeError("Transport is closing");
    // The kernel's path refuses a second sendfile itself; the buffered one is checked here.
    if (detail::buffered_sendfile_in_progress(transport)) {
      throw RuntimeError("sendfile is already in progress on this transport");
    }
    std::uint64_t start = detail::check_file_to_send("sendfile", file_fd, offset);
    std::weak_ptr<Transport> weak = transport.shared();
    detail::SendfileJob job;
    job.file_fd = file_fd;
    job.offset = start;
    job.count = count;
    job.cancelled = [result] { return result.done(); };
    job.done = [weak, file_fd, start, count, fallback,
                result](detail::SendfileOutcome outcome) mutable {
      if (result.done()) return;  // cancelled
      if (outcome.not_available) {
        std::shared_ptr<Transport> alive = weak.lock();
        if (!fallback || !alive) {
          result.set_exception(std::make_exception_ptr(SendfileNotAvailableError(
              "sendfile: the kernel cannot send file_fd " + std::to_string(file_fd) +
              " on this transport (" + outcome.error.message() + ") and fallback is disabled")));
          return;
        }
        try {
          detail::start_buffered_sendfile(*alive, file_fd, start, count, result);
        } catch (...) {
          result.set_exception(std::current_exception());
        }
        return;
      }
      if (outcome.error) {
        result.set_exception(detail::native_failure(file_fd, outcome));
      } else {
        result.set_result(outcome.sent);
      }
    };
    if (detail::LoopAccess::backend(*this).start_sendfile(transport, job)) return result;
    if (!fallback) {
      throw RuntimeError(
          "fallback is disabled and native sendfile is not supported for this transport");
    }
    detail::start_buffered_sendfile(transport, file_fd, start, count, result);
  } catch (...) {
    result.set_exception(std::current_exception());
  }
  return result;
}

Future<std::size_t> EventLoop::sock_sendfile(int sock_fd, int file_fd, std::int64_t offset,
                                             std::size_t count, bool fallback) {
  constexpr const char* kName = "sock_sendfile";
  // The operation's state: where the file starts, what was sent, and for the
  // buffered path the chunk read from the file and not yet sent whole.
  struct State {
    std::uint64_t start = 0;
    bool native = true;
    std::size_t sent = 0;
    std::unique_ptr<char[]> chunk;
    std::size_t chunk_size = 0;
    std::size_t chunk_sent = 0;
  };
  auto state = std::make_shared<State>();
  auto check = [sock_fd, file_fd, offset, state] {
    int type = detail::get_int_option(sock_fd, SOL_SOCKET, SO_TYPE);
    if (type != SOCK_STREAM) {
      throw std::invalid_argument(detail::operation_label(kName, sock_fd) +
                                  ": only SOCK_STREAM type sockets are supported");
    }
    state->start = detail::check_file_to_send(kName, file_fd, offset);
  };
  return detail::socket_operation<std::size_t>(
      *this, sock_fd, true, kName,
      [sock_fd, file_fd, count, fallback, state](Future<std::size_t>& result) {
        std::uint64_t first = state->start;
        auto done = [&](std::exception_ptr error) {
          detail::set_file_position_after(file_fd, first, state->sent);
          if (error) {
            result.set_exception(std::move(error));
          } else {
            result.set_result(state->sent);
          }
          return true;
        };
        auto failed = [&](int error) {
          return done(std::make_exception_ptr(OSError(
              detail::errno_code(error), detail::operation_label(kName, sock_fd) + ": failed " +
                                             detail::bytes_sent_text(state->sent) + ": " +
                                             detail::errno_code(error).message())));
        };
        for (;;) {
          if (state->native) {
            std::size_t want = detail::next_chunk(count, state->sent, 1 << 20);
            if (want == 0) return done(nullptr);
            auto position = static_cast<off_t>(first + state->sent);
            ssize_t n = detail::send_file(sock_fd, file_fd, &position, want);
            if (n > 0) {
              state->sent += static_cast<std::size_t>(n);
              // One call per readiness event: wait, unless the count is reached.
              if (count != 0 && state->sent == count) return done(nullptr);
              return false;
            }
            if (n == 0) return done(nullptr);  // the end of the file
            int error = static_cast<int>(-n);
            if (detail::would_block(error)) return false;
            bool unavailable = error == EINVAL || error == ENOSYS || error == EOPNOTSUPP ||
                               error == EOVERFLOW || error == ESPIPE;
            if (state->sent != 0 || !unavailable) return failed(error);
            if (!fallback) {
              return done(std::make_exception_ptr(SendfileNotAvailableError(
                  detail::operation_label(kName, sock_fd) + ": the kernel cannot send file_fd " +
                  std::to_string(file_fd) + " (" + detail::errno_code(error).message() +
                  ") and fallback is disabled")));
            }
            state->native = false;  // asyncio's _sock_sendfile_fallback from here
          }
          if (state->chunk_sent == state->chunk_size) {
            std::size_t want = detail::next_chunk(count, state->sent, detail::kSendfileReadSize);
            if (want == 0) return done(nullptr);
            if (!state->chunk) {
              state->chunk = std::make_unique_for_overwrite<char[]>(detail::kSendfileReadSize);
            }
            ssize_t n =
                detail::read_file_at(file_fd, state->chunk.get(), want, first + state->sent);
            if (n < 0) return failed(static_cast<int>(-n));
            if (n == 0) return done(nullptr);
            state->chunk_size = static_cast<std::size_t>(n);
            state->chunk_sent = 0;
          }
          ssize_t n = detail::send_bytes(sock_fd, state->chunk.get() + state->chunk_sent,
                                         state->chunk_size - state->chunk_sent);
          if (n < 0) {
            if (detail::would_block(static_cast<int>(-n))) return false;
            return failed(static_cast<int>(-n));
          }
          state->chunk_sent += static_cast<std::size_t>(n);
          state->sent += static_cast<std::size_t>(n);
          if (state->chunk_sent < state->chunk_size) return false;  // the socket is full
        }
      },
      check);
}

}  // namespace tulip
