// PipeSignalHold: keeps SIGPIPE off the loop's thread while a write request
// on a pipe is in flight. Not API.
//
// A write to a pipe (or a socket, by write(2)) whose reader has gone raises
// SIGPIPE at the task that performs it; a write request on the ring is
// performed inside io_uring_enter, by the loop's thread, so its SIGPIPE would
// end a process that did not ignore the signal (the default). pipe_ops.hpp
// holds the signal back around one write() call; a request is in flight across
// waits, so the thread's mask blocks SIGPIPE from the first write request
// prepared until the last one completed, and a SIGPIPE one of them raised is
// taken off the thread's pending set before unblocking. A thread that blocked
// SIGPIPE itself is left alone, as pipe_ops.hpp leaves it: what is pending then
// is its owner's.
//
// Thread-safety: the state is per thread, as the signal mask is.
#pragma once

namespace tulip::detail {

class PipeSignalHold {
 public:
  /// A write request on a pipe is about to be prepared.
  static void acquire() noexcept;
  /// That request completed; `broken`: with EPIPE (a SIGPIPE may be pending).
  static void release(bool broken) noexcept;
};

}  // namespace tulip::detail
