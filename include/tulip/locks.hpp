// Synchronisation primitives for tasks: Event, Lock, Semaphore,
// BoundedSemaphore, Condition (asyncio's locks.py, 3.12).
//
// They are not thread locks: they order tasks of one loop. The awaiting
// methods are coroutines (`co_await lock.acquire()`) and use the running loop
// (the awaiting task's); the others never suspend. Waiters are served first
// in, first out, and a waiter cancelled while waiting leaves the queue
// without losing a wake-up it was given (it is passed on to the next waiter),
// as in asyncio.
//
// C++ has no `async with`: pair acquire() with release() yourself (release
// from a catch block or a scope guard if the critical section can throw).
//
// Lifetime: a primitive must outlive every task waiting on it.
// Thread-safety: loop thread only.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <stdexcept>

#include "tulip/export.hpp"
#include "tulip/future.hpp"
#include "tulip/task.hpp"

namespace tulip {

namespace detail {

/// The waiters of a primitive: pending futures, in arrival order.
using Waiters = std::deque<Future<void>>;

/// Creates a waiter future on the running loop and queues it.
TULIP_API Future<void> add_waiter(Waiters& waiters);
/// Removes `waiter` from `waiters` if it is still there.
TULIP_API void remove_waiter(Waiters& waiters, const Future<void>& waiter) noexcept;

/// Removes a waiter when it goes out of scope (asyncio's `finally: remove`);
/// also when the awaiting frame is destroyed.
class WaiterGuard {
 public:
  WaiterGuard(Waiters& waiters, Future<void> waiter) noexcept
      : waiters_(waiters), waiter_(std::move(waiter)) {}
  WaiterGuard(const WaiterGuard&) = delete;
  WaiterGuard& operator=(const WaiterGuard&) = delete;
  ~WaiterGuard() { remove_waiter(waiters_, waiter_); }

 private:
  Waiters& waiters_;
  Future<void> waiter_;
};

}  // namespace detail

/// A flag tasks can wait for (asyncio.Event).
class TULIP_API Event {
 public:
  /// True while the flag is set.
  bool is_set() const noexcept { return value_; }
  /// Sets the flag and wakes every waiter (through the loop, not inline).
  void set();
  /// Resets the flag; wait() waits again.
  void clear() noexcept { value_ = false; }
  /// Waits until the flag is set; returns true at once if it is.
  Task<bool> wait();

 private:
  bool value_ = false;
  detail::Waiters waiters_;
};

/// A mutual-exclusion lock for tasks (asyncio.Lock). Not reentrant.
class TULIP_API Lock {
 public:
  /// True while a task holds the lock.
  bool locked() const noexcept { return locked_; }
  /// Takes the lock, waiting (FIFO) while another task holds it.
  Task<void> acquire();
  /// Releases the lock and wakes the first waiter. RuntimeError if not locked.
  void release();

 private:
  void wake_up_first();

  bool locked_ = false;
  detail::Waiters waiters_;
};

/// A counter tasks acquire and release (asyncio.Semaphore).
class TULIP_API Semaphore {
 public:
  /// std::invalid_argument if `value` is negative.
  explicit Semaphore(int value = 1);
  virtual ~Semaphore() = default;
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  /// True if acquire() would wait.
  bool locked() const noexcept;
  /// The counter: how many acquire() calls would not wait.
  int value() const noexcept { return value_; }
  /// Decrements the counter, waiting (FIFO) while it is zero.
  Task<void> acquire();
  /// Increments the counter and wakes a waiter.
  virtual void release();

 private:
  bool wake_up_next();

  int value_;
  detail::Waiters waiters_;
};

/// A Semaphore that refuses to be released above its initial value
/// (asyncio.BoundedSemaphore): release() then throws std::invalid_argument.
class TULIP_API BoundedSemaphore final : public Semaphore {
 public:
  /// `value` is also the bound release() may not exceed.
  explicit BoundedSemaphore(int value = 1) : Semaphore(value), bound_(value) {}
  void release() override;

 private:
  int bound_;
};

/// A condition variable for tasks (asyncio.Condition), over a Lock that it
/// owns or that is given (borrowed: it must outlive the Condition).
class TULIP_API Condition {
 public:
  /// A condition over a Lock of its own.
  Condition() : own_lock_(std::make_unique<Lock>()), lock_(own_lock_.get()) {}
  /// A condition over `lock`, which must outlive it.
  explicit Condition(Lock& lock) : lock_(&lock) {}

  /// The underlying lock's locked().
  bool locked() const noexcept { return lock_->locked(); }
  /// The underlying lock's acquire().
  Task<void> acquire() { return lock_->acquire(); }
  /// The underlying lock's release().
  void release() { lock_->release(); }

  /// Releases the lock, waits for notify(), and takes the lock again before
  /// returning, even when cancelled. RuntimeError if the lock is not held.
  Task<bool> wait();
  /// Waits until predicate() is true (checked first, then after each wake-up).
  /// The callable must outlive the wait (it is borrowed).
  Task<bool> wait_for(std::function<bool()> predicate);
  /// Wakes up to `n` waiters; RuntimeError if the lock is not held.
  void notify(std::size_t n = 1);
  /// Wakes every waiter; RuntimeError if the lock is not held.
  void notify_all() { notify(waiters_.size()); }

 private:
  void wake(std::size_t n);

  std::unique_ptr<Lock> own_lock_;
  Lock* lock_;
  detail::Waiters waiters_;
};

}  // namespace tulip
