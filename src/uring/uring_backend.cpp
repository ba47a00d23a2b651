#include "uring/uring_backend.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fd_watcher.hpp"
#include "loop_access.hpp"
#include "socket_ops.hpp"
#include "tulip/event_loop.hpp"

namespace tulip::detail {
namespace {

// Submission queue entries; the completion queue is twice as large (and the
// kernel keeps any overflow: IORING_FEAT_NODROP).
constexpr unsigned kQueueDepth = 1024;

// How long the destructor waits for cancelled requests to complete.
constexpr int kDrainTimeoutMs = 1000;

// The user_data of requests whose completion nobody needs (cancellations).
constexpr std::uint64_t kIgnored = 0;

int setup_ring(io_uring& ring) {
  // The modern setup first: one thread submits (the loop's), and the kernel
  // runs completion work only when that thread asks for events, instead of
  // interrupting it. The ring starts disabled: the thread that first waits
  // on it enables it and becomes its one submitter (a loop may be made on
  // one thread and run on another).
  const unsigned attempts[] = {
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED,
      IORING_SETUP_COOP_TASKRUN,
      0,
  };
  int error = -ENOSYS;
  for (unsigned flags : attempts) {
    io_uring_params params{};
    params.flags = flags | IORING_SETUP_CQSIZE;
    params.cq_entries = kQueueDepth * 2;
    error = io_uring_queue_init_params(kQueueDepth, &ring, &params);
    if (error == 0) {
      if ((params.features & IORING_FEAT_NODROP) == 0) {
        io_uring_queue_exit(&ring);
        return -ENOSYS;  // a kernel that may drop completions is too old
      }
      return 0;
    }
    // EINVAL: the kernel does not know these flags; try simpler ones. Anything
    // else (EPERM, ENOSYS, ENOMEM) is the same for every attempt.
    if (error != -EINVAL) return error;
  }
  return error;
}

}  // namespace

// The readiness backend's epoll descriptor, watched by a one-shot poll
// request (level-triggered: re-armed after its events were delivered).
class UringBackend::ReadinessPoll final : public Completion {
 public:
  explicit ReadinessPoll(UringBackend& backend) : backend_(backend) {}
  void complete(const io_uring_cqe& cqe) override {
    armed_ = false;
    if (cqe.res >= 0) backend_.readiness_pending_ = true;
  }
  bool armed_ = false;

