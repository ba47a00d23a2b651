// Timeouts: asyncio.timeout / timeout_at (3.11) and wait_for (3.12).
//
// Python writes `async with asyncio.timeout(1.0): await work()`. C++ has no
// asynchronous scope exit, so the scope is the awaited expression:
//
//   int n = co_await tulip::timeout(1.0, work());      // TimeoutError after 1 s
//   int m = co_await tulip::timeout_at(deadline, work());
//   Timeout scope(deadline);                             // to reschedule it
//   co_await scope.run(work(&scope));                    // work may call scope.reschedule()
//
// The semantics are 3.11's: entering records the task's cancelling() count;
// at the deadline the task is cancelled (so whatever it awaits is cancelled);
// on the way out, if the deadline fired, uncancel() is called, and if that
// brings cancelling() back to the count at entry and the body ended with
// CancelledError, that CancelledError becomes TimeoutError. A cancellation
// from outside (cancelling() higher) stays a CancelledError, which is what
// makes nested timeouts and a timeout inside a cancelled task come out right.
// A body that finishes before the deadline is unaffected.
//
// `work()` may be a lazy coroutine (run inline in the current task, as Python's
// `await coro`), a scheduled Task, or a Future. wait_for(aw, t) is 3.12's
// wait_for: timeout(t, aw), except that t <= 0 does not start a lazy coroutine
// and cancels a pending task or future, as asyncio does.
//
// Thread-safety: awaited from a task, on its loop's thread.
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "tulip/detail/await_result.hpp"
#include "tulip/errors.hpp"
#include "tulip/export.hpp"
#include "tulip/handle.hpp"
#include "tulip/task.hpp"

namespace tulip {

/// A deadline scope (asyncio.Timeout). Not copyable; it must outlive run().
class TULIP_API Timeout {
 public:
  /// asyncio's _State: created, entered, expiring (the deadline fired), expired, exited.
  enum class State { kCreated, kEntered, kExpiring, kExpired, kExited };

  /// `when` is a deadline on the loop's clock (loop.time()), or none.
  explicit Timeout(std::optional<double> when) noexcept : when_(when) {}
  Timeout(const Timeout&) = delete;
  Timeout& operator=(const Timeout&) = delete;
  ~Timeout() { handle_.cancel(); }

  /// The deadline, or none.
  std::optional<double> when() const noexcept { return when_; }
  /// True once the deadline fired (asyncio's Timeout.expired()).
  bool expired() const noexcept { return state_ == State::kExpiring || state_ == State::kExpired; }

  /// Moves the deadline (none: never). Only while the scope runs and has not
  /// expired; else RuntimeError.
  void reschedule(std::optional<double> when);

  /// Awaits `body` inside this scope; returns its result. Throws TimeoutError
  /// if the deadline cancelled it; rethrows anything else. Runs once.
  template <class A>
  Task<detail::AwaitResultT<A>> run(A body) {
    using R = detail::AwaitResultT<A>;
    enter();
    std::exception_ptr error;
    std::optional<detail::ValueOf<R>> value;
    try {
      if constexpr (std::is_void_v<R>) {
        co_await std::move(body);
      } else {
        value.emplace(co_await std::move(body));
      }
    } catch (...) {
      error = std::current_exception();
    }
    exit(error);
    if (error) std::rethrow_exception(error);
    if constexpr (!std::is_void_v<R>) co_return std::move(*value);
  }

 private:
  void enter();
  // Throws TimeoutError when the deadline turned `error` (a CancelledError) into one.
  void exit(const std::exception_ptr& error);
  void on_timeout();

  std::optional<double> when_;
  State state_ = State::kCreated;
  AnyTask task_;
  int cancelling_ = 0;
  Handle handle_;
};

/// Awaits `body` with a deadline `when` on the loop's clock (asyncio.timeout_at).
template <class A>
Task<detail::AwaitResultT<A>> timeout_at(std::optional<double> when, A body) {
  Timeout scope(when);
  co_return co_await scope.run(std::move(body));
}

/// Awaits `body` for at most `delay` seconds, none: no limit (asyncio.timeout).
template <class A>
Task<detail::AwaitResultT<A>> timeout(std::optional<double> delay, A body) {
  Timeout scope(delay ? std::optional<double>(get_running_loop().time() + *delay) : std::nullopt);
  co_return co_await scope.run(std::move(body));
}

/// Awaits `body` for at most `delay` seconds (asyncio.wait_for, 3.12).
template <class A>
Task<detail::AwaitResultT<A>> wait_for(A body, std::optional<double> delay) {
  using R = detail::AwaitResultT<A>;
  if (delay && *delay <= 0) {
    // asyncio: no time at all; a coroutine is never started, a pending
    // awaitable is cancelled and waited for.
    if constexpr (std::is_same_v<std::remove_cvref_t<A>, Task<R>>) {
      if (body.state()->mode() == detail::TaskBase::Mode::kLazy) throw TimeoutError("timed out");
    }
    Task<R> task = detail::ensure_task(get_running_loop(), std::move(body));
    if (!task.done()) {
      task.cancel();
      try {
        co_await task;
      } catch (const CancelledError&) {
        throw TimeoutError("timed out");
      }
    }
    co_return co_await task;
  }
  co_return co_await timeout(delay, std::move(body));
}

}  // namespace tulip
