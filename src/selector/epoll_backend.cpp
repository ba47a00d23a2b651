#include "selector/epoll_backend.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "fd_watcher.hpp"
#include "selector/selector_socket_transport.hpp"
#include "socket_ops.hpp"
#include "tulip/event_loop.hpp"

namespace tulip::detail {

// Interest and events pass between the loop and epoll without translation.
static_assert(static_cast<std::uint32_t>(kReadable) == EPOLLIN &&
              static_cast<std::uint32_t>(kWritable) == EPOLLOUT);

std::unique_ptr<IoBackend> make_epoll_backend(EventLoop& loop) {
  return std::make_unique<EpollBackend>(loop);
}

EpollBackend::EpollBackend(EventLoop& loop) : loop_(loop) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw_os_error(errno, "epoll_create1");
  wakeup_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakeup_fd_ < 0) {
    int error = errno;
    ::close(epoll_fd_);
    throw_os_error(error, "eventfd");
  }
  set_interest(wakeup_fd_, this, kReadable);
  // The wakeup descriptor is the loop's own: add_reader must not take it.
  registration(wakeup_fd_).owned = true;
}

EpollBackend::~EpollBackend() {
  ::close(wakeup_fd_);
  ::close(epoll_fd_);
}

// Inlined into both callers: the poll of an I/O-bound iteration is one
// epoll_wait and a sign test; hooks and errors are out of line.
[[gnu::always_inline]] inline int EpollBackend::wait(int timeout_ms) {
  if (timeout_ms != 0 && loop_.wait_hooks() != nullptr) [[unlikely]]
    return wait_with_hooks(timeout_ms);
  int count = ::epoll_wait(epoll_fd_, events_, kMaxEvents, timeout_ms);
  if (count >= 0) [[likely]]
    return count;
  return wait_failed();
}

int EpollBackend::wait_with_hooks(int timeout_ms) {
  WaitHooks* hooks = loop_.wait_hooks();
  hooks->before_wait();
  int count = ::epoll_wait(epoll_fd_, events_, kMaxEvents, timeout_ms);
  int saved_errno = errno;
  hooks->after_wait();
  if (count >= 0) return count;
  errno = saved_errno;
  return wait_failed();
}

int EpollBackend::wait_failed() {
  if (errno != EINTR) throw_os_error(errno, "epoll_wait");
  return 0;
}

void EpollBackend::poll(int timeout_ms) { collected_ = wait(timeout_ms); }

void EpollBackend::poll_and_dispatch(int timeout_ms) { deliver(wait(timeout_ms)); }

// Inlined into poll(): on the I/O-bound path (nothing else ready) a round trip
// then costs one call into the backend, not two.
[[gnu::always_inline]] inline void EpollBackend::deliver(int count) {
  // A pointer rather than an index: one register and one add per event.
  const epoll_event* next = events_;
  const epoll_event* const end = events_ + count;
  while (next != end) {
    try {
      while (next != end) {
        const epoll_event& event = *next++;
        std::uint64_t key = event.data.u64;
        // The owner is looked up now, not stored in the event: a callback that
        // ran since the poll, or a handler earlier in this batch, may have
        // closed the descriptor, freed its owner, or handed it to a new one.
        // Then the key's generation (its descriptor is the index) no longer
        // matches and the event is dropped.
        // (A registration without a watcher never matches: removing or
        // parking one bumps its generation.)
        const Registration& current = registrations_[static_cast<std::uint32_t>(key)];
        if (static_cast<std::uint32_t>(key >> 32) != current.generation) continue;
        if (current.route == Route::kSocketReads) [[likely]] {
          // Only reads are watched, so whatever epoll reports (bytes, the
          // EOF, an error or a hang-up) is the read's to find out: no bits to
          // translate, no virtual call. (set_interest allocated the buffer.)
          SelectorSocketTransport::on_socket_readable(*current.watcher, read_buffer_.get());
          continue;
        }
        std::uint32_t raw = event.events;
        std::uint32_t interest = current.interest;
        // IoEvent bits are epoll's (see the static_assert above). Errors and
        // hang-ups wake whatever side is watched; the handler's own
        // recv/send/getsockopt then reports the cause.
        std::uint32_t bits = (raw & (EPOLLERR | EPOLLHUP)) != 0 ? interest : raw & interest;
        if (bits != 0) current.watcher->on_io_event(bits);
      }
    } catch (...) {
      // Handlers deal with their own errors; one that still escapes must not
      // take the rest of the batch, or the loop, with it.
      loop_.call_exception_handler({"Exception in an I/O event handler", std::current_exception()});
    }
  }
}