 private:
  UringBackend& backend_;
};

std::unique_ptr<IoBackend> make_uring_backend(EventLoop& loop, const EventLoopOptions& options) {
  return std::make_unique<UringBackend>(loop, options);
}

UringBackend::UringBackend(EventLoop& loop, const EventLoopOptions& options)
    : loop_(loop),
      zero_copy_threshold_(options.zero_copy_send_threshold),
      zero_copy_flags_(IORING_SEND_ZC_REPORT_USAGE) {
  if (int error = setup_ring(ring_)) throw_os_error(-error, "io_uring_setup");
  ring_ready_ = true;
  try {
    wakeup_fd_ = ::eventfd(0, EFD_CLOEXEC);
    if (wakeup_fd_ < 0) throw_os_error(errno, "eventfd");
    // The provided buffer ring for multishot receives, registered by hand
    // (liburing 2.3 has no io_uring_setup_buf_ring).
    std::size_t ring_bytes = kReceiveBufferCount * sizeof(io_uring_buf);
    void* memory =
        ::mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (memory == MAP_FAILED) throw_os_error(errno, "mmap");
    buffer_ring_ = static_cast<io_uring_buf_ring*>(memory);
    io_uring_buf_reg registration{};
    registration.ring_addr = reinterpret_cast<std::uint64_t>(memory);
    registration.ring_entries = kReceiveBufferCount;
    registration.bgid = kBufferGroup;
    if (int error = io_uring_register_buf_ring(&ring_, &registration, 0)) {
      throw_os_error(-error, "io_uring_register_buf_ring");
    }
    buffers_ = std::make_unique_for_overwrite<char[]>(static_cast<std::size_t>(kReceiveBufferSize) *
                                                      kReceiveBufferCount);
    io_uring_buf_ring_init(buffer_ring_);
    int mask = io_uring_buf_ring_mask(kReceiveBufferCount);
    for (unsigned id = 0; id < kReceiveBufferCount; ++id) {
      io_uring_buf_ring_add(buffer_ring_, receive_buffer(id), kReceiveBufferSize,
                            static_cast<unsigned short>(id), mask, static_cast<int>(id));
    }
    io_uring_buf_ring_advance(buffer_ring_, kReceiveBufferCount);
    readiness_ = make_epoll_backend(loop);
    readiness_poll_ = std::make_unique<ReadinessPoll>(*this);
  } catch (...) {
    if (buffer_ring_ != nullptr) {
      ::munmap(buffer_ring_, kReceiveBufferCount * sizeof(io_uring_buf));
    }
    if (wakeup_fd_ >= 0) ::close(wakeup_fd_);
    io_uring_queue_exit(&ring_);
    throw;
  }
  // The wakeup descriptor is the loop's own: add_reader must not take it.
  // (Not claim(): the loop's internals do not exist yet.)
  owned_.resize(static_cast<std::size_t>(wakeup_fd_) + 1);
  owned_[static_cast<std::size_t>(wakeup_fd_)] = true;
  arm_wakeup_read();
  arm_readiness_poll();
}

UringBackend::~UringBackend() {
  // Cancel the backend's own requests, then wait until every request in
  // flight has completed: their completions free what they point to.
  cancel(this);
  if (readiness_poll_->armed_) cancel(readiness_poll_.get());
  int waited_ms = 0;
  // A loop that never waited has a ring still disabled: enable it to drain it.
  if (in_flight_ > 0 && enable_ring() != 0) waited_ms = kDrainTimeoutMs;
  while (in_flight_ > 0 && waited_ms < kDrainTimeoutMs) {
    __kernel_timespec timeout{0, 10'000'000};
    io_uring_cqe* cqe = nullptr;
    ++submissions_;
    int result = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &timeout, nullptr);
    // EEXIST: another thread than the loop's is destroying it, and a
    // single-issuer ring takes no requests from it; the kernel cancels what
    // is left when the ring goes.
    if (result == -EEXIST || result == -EBADFD) break;
    drain_completions();
    waited_ms += 10;
  }
  readiness_.reset();
  io_uring_queue_exit(&ring_);
  ::munmap(buffer_ring_, kReceiveBufferCount * sizeof(io_uring_buf));
  ::close(wakeup_fd_);
}

// ---- Requests ----------------------------------------------------------------------

io_uring_sqe* UringBackend::prepare(Completion* completion) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    // The submission queue is full: hand it to the kernel and take a fresh entry.
    ++submissions_;
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) throw_os_error(EBUSY, "io_uring_get_sqe");
  }
  io_uring_sqe_set_data(sqe, completion);
  ++in_flight_;
  return sqe;
}

void UringBackend::cancel(Completion* completion) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    ++submissions_;
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) return;  // the completion then arrives by itself
  }
  io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(completion), 0);
  io_uring_sqe_set_data64(sqe, kIgnored);
}

void UringBackend::cancel_now(Completion* completion) noexcept {
  // The kernel cancels only what it was given. A ring still disabled (a loop
  // whose iterations never waited) holds every request unsubmitted: enabled
  // here, on the loop's thread, it takes them now, rather than later for a
  // descriptor number closed and perhaps reused meanwhile.
  bool enabled = enable_ring() == 0;
  submit_prepared();
  if (enabled) {
    io_uring_sync_cancel_reg request{};
    request.addr = reinterpret_cast<std::uint64_t>(completion);
    request.fd = -1;
    // A bound, so that a request the kernel cannot stop at once (a blocking
    // socket's send in a worker thread) never stalls the loop: it then ends
    // by the asynchronous cancellation below.
    request.timeout.tv_sec = 1;
    request.timeout.tv_nsec = 0;
    int result = io_uring_register_sync_cancel(&ring_, &request);
    // 0: cancelled; ENOENT: it had completed already (its completion waits).
    if (result == 0 || result == -ENOENT) {
      // A request ended by an earlier cancel may still wait for the deferred
      // work that frees it (and lets go of its file): run that work now.
      io_uring_get_events(&ring_);
      return;
    }
  }
  cancel(completion);  // a kernel without synchronous cancellation (before 6.0)
}

