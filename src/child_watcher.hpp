// ChildWatch: knowing when a child of ours exits, and reaping it. Not API.
//
// A pidfd (pidfd_open, Linux 5.3) becomes readable when its process exits;
// the loop watches it through the backend seam like any descriptor, and the
// watch then reaps the child with waitpid on its own pid. Kernels without
// pidfd fall back to SIGCHLD: the loop's signal handler (add_signal_handler)
// tries waitpid(pid, WNOHANG) for each child it watches. Either way only our
// own pids are ever waited for, never waitpid(-1), so children of other code
// in the process are left to it; and a pid is never reused while we hold it
// unreaped, so signalling by pid is safe until the reap.
//
// No zombie is left: a watch destroyed before its child exited (the loop
// closing, a transport given up) kills the child and reaps it, waiting up to
// a second and then handing the wait to a thread of its own, so that close()
// never blocks on a child stuck in the kernel.
//
// Thread-safety: loop thread only (the hand-off thread touches only its pid).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <unordered_map>

#include "io_backend.hpp"
#include "tulip/detail/inline_function.hpp"

namespace tulip {
class EventLoop;
}

namespace tulip::detail {

class ChildWatch final : private IoWatcher {
 public:
  /// Runs once, on the loop's thread, when the child has been reaped, with
  /// its return code (the exit status, or -N for a child killed by signal N).
  using Exited = InlineFunction<void(int returncode)>;

  /// Before spawning: makes sure the child's exit will be seen. With the
  /// SIGCHLD fallback this installs the loop's handler, which may throw
  /// RuntimeError (another loop handles signals); then spawn nothing.
  static void prepare(EventLoop& loop);

  /// Watches `pid`, a child of this process nobody has waited for. Throws
  /// (and leaves the child unwatched) only if the kernel refuses resources.
  ChildWatch(EventLoop& loop, pid_t pid, Exited exited);
  /// Stops watching; a child that has not been reaped is killed and reaped.
  ~ChildWatch();
  ChildWatch(const ChildWatch&) = delete;
  ChildWatch& operator=(const ChildWatch&) = delete;

  pid_t pid() const noexcept { return pid_; }
  std::optional<int> returncode() const noexcept { return returncode_; }

  /// Sends `signum` to the child, through its pidfd when there is one.
  /// Nothing once it has been reaped. Throws OSError if the kernel refuses.
  void send_signal(int signum);

  /// Kills the child if it still runs and reaps it now (see the file
  /// comment); `exited` is not called. Idempotent.
  void kill_and_reap() noexcept;

  /// waitpid(pid, WNOHANG): if the child has exited, records it, stops
  /// watching and calls `exited`. Returns true if it was reaped now.
  bool try_reap();

 private:
  void on_io_event(std::uint32_t events) override;
  void stop_watching() noexcept;
  void record(int status) noexcept;

  EventLoop& loop_;
  pid_t pid_;
  int pidfd_ = -1;  // -1: the SIGCHLD fallback watches this child
  Exited exited_;
  std::optional<int> returncode_;
};

/// The SIGCHLD fallback's list of children, one per loop (LoopInternals).
class SigchldChildren {
 public:
  void add(pid_t pid, ChildWatch* watch) { children_[pid] = watch; }
  void remove(pid_t pid) noexcept { children_.erase(pid); }
  /// Tries to reap every child on the list (a SIGCHLD arrived).
  void check_all();
  bool empty() const noexcept { return children_.empty(); }

 private:
  std::unordered_map<pid_t, ChildWatch*> children_;
};

/// Test hook: behave as if the kernel had no pidfd (true) or find out again
/// (false). Process-wide.
void set_pidfd_disabled_for_testing(bool disabled) noexcept;

/// Whether new children are watched through a pidfd.
bool pidfd_in_use() noexcept;

}  // namespace tulip::detail