void EpollBackend::wakeup() noexcept {
  std::uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the loop will wake anyway.
  ssize_t ignored = ::write(wakeup_fd_, &one, sizeof(one));
  (void)ignored;
}

void EpollBackend::on_io_event(std::uint32_t) {
  std::uint64_t value;
  ssize_t ignored = ::read(wakeup_fd_, &value, sizeof(value));
  (void)ignored;
}

EpollBackend::Registration& EpollBackend::registration(int fd) {
  auto index = static_cast<std::size_t>(fd);
  if (index >= registrations_.size()) registrations_.resize(index + 1);
  return registrations_[index];
}

int EpollBackend::control(int op, int fd, std::uint32_t interest, std::uint32_t generation) {
  if (injected_failures_ > 0) {
    --injected_failures_;
    return injected_error_;
  }
  epoll_event event{};
  event.events = ((interest & kReadable) ? EPOLLIN : 0u) | ((interest & kWritable) ? EPOLLOUT : 0u);
  event.data.u64 = key_of(static_cast<std::uint32_t>(fd), generation);
  if (::epoll_ctl(epoll_fd_, op, fd, &event) == 0) return 0;
  // A descriptor closed and reused without being unwatched: repair with the other op.
  int retry = errno == EEXIST ? EPOLL_CTL_MOD : errno == ENOENT ? EPOLL_CTL_ADD : -1;
  if (retry >= 0 && ::epoll_ctl(epoll_fd_, retry, fd, &event) == 0) return 0;
  return errno;
}

void EpollBackend::set_interest(int fd, IoWatcher* watcher, std::uint32_t interest) {
  set_interest(fd, watcher, interest, Route::kWatcher);
}

void EpollBackend::set_interest(int fd, IoWatcher* watcher, std::uint32_t interest, Route route) {
  if (fd < 0) return;
  if (interest == 0) {
    if (static_cast<std::size_t>(fd) >= registrations_.size()) return;
    Registration& current = registrations_[static_cast<std::size_t>(fd)];
    // Only the current owner removes a registration.
    if (current.watcher != watcher || current.interest == 0) return;
    // A descriptor with nothing to watch leaves the set: epoll reports
    // EPOLLHUP/EPOLLERR even for an empty mask, which would spin the loop.
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    current.interest = 0;
    current.watcher = nullptr;
    current.route = Route::kWatcher;
    ++current.generation;
    return;
  }
  Registration& current = registration(fd);
  // The direct read route reads into the buffer without asking for it.
  if (route == Route::kSocketReads) read_buffer();
  if (current.interest == interest && current.watcher == watcher) {
    current.route = route;
    return;
  }
  std::uint32_t generation = current.generation + (current.watcher != watcher ? 1 : 0);
  int op = current.interest == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  if (int error = control(op, fd, interest, generation)) throw_os_error(error, "epoll_ctl");
  current.interest = static_cast<std::uint8_t>(interest);
  current.watcher = watcher;
  current.generation = generation;
  current.route = route;
}

void EpollBackend::claim(int fd) {
  // A sock_* operation or add_reader may still wait on this number: if its
  // file was closed behind the loop's back the kernel reissued the number,
  // and that watcher must neither fire for the new owner nor wait forever.
  hand_over_watched_descriptor(loop_, fd);
  registration(fd).owned = true;
}

void EpollBackend::park(int fd) noexcept {
  Registration& current = registrations_[static_cast<std::size_t>(fd)];
  current.watcher = nullptr;
  current.route = Route::kWatcher;
  ++current.generation;
}

void EpollBackend::close_socket(int fd) noexcept {
  if (fd < 0) return;
  if (static_cast<std::size_t>(fd) < registrations_.size()) {
    Registration& current = registrations_[static_cast<std::size_t>(fd)];
    if (current.interest != 0) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    current.interest = 0;
    current.watcher = nullptr;
    current.route = Route::kWatcher;
    current.owned = false;
    ++current.generation;
  }
  close_fd(fd);
}

}  // namespace tulip::detail
