// WaitHooks: code the loop runs around each poll that may block.
//
// An embedding runtime uses this to give something up while the loop sleeps in
// the kernel and take it back before any callback runs: the Python binding
// releases the interpreter's lock (the GIL) so that other Python threads run
// while the loop waits for I/O, and checks for pending signals once it wakes.
//
// Thread-safety: both hooks run on the loop's thread, inside run_forever().
#pragma once

#include "tulip/export.hpp"

namespace tulip {

/// Called around every poll that may block (a timeout other than zero); a poll
/// that only collects what is already there is not announced.
class TULIP_API WaitHooks {
 public:
  /// Runs just before the loop blocks in the kernel; no callback runs until
  /// after_wait() has returned. Must not throw.
  virtual void before_wait() noexcept = 0;
  /// Runs as soon as the poll returns (with events, on timeout, or interrupted
  /// by a signal), before the events are dispatched. Must not throw.
  virtual void after_wait() noexcept = 0;

 protected:
  ~WaitHooks() = default;
};

}  // namespace tulip
