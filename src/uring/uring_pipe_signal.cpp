#include "uring/uring_pipe_signal.hpp"

#include <signal.h>

#include <cerrno>
#include <ctime>

namespace tulip::detail {
namespace {

struct HoldState {
  unsigned writes = 0;          // pipe write requests in flight on this thread
  bool blocked_before = false;  // the thread had SIGPIPE blocked itself
  bool broken = false;          // one of them failed with EPIPE
};

thread_local HoldState hold;

sigset_t pipe_signal_set() noexcept {
  sigset_t set;
  ::sigemptyset(&set);
  ::sigaddset(&set, SIGPIPE);
  return set;
}

}  // namespace

void PipeSignalHold::acquire() noexcept {
  if (hold.writes++ != 0) return;
  sigset_t set = pipe_signal_set();
  sigset_t previous;
  ::pthread_sigmask(SIG_BLOCK, &set, &previous);
  hold.blocked_before = ::sigismember(&previous, SIGPIPE) == 1;
  hold.broken = false;
}

void PipeSignalHold::release(bool broken) noexcept {
  hold.broken = hold.broken || broken;
  if (--hold.writes != 0 || hold.blocked_before) return;
  sigset_t set = pipe_signal_set();
  if (hold.broken) {
    // The SIGPIPE a broken write raised is pending on this thread (the
    // kernel ran the write in this thread's io_uring_enter): take it.
    timespec no_wait{};
    while (::sigtimedwait(&set, nullptr, &no_wait) < 0 && errno == EINTR) {
    }
  }
  ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

}  // namespace tulip::detail
