#include "child_watcher.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "background_thread.hpp"
#include "loop_access.hpp"
#include "loop_internals.hpp"
#include "socket_ops.hpp"
#include "tulip/errors.hpp"
#include "tulip/log.hpp"

namespace tulip::detail {
namespace {

// Whether this kernel has pidfd_open: found out on first use.
enum PidfdSupport : int { kUnknown, kAvailable, kUnavailable };
std::atomic<int> g_pidfd_support{kUnknown};
std::atomic<bool> g_pidfd_disabled_for_testing{false};

// How long kill_and_reap waits for a killed child before it hands the wait
// to a thread (a child stuck in uninterruptible sleep dies only later).
constexpr int kKillWaitMilliseconds = 1000;

int open_pidfd(pid_t pid) noexcept {
  // glibc 2.36 has pidfd_open(); the system call is used directly so that
  // older C libraries build too. The descriptor is close-on-exec.
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

int returncode_of(int status) noexcept {
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return WEXITSTATUS(status);
}

// waitpid(pid, WNOHANG), EINTR retried.
pid_t wait_no_hang(pid_t pid, int& status) noexcept {
  for (;;) {
    pid_t result = ::waitpid(pid, &status, WNOHANG);
    if (result >= 0 || errno != EINTR) return result;
  }
}

}  // namespace

void set_pidfd_disabled_for_testing(bool disabled) noexcept {
  g_pidfd_disabled_for_testing.store(disabled);
}

bool pidfd_in_use() noexcept {
  return !g_pidfd_disabled_for_testing.load() && g_pidfd_support.load() != kUnavailable;
}

void ChildWatch::prepare(EventLoop& loop) {
  if (pidfd_in_use()) return;
  LoopInternals& internals = LoopAccess::internals(loop);
  if (internals.sigchld_handler_installed) return;
  if (internals.signal_handlers.count(SIGCHLD) != 0) {
    throw RuntimeError(
        "child processes need the loop's SIGCHLD handler on this kernel (no pidfd), and the "
        "application has installed its own");
  }
  EventLoop* owner = &loop;
  // Installed before the child starts, so that its SIGCHLD cannot come first.
  loop.add_signal_handler(SIGCHLD,
                          [owner] { LoopAccess::internals(*owner).sigchld_children.check_all(); });
  internals.sigchld_handler_installed = true;
}

ChildWatch::ChildWatch(EventLoop& loop, pid_t pid, Exited exited)
    : loop_(loop), pid_(pid), exited_(std::move(exited)) {
  if (pidfd_in_use()) {
    int fd = open_pidfd(pid);
    if (fd >= 0) {
      g_pidfd_support.store(kAvailable);
      try {
        LoopAccess::backend(loop).set_interest(fd, this, kReadable);
      } catch (...) {
        close_fd(fd);
        throw;
      }
      pidfd_ = fd;
      return;
    }
    if (errno != ENOSYS) throw_os_error(errno, "pidfd_open(" + std::to_string(pid) + ")");
    g_pidfd_support.store(kUnavailable);
  }
  prepare(loop);  // the first child to find out there is no pidfd
  LoopAccess::internals(loop).sigchld_children.add(pid, this);
  // A SIGCHLD that arrived before the child was on the list was not lost:
  // the child stays a zombie until we wait for it, and this looks once more.
  EventLoop* owner = &loop;
  loop.call_soon([owner] { LoopAccess::internals(*owner).sigchld_children.check_all(); });
}

ChildWatch::~ChildWatch() { kill_and_reap(); }

void ChildWatch::on_io_event(std::uint32_t) { try_reap(); }

bool ChildWatch::try_reap() {
  if (returncode_) return false;
  int status = 0;
  pid_t result = wait_no_hang(pid_, status);
  if (result == 0) return false;  // still running (a pidfd can wake early only spuriously)
  if (result == pid_) {
    record(status);
  } else {
    // Someone else waited for our child (a waitpid(-1) elsewhere in the
    // process): its status is gone. asyncio reports 255 then, too.
    log(LogLevel::kWarning,
        "Unknown child process pid " + std::to_string(pid_) + ", will report returncode 255");
    returncode_ = 255;
  }
  stop_watching();
  // The callback may end the owner of this watch: nothing after it touches `this`.
  Exited exited = std::move(exited_);
  if (exited) exited(*returncode_);
  return true;
}

void ChildWatch::record(int status) noexcept { returncode_ = returncode_of(status); }

void ChildWatch::stop_watching() noexcept {
  if (pidfd_ >= 0) {
    LoopAccess::backend(loop_).set_interest(pidfd_, this, 0);
    close_fd(pidfd_);
    pidfd_ = -1;
  } else {
    LoopAccess::internals(loop_).sigchld_children.remove(pid_);
  }
}

void ChildWatch::send_signal(int signum) {
  if (returncode_) return;  // reaped: the pid may be someone else's now
  int result = pidfd_ >= 0
                   ? static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd_, signum, nullptr, 0))
                   : ::kill(pid_, signum);
  // ESRCH: it has exited and waits to be reaped; the signal has nothing to do.
  if (result < 0 && errno != ESRCH) {
    throw_os_error(
        errno, "send_signal(" + std::to_string(signum) + ") to process " + std::to_string(pid_));
  }
}

void ChildWatch::kill_and_reap() noexcept {
  exited_ = nullptr;
  if (returncode_) return;
  if (pidfd_ >= 0) {
    ::syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0);
  } else {
    ::kill(pid_, SIGKILL);
  }
  int status = 0;
  bool reaped = false;
  auto attempt = [&] {
    pid_t result = wait_no_hang(pid_, status);
    if (result == 0) return;
    reaped = true;
    if (result == pid_) record(status);
  };
  attempt();
  if (!reaped && pidfd_ >= 0) {
    pollfd exit{pidfd_, POLLIN, 0};
    ::poll(&exit, 1, kKillWaitMilliseconds);
    attempt();
  }
  for (int waited = 0; !reaped && pidfd_ < 0 && waited < kKillWaitMilliseconds; ++waited) {
    timespec millisecond{0, 1'000'000};
    ::nanosleep(&millisecond, nullptr);
    attempt();
  }
  stop_watching();
  if (!returncode_) returncode_ = -SIGKILL;
  if (!reaped) {
    // Still not dead: a thread of its own waits for it, so that no zombie
    // stays behind and nobody here blocks.
    try {
      pid_t pid = pid_;
      start_background_thread([pid] {
        int ignored;
        while (::waitpid(pid, &ignored, 0) < 0 && errno == EINTR) {
        }
      }).detach();
    } catch (...) {
      // No thread to be had: the child stays a zombie until the process exits.
    }
  }
}

void SigchldChildren::check_all() {
  // The pids are copied first: reaping a child ends its watch, which leaves
  // the list, and its callback may end other watches too.
  std::vector<pid_t> pids;
  pids.reserve(children_.size());
  for (auto& [pid, watch] : children_) pids.push_back(pid);
  for (pid_t pid : pids) {
    auto it = children_.find(pid);
    if (it != children_.end()) it->second->try_reap();
  }
}

}  // namespace tulip::detail
