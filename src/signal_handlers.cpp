// add_signal_handler: Unix signals delivered as loop callbacks.
//
// The C signal handler only writes the signal number to a self-pipe (the one
// async-signal-safe thing it needs to do); the loop watches the pipe's read end
// and schedules the Python-style handler on its own thread. The pipe is
// process-wide, so one loop at a time may own signal handlers.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <stdexcept>
#include <string>

#include "loop_internals.hpp"
#include "socket_ops.hpp"

namespace tulip::detail {
namespace {

int g_pipe[2] = {-1, -1};
EventLoop* g_owner = nullptr;  // written on loop threads only, never by the signal handler

extern "C" void on_signal(int signum) {
  int saved_errno = errno;
  auto byte = static_cast<unsigned char>(signum);
  // A full pipe means plenty of wake-ups are already queued; dropping this one
  // loses nothing but a duplicate.
  ssize_t ignored = ::write(g_pipe[1], &byte, 1);
  (void)ignored;
  errno = saved_errno;
}

void ensure_pipe() {
  if (g_pipe[0] >= 0) return;
  if (::pipe2(g_pipe, O_NONBLOCK | O_CLOEXEC) < 0) throw_os_error(errno, "pipe2");
}

void drain_pipe(EventLoop& loop) {
  unsigned char signals[64];
  for (;;) {
    ssize_t n = ::read(g_pipe[0], signals, sizeof(signals));
    if (n <= 0) return;
    for (ssize_t i = 0; i < n; ++i) {
      auto& handlers = loop.internals().signal_handlers;
      auto it = handlers.find(signals[i]);
      if (it == handlers.end()) continue;
      loop.call_soon([callback = it->second] { (*callback)(); });
    }
  }
}

}  // namespace

void install_signal_handler(EventLoop& loop, int signum, Callback callback) {
  if (signum <= 0 || signum >= NSIG || signum == SIGKILL || signum == SIGSTOP) {
    throw std::invalid_argument("invalid signal number for add_signal_handler: " +
                                std::to_string(signum));
  }
  if (loop.is_closed()) throw RuntimeError("Event loop is closed");
  if (g_owner != nullptr && g_owner != &loop) {
    throw RuntimeError("another event loop already handles signals in this process");
  }
  ensure_pipe();
  auto& handlers = loop.internals().signal_handlers;
  bool first = handlers.empty();
  handlers[signum] = std::make_shared<Callback>(std::move(callback));
  if (first) {
    g_owner = &loop;
    loop.add_reader(g_pipe[0], [&loop] { drain_pipe(loop); });
  }
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  if (::sigaction(signum, &action, nullptr) < 0) {
    int error = errno;
    uninstall_signal_handler(loop, signum);
    throw_os_error(error, "sigaction");
  }
}

bool uninstall_signal_handler(EventLoop& loop, int signum) {
  auto& handlers = loop.internals().signal_handlers;
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

}  // namespace tulip::detail
