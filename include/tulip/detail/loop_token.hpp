// LoopToken: a shared note of whether a loop still exists, and on which thread.
//
// Objects that may outlive their loop, or be dropped on another thread
// (Futures), hold a shared_ptr to the loop's token instead of a raw EventLoop*.
// The loop clears `loop` in its destructor and records in `thread` the thread
// that owns it (the one that created it, then the one that runs it).
//
// Thread-safety: `loop` is written only by the loop's destructor, under
// `mutex`; the loop's own thread reads it without the lock, other threads only
// inside post(), under the lock. `thread` is atomic.
#pragma once

#include <atomic>
#include <mutex>
#include <thread>

#include "tulip/detail/inline_function.hpp"
#include "tulip/export.hpp"

namespace tulip {
class EventLoop;
}

namespace tulip::detail {

struct LoopToken {
  explicit LoopToken(EventLoop* owner) noexcept : loop(owner), thread(std::this_thread::get_id()) {}

  /// True on the thread that owns the loop, and on every thread once the loop
  /// is gone (then nothing is left to hand over to).
  bool on_loop_thread() const noexcept {
    return thread.load(std::memory_order_relaxed) == std::this_thread::get_id() ||
           gone.load(std::memory_order_acquire);
  }

  /// Runs `callback` on the loop's thread (call_soon_threadsafe) if the loop
  /// still accepts callbacks; returns false, and destroys `callback` here, if
  /// not. Callable from any thread.
  TULIP_API bool post(InlineFunction<void()> callback) noexcept;

  std::mutex mutex;
  EventLoop* loop;
  std::atomic<std::thread::id> thread;
  std::atomic<bool> gone{false};
};

}  // namespace tulip::detail