unsigned UringBackend::register_buffer_ring(void* ring_address, unsigned entries) {
  unsigned group;
  if (!free_buffer_groups_.empty()) {
    group = free_buffer_groups_.back();
  } else if (next_buffer_group_ <= 0xffff) {
    group = next_buffer_group_;
  } else {
    throw_os_error(ENOSPC, "io_uring_register_buf_ring (every buffer group is taken)");
  }
  io_uring_buf_reg registration{};
  registration.ring_addr = reinterpret_cast<std::uint64_t>(ring_address);
  registration.ring_entries = entries;
  registration.bgid = static_cast<std::uint16_t>(group);
  if (int error = io_uring_register_buf_ring(&ring_, &registration, 0)) {
    throw_os_error(-error, "io_uring_register_buf_ring");
  }
  if (!free_buffer_groups_.empty()) {
    free_buffer_groups_.pop_back();
  } else {
    ++next_buffer_group_;
  }
  return group;
}

void UringBackend::unregister_buffer_ring(unsigned group) noexcept {
  if (io_uring_unregister_buf_ring(&ring_, static_cast<int>(group)) == 0) {
    free_buffer_groups_.push_back(group);
  }
}

void UringBackend::recycle_buffer(unsigned id) noexcept {
  io_uring_buf_ring_add(buffer_ring_, receive_buffer(id), kReceiveBufferSize,
                        static_cast<unsigned short>(id),
                        io_uring_buf_ring_mask(kReceiveBufferCount), 0);
  io_uring_buf_ring_advance(buffer_ring_, 1);
}

void UringBackend::arm_wakeup_read() {
  io_uring_sqe* sqe = prepare(this);
  io_uring_prep_read(sqe, wakeup_fd_, &wakeup_value_, sizeof(wakeup_value_), 0);
}

void UringBackend::arm_readiness_poll() {
  io_uring_sqe* sqe = prepare(readiness_poll_.get());
  io_uring_prep_poll_add(sqe, readiness_->event_fd(), POLLIN);
  readiness_poll_->armed_ = true;
}

// The wakeup eventfd was read: the counter is zero again, so the next
// wakeup() is seen; read again.
void UringBackend::complete(const io_uring_cqe& cqe) {
  if (cqe.res == -ECANCELED) return;  // the backend is going away
  arm_wakeup_read();
}

void UringBackend::wakeup() noexcept {
  std::uint64_t one = 1;
  ssize_t ignored = ::write(wakeup_fd_, &one, sizeof(one));
  (void)ignored;
}

// ---- Waiting and delivering ---------------------------------------------------------

int UringBackend::enable_ring() noexcept {
  if ((ring_.flags & IORING_SETUP_R_DISABLED) == 0) return 0;
  // The first wait: this thread becomes the ring's one submitter. (liburing
  // 2.3 declares io_uring_enable_rings but does not export it.)
  if (::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) <
      0) {
    return errno;
  }
  ring_.flags &= ~IORING_SETUP_R_DISABLED;
  return 0;
}

void UringBackend::wait(int timeout_ms) {
  if (int error = enable_ring())
    throw_os_error(error, "io_uring_register(IORING_REGISTER_ENABLE_RINGS)");
  if (readiness_pending_) timeout_ms = 0;  // events of the readiness backend wait
  int result;
  ++submissions_;
  if (timeout_ms == 0) {
    result = io_uring_submit_and_get_events(&ring_);
  } else {
    WaitHooks* hooks = loop_.wait_hooks();
    if (hooks != nullptr) hooks->before_wait();
    io_uring_cqe* cqe = nullptr;
    if (timeout_ms < 0) {
      result = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, nullptr, nullptr);
    } else {
      __kernel_timespec timeout{timeout_ms / 1000, (timeout_ms % 1000) * 1'000'000L};
      result = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &timeout, nullptr);
    }
    if (hooks != nullptr) hooks->after_wait();
  }
  if (result >= 0 || result == -ETIME || result == -EINTR || result == -EAGAIN ||
      result == -EBUSY) {
    return;
  }
  if (result == -EEXIST) {
    throw RuntimeError(
        "an io_uring event loop runs on one thread only: this loop was first run on another "
        "thread (use the epoll backend to move a loop between threads)");
  }
  throw_os_error(-result, "io_uring_enter");
}

