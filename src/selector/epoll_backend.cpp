// The epoll backend: level-triggered epoll plus an eventfd for cross-thread wakeups.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <vector>

#include "io_backend.hpp"
#include "socket_ops.hpp"

namespace tulip::detail {
namespace {

class EpollBackend final : public IoBackend, private IoWatcher {
 public:
  EpollBackend() {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) throw_os_error(errno, "epoll_create1");
    wakeup_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wakeup_fd_ < 0) {
      int error = errno;
      ::close(epoll_fd_);
      throw_os_error(error, "eventfd");
    }
    set_interest(wakeup_fd_, this, kReadable);
  }

  ~EpollBackend() override {
    ::close(wakeup_fd_);
    ::close(epoll_fd_);
  }

  const char* name() const noexcept override { return "epoll"; }

  void poll(int timeout_ms) override {
    int count = ::epoll_wait(epoll_fd_, events_, kMaxEvents, timeout_ms);
    if (count < 0) {
      if (errno == EINTR) return;
      throw_os_error(errno, "epoll_wait");
    }
    for (int i = 0; i < count; ++i) {
      int fd = events_[i].data.fd;
      // The watcher is looked up now, not stored in the event: a handler earlier
      // in this batch may have unwatched (and freed) it, and then its remaining
      // event must be skipped, not delivered to freed memory.
      const Registration& registration = registrations_[static_cast<std::size_t>(fd)];
      if (registration.watcher == nullptr) continue;
      std::uint32_t raw = events_[i].events;
      std::uint32_t bits = 0;
      if (raw & (EPOLLIN | EPOLLRDHUP)) bits |= kReadable;
      if (raw & EPOLLOUT) bits |= kWritable;
      // Errors and hang-ups wake whatever side is watched; the handler's own
      // recv/send/getsockopt then reports the cause.
      if (raw & (EPOLLERR | EPOLLHUP)) bits |= registration.interest;
      bits &= registration.interest;
      if (bits != 0) registration.watcher->on_io_event(bits);
    }
  }

  void wakeup() noexcept override {
    std::uint64_t one = 1;
    // EAGAIN means the counter is already non-zero: the loop will wake anyway.
    ssize_t ignored = ::write(wakeup_fd_, &one, sizeof(one));
    (void)ignored;
  }

  void set_interest(int fd, IoWatcher* watcher, std::uint32_t interest) override {
    if (fd < 0) return;
    auto index = static_cast<std::size_t>(fd);
    if (index >= registrations_.size()) {
      if (interest == 0) return;
      registrations_.resize(index + 1);
    }
    Registration& current = registrations_[index];
    if (interest == 0) {
      if (current.interest == 0) return;
      // A descriptor with nothing to watch leaves the set: epoll reports
      // EPOLLHUP/EPOLLERR even for an empty mask, which would spin the loop.
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
      current = {};
      return;
    }
    if (current.interest == interest && current.watcher == watcher) return;
    epoll_event event{};
    event.events =
        ((interest & kReadable) ? EPOLLIN : 0u) | ((interest & kWritable) ? EPOLLOUT : 0u);
    event.data.fd = fd;
    int op = current.interest == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (::epoll_ctl(epoll_fd_, op, fd, &event) < 0) {
      // A descriptor closed and reused without being unwatched: repair with the other op.
      int retry = errno == EEXIST ? EPOLL_CTL_MOD : errno == ENOENT ? EPOLL_CTL_ADD : -1;
      if (retry < 0 || ::epoll_ctl(epoll_fd_, retry, fd, &event) < 0) {
        throw_os_error(errno, "epoll_ctl");
      }
    }
    current.interest = interest;
    current.watcher = watcher;
  }

 private:
  static constexpr int kMaxEvents = 256;

  // The eventfd's own handler: reset the counter so the next wakeup is seen.
  void on_io_event(std::uint32_t) override {
    std::uint64_t value;
    ssize_t ignored = ::read(wakeup_fd_, &value, sizeof(value));
    (void)ignored;
  }

  int epoll_fd_ = -1;
  int wakeup_fd_ = -1;
  struct Registration {
    IoWatcher* watcher = nullptr;
    std::uint32_t interest = 0;  // 0: not in the epoll set
  };
  std::vector<Registration> registrations_;  // indexed by fd
  epoll_event events_[kMaxEvents];
};

}  // namespace

std::unique_ptr<IoBackend> make_epoll_backend() { return std::make_unique<EpollBackend>(); }

}  // namespace tulip::detail
