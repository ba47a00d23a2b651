// sleep(): suspend the current task for a while (asyncio.sleep).
//
// `co_await tulip::sleep(0.5)` resumes the task after half a second of the
// loop's clock; `co_await tulip::sleep(0)` (or any delay <= 0) yields: the task
// resumes in the next loop iteration, after the callbacks already ready, as
// asyncio's sleep(0). The loop is the awaiting task's. Cancelling the task
// during a sleep ends it with CancelledError at once. A sleep allocates
// nothing (the timer node is recycled by the loop).
//
// Thread-safety: awaited from a task, on its loop's thread.
#pragma once

#include <chrono>
#include <coroutine>
#include <string>

#include "tulip/detail/task_base.hpp"
#include "tulip/handle.hpp"
#include "tulip/task.hpp"

namespace tulip {
namespace detail {

class SleepAwaiter : TaskWaiter {
 public:
  explicit SleepAwaiter(double delay) noexcept : delay_(delay) {
    cancel = &SleepAwaiter::cancel_sleep;
  }
  SleepAwaiter(const SleepAwaiter&) = delete;
  SleepAwaiter& operator=(const SleepAwaiter&) = delete;
  SleepAwaiter(SleepAwaiter&& other) noexcept : TaskWaiter(other), delay_(other.delay_) {}
  // Destroyed while suspended: the timer must not wake a task that is gone.
  ~SleepAwaiter() { timer_.cancel(); }

  bool await_ready() const noexcept { return false; }

  template <class P>
  void await_suspend(std::coroutine_handle<P> frame) {
    driver_ = driver_of(frame);
    EventLoop& loop = driver_->loop();
    if (delay_ <= 0) {
      // asyncio's bare yield: the next step is simply queued; a cancel() meanwhile
      // is thrown by that step (must_cancel).
      loop.call_soon([driver = TaskRef(driver_)] { driver->step(); });
      driver_->suspend(frame, nullptr);
      return;
    }
    timer_ = loop.call_later(delay_, [driver = TaskRef(driver_)] { driver->step(); });
    driver_->suspend(frame, this);
  }

  void await_resume() {
    driver_->throw_if_must_cancel();
    if (cancelled_) throw CancelledError(message_);
  }

 private:
  static bool cancel_sleep(TaskWaiter* waiter, const std::string& message) {
    auto* self = static_cast<SleepAwaiter*>(waiter);
    if (self->cancelled_ || !self->timer_.pending()) return false;
    self->cancelled_ = true;
    self->message_ = message;
    self->timer_.cancel();
    // Wake the task in the next iteration, as the cancelled future of asyncio's
    // sleep would.
    self->driver_->loop().call_soon([driver = TaskRef(self->driver_)] { driver->step(); });
    return true;
  }

  double delay_;
  TaskBase* driver_ = nullptr;
  TimerHandle timer_;
  bool cancelled_ = false;
  std::string message_;
};

}  // namespace detail

/// Suspends the current task for `delay_seconds` (<= 0: one loop iteration).
inline detail::SleepAwaiter sleep(double delay_seconds) noexcept {
  return detail::SleepAwaiter(delay_seconds);
}

template <class Rep, class Period>
detail::SleepAwaiter sleep(std::chrono::duration<Rep, Period> delay) noexcept {
  return detail::SleepAwaiter(std::chrono::duration<double>(delay).count());
}

}  // namespace tulip