void UringBackend::poll(int timeout_ms) { wait(timeout_ms); }

void UringBackend::poll_and_dispatch(int timeout_ms) {
  wait(timeout_ms);
  dispatch();
}

void UringBackend::drain_completions() {
  // Completions are handled one at a time and marked seen before their
  // handler runs: a handler may queue requests, submit, or destroy objects.
  io_uring_cqe* cqe;
  dispatching_ = true;
  while (io_uring_peek_cqe(&ring_, &cqe) == 0) {
    io_uring_cqe copy = *cqe;
    io_uring_cqe_seen(&ring_, cqe);
    if (copy.user_data == kIgnored) continue;
    if ((copy.flags & IORING_CQE_F_MORE) == 0) --in_flight_;
    try {
      reinterpret_cast<Completion*>(copy.user_data)->complete(copy);
    } catch (...) {
      loop_.call_exception_handler({"Exception in an I/O event handler", std::current_exception()});
    }
  }
  // What the handlers gathered goes before anything else runs (send_after_handlers).
  while (!batch_senders_.empty()) {
    auto senders = std::move(batch_senders_);
    batch_senders_.clear();
    for (auto& [sender, owner] : senders) sender->send_batch();
  }
  dispatching_ = false;
}

void UringBackend::dispatch() {
  drain_completions();
  if (readiness_pending_) {
    readiness_pending_ = false;
    readiness_->poll_and_dispatch(0);
    if (!readiness_poll_->armed_) arm_readiness_poll();
  }
  // The sends the handlers deferred (defers_sends) go to the kernel before
  // anything else runs: with the next wait when the loop waits next (the one
  // system call the completion model needs per iteration), at once when a
  // callback, a due timer or the end of run() comes first, so that what
  // runs there (or after run() returns) finds the bytes on their way, as
  // after a send().
  if (io_uring_sq_ready(&ring_) != 0 && !LoopAccess::waits_next(loop_)) submit_prepared();
}

void UringBackend::submit_prepared() noexcept {
  if (io_uring_sq_ready(&ring_) != 0 && (ring_.flags & IORING_SETUP_R_DISABLED) == 0) {
    ++submissions_;
    io_uring_submit(&ring_);
  }
}

// ---- Delegated to the readiness backend -------------------------------------------

void UringBackend::set_interest(int fd, IoWatcher* watcher, std::uint32_t interest) {
  readiness_->set_interest(fd, watcher, interest);
}

bool UringBackend::owns(int fd) const noexcept {
  auto index = static_cast<std::size_t>(fd);
  return (fd >= 0 && index < owned_.size() && owned_[index]) || readiness_->owns(fd);
}

bool UringBackend::start_sendfile(Transport& transport, SendfileJob& job) {
  // The readiness backend's own transports (none of this backend's sockets)
  // send files natively; the rest take sendfile's buffered path.
  return readiness_->start_sendfile(transport, job);
}

void UringBackend::claim(int fd) {
  // A sock_* operation or add_reader may still wait on this number (see EpollBackend::claim).
  hand_over_watched_descriptor(loop_, fd);
  auto index = static_cast<std::size_t>(fd);
  if (index >= owned_.size()) owned_.resize(index + 1);
  owned_[index] = true;
}

void UringBackend::close_socket(int fd) noexcept {
  if (fd < 0) return;
  auto index = static_cast<std::size_t>(fd);
  if (index < owned_.size() && owned_[index]) {
    owned_[index] = false;
    close_fd(fd);
    return;
  }
  readiness_->close_socket(fd);
}

}  // namespace tulip::detail
