// add_signal_handler: Unix signals delivered as loop callbacks.
//
// The C signal handler only writes the signal number to a self-pipe (the one
// async-signal-safe thing it needs to do); the loop watches the pipe's read end
// and schedules the handler on its own thread. The pipe is process-wide, so one
// loop at a time may own signal handlers; loops on different threads may race
// to install or remove them, hence the lock around the process-wide state.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <mutex>
#include <stdexcept>
#include <string>

#include "loop_access.hpp"
#include "loop_internals.hpp"
#include "socket_ops.hpp"

namespace tulip {
namespace detail {
namespace {

// The self-pipe and the loop that owns signal handling. Written under
// g_state_mutex by loop threads; the signal handler only reads g_pipe[1],
// which is set once before any handler is installed and never changes.
std::mutex g_state_mutex;
int g_pipe[2] = {-1, -1};
std::atomic<int> g_pipe_write{-1};
EventLoop* g_owner = nullptr;

extern "C" void on_signal(int signum) {
  int saved_errno = errno;
  auto byte = static_cast<unsigned char>(signum);
  // A full pipe means plenty of wake-ups are already queued; dropping this one
  // loses nothing but a duplicate.
  ssize_t ignored = ::write(g_pipe_write.load(std::memory_order_relaxed), &byte, 1);
  (void)ignored;
  errno = saved_errno;
}

void drain_pipe(EventLoop& loop) {
  unsigned char signals[64];
  for (;;) {
    ssize_t n = ::read(g_pipe[0], signals, sizeof(signals));
    if (n <= 0) return;
    for (ssize_t i = 0; i < n; ++i) {
      auto& handlers = LoopAccess::internals(loop).signal_handlers;
      auto it = handlers.find(signals[i]);
      if (it == handlers.end()) continue;
      loop.call_soon([callback = it->second] { (*callback)(); });
    }
  }
}

bool uninstall_locked(EventLoop& loop, int signum) {
  auto& handlers = LoopAccess::internals(loop).signal_handlers;
  if (handlers.erase(signum) == 0) return false;
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  ::sigaction(signum, &action, nullptr);
  if (handlers.empty()) {
    loop.remove_reader(g_pipe[0]);
    g_owner = nullptr;
  }
  return true;
}

}  // namespace

void uninstall_all_signal_handlers(EventLoop& loop) noexcept {
  std::lock_guard lock(g_state_mutex);
  auto& handlers = LoopAccess::internals(loop).signal_handlers;
  while (!handlers.empty()) uninstall_locked(loop, handlers.begin()->first);
}

}  // namespace detail

void EventLoop::add_signal_handler(int signum, Callback callback) {
  if (signum <= 0 || signum >= NSIG || signum == SIGKILL || signum == SIGSTOP) {
    throw std::invalid_argument("invalid signal number for add_signal_handler: " +
                                std::to_string(signum));
  }
  if (!callback) throw std::invalid_argument("add_signal_handler() needs a callable");
  if (closed_) throw_closed();
  std::lock_guard lock(detail::g_state_mutex);
  if (detail::g_owner != nullptr && detail::g_owner != this) {
    throw RuntimeError("another event loop already handles signals in this process");
  }
  if (detail::g_pipe[0] < 0) {
    if (::pipe2(detail::g_pipe, O_NONBLOCK | O_CLOEXEC) < 0) detail::throw_os_error(errno, "pipe2");
    detail::g_pipe_write.store(detail::g_pipe[1]);
  }
  auto& handlers = detail::LoopAccess::internals(*this).signal_handlers;
  bool first = handlers.empty();
  handlers[signum] = std::make_shared<Callback>(std::move(callback));
  if (first) {
    detail::g_owner = this;
    add_reader(detail::g_pipe[0], [this] { detail::drain_pipe(*this); });
  }
  struct sigaction action {};
  action.sa_handler = detail::on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  if (::sigaction(signum, &action, nullptr) < 0) {
    int error = errno;
    detail::uninstall_locked(*this, signum);
    detail::throw_os_error(error, "sigaction");
  }
}

bool EventLoop::remove_signal_handler(int signum) {
  std::lock_guard lock(detail::g_state_mutex);
  return detail::uninstall_locked(*this, signum);
}

}  // namespace tulip
