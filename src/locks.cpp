// Event, Lock, Semaphore, Condition (locks.hpp), after asyncio's locks.py (3.12).
#include "tulip/locks.hpp"

#include <algorithm>
#include <exception>
#include <string>

namespace tulip {
namespace detail {

Future<void> add_waiter(Waiters& waiters) {
  Future<void> waiter = get_running_loop().create_future<void>();
  waiters.push_back(waiter);
  return waiter;
}

void remove_waiter(Waiters& waiters, const Future<void>& waiter) noexcept {
  auto it = std::find(waiters.begin(), waiters.end(), waiter);
  if (it != waiters.end()) waiters.erase(it);
}

}  // namespace detail

// ---- Event ------------------------------------------------------------------

void Event::set() {
  if (value_) return;
  value_ = true;
  for (Future<void>& waiter : waiters_) {
    if (!waiter.done()) waiter.set_result();
  }
}

Task<bool> Event::wait() {
  if (value_) co_return true;
  Future<void> waiter = detail::add_waiter(waiters_);
  detail::WaiterGuard guard(waiters_, waiter);
  co_await waiter;
  co_return true;
}

// ---- Lock -------------------------------------------------------------------

Task<void> Lock::acquire() {
  if (!locked_ && std::all_of(waiters_.begin(), waiters_.end(),
                              [](const Future<void>& w) { return w.cancelled(); })) {
    locked_ = true;
    co_return;
  }
  Future<void> waiter = detail::add_waiter(waiters_);
  try {
    detail::WaiterGuard guard(waiters_, waiter);
    co_await waiter;
  } catch (const CancelledError&) {
    // Woken but cancelled before running: pass the turn on.
    if (!locked_) wake_up_first();
    throw;
  }
  locked_ = true;
}

void Lock::release() {
  if (!locked_) throw RuntimeError("Lock is not acquired.");
  locked_ = false;
  wake_up_first();
}

void Lock::wake_up_first() {
  if (waiters_.empty()) return;
  Future<void>& first = waiters_.front();
  if (!first.done()) first.set_result();
}

// ---- Semaphore ----------------------------------------------------------------

Semaphore::Semaphore(int value) : value_(value) {
  if (value < 0) throw std::invalid_argument("Semaphore initial value must be >= 0");
}

bool Semaphore::locked() const noexcept {
  return value_ == 0 || std::any_of(waiters_.begin(), waiters_.end(),
                                    [](const Future<void>& w) { return !w.cancelled(); });
}

Task<void> Semaphore::acquire() {
  if (!locked()) {
    --value_;
    co_return;
  }
  Future<void> waiter = detail::add_waiter(waiters_);
  std::exception_ptr error;
  try {
    detail::WaiterGuard guard(waiters_, waiter);
    co_await waiter;
  } catch (const CancelledError&) {
    // Given a unit by wake_up_next() but cancelled before taking it: undo.
    if (waiter.done() && !waiter.cancelled()) ++value_;
    error = std::current_exception();
  }
  // Waiters that arrived meanwhile had to queue behind us (FIFO): wake as many
  // as the counter now allows.
  while (value_ > 0) {
    if (!wake_up_next()) break;
  }
  if (error) std::rethrow_exception(error);
}

void Semaphore::release() {
  ++value_;
  wake_up_next();
}

bool Semaphore::wake_up_next() {
  for (Future<void>& waiter : waiters_) {
    if (!waiter.done()) {
      --value_;
      waiter.set_result();
      return true;
    }
  }
  return false;
}

void BoundedSemaphore::release() {
  if (value() >= bound_) throw std::invalid_argument("BoundedSemaphore released too many times");
  Semaphore::release();
}

// ---- Condition ----------------------------------------------------------------

Task<bool> Condition::wait() {
  if (!locked()) throw RuntimeError("cannot wait on un-acquired lock");
  release();
  std::exception_ptr error;
  {
    Future<void> waiter = detail::add_waiter(waiters_);
    detail::WaiterGuard guard(waiters_, waiter);
    try {
      co_await waiter;
    } catch (...) {
      error = std::current_exception();
    }
  }
  // The lock is taken again even if the wait was cancelled; a cancellation
  // meanwhile is kept and rethrown once the lock is held.
  for (;;) {
    try {
      co_await lock_->acquire();
      break;
    } catch (const CancelledError&) {
      error = std::current_exception();
    }
  }
  if (error) {
    // We may have been notified before failing: do not lose that notification.
    wake(1);
    std::rethrow_exception(error);
  }
  co_return true;
}

Task<bool> Condition::wait_for(std::function<bool()> predicate) {
  bool result = predicate();
  while (!result) {
    co_await wait();
    result = predicate();
  }
  co_return result;
}

void Condition::notify(std::size_t n) {
  if (!locked()) throw RuntimeError("cannot notify on un-acquired lock");
  wake(n);
}

void Condition::wake(std::size_t n) {
  std::size_t woken = 0;
  for (Future<void>& waiter : waiters_) {
    if (woken >= n) break;
    if (!waiter.done()) {
      ++woken;
      waiter.set_result();
    }
  }
}

}  // namespace tulip
