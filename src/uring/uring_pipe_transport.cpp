// Pipe ends on the io_uring backend: UringSocketTransport serves them as it
// serves sockets (uring_socket_transport.hpp says what differs).
#include <poll.h>

#include <cerrno>
#include <memory>
#include <string_view>
#include <utility>

#include "pipe_ops.hpp"
#include "socket_ops.hpp"
#include "uring/uring_socket_transport.hpp"

namespace tulip::detail {
namespace {

// Registered for an instant only, never told of an event.
class ProbeWatcher final : public IoWatcher {
 public:
  void on_io_event(std::uint32_t) override {}
};

}  // namespace

std::shared_ptr<Transport> UringBackend::start_pipe_transport(PipeEnd pipe,
                                                              InlineFunction<void()> on_made) {
  // A descriptor that cannot be polled (/dev/null, for one) is refused as the
  // epoll backend refuses it (EPERM), although a read request would take it:
  // which descriptors a pipe transport accepts does not depend on the backend.
  // Asked of the readiness backend kept inside this one: two epoll_ctl calls
  // per pipe, which are rare.
  try {
    ProbeWatcher probe;
    readiness_->set_interest(pipe.fd, &probe, kReadable);
    readiness_->set_interest(pipe.fd, &probe, 0);
  } catch (...) {
    close_fd(pipe.fd);
    throw;
  }
  claim(pipe.fd);
  auto transport = std::make_shared<UringSocketTransport>(*this, std::move(pipe));
  transport->start(std::move(on_made));
  return transport;
}

UringSocketTransport::UringSocketTransport(UringBackend& backend, PipeEnd pipe)
    : StreamTransportBase(backend.loop()),
      backend_(backend),
      fd_(pipe.fd),
      kind_(pipe.direction == PipeEnd::Direction::kRead ? Kind::kReadPipe : Kind::kWritePipe),
      watch_hang_up_(pipe.direction == PipeEnd::Direction::kWrite && pipe.watch_hang_up) {
  set_protocol(std::move(pipe.protocol));
}

void UringSocketTransport::on_hang_up(const io_uring_cqe& cqe) {
  receiving_ = false;  // a poll request completes once
  if (cqe.res != -ECANCELED && !lost_) {
    // asyncio's _UnixWritePipeTransport._read_ready: bytes still waiting
    // (buffered or in a write request) can never be delivered now, which is a
    // broken pipe; else a clean end.
    force_close(get_write_buffer_size() == 0 ? std::error_code() : errno_code(EPIPE));
  }
  request_finished();
}

void UringSocketTransport::read_pipe_burst() {
  // Shared by the pipes of this thread's loop: a bulk stream takes it, a quiet
  // pipe never holds memory. As large as the epoll backend's read buffer.
  constexpr std::size_t kBurstBufferSize = 256 * 1024;
  static thread_local std::unique_ptr<char[]> burst_buffer;
  if (!burst_buffer) burst_buffer = std::make_unique<char[]>(kBurstBufferSize);
  // A few reads at most: a writer as fast as this reader (into a pipe grown
  // past this buffer) must not keep the loop here; the read request goes on.
  constexpr int kMaxBurstReads = 4;
  for (int reads = 0; reads < kMaxBurstReads && wants_to_read() && stash_.empty() &&
                      data_protocol_ != nullptr && buffered_protocol_ == nullptr;
       ++reads) {
    ssize_t n = read_from_pipe(fd_, burst_buffer.get(), kBurstBufferSize);
    if (n < 0) {
      if (!would_block(static_cast<int>(-n))) socket_failed(errno_code(static_cast<int>(-n)));
      return;
    }
    if (n == 0) {
      on_eof();
      return;
    }
    deliver(std::string_view(burst_buffer.get(), static_cast<std::size_t>(n)));
    // Less than asked for: the pipe is empty now, and the read request that
    // follows waits for more without a read() that would say EAGAIN.
    if (static_cast<std::size_t>(n) < kBurstBufferSize) return;
  }
}

}  // namespace tulip::detail
