// Combinators over tasks: gather, wait, as_completed, shield (asyncio's tasks.py).
//
//   auto [a, b] = co_await tulip::gather(fetch(1), fetch(2));   // std::tuple
//   std::vector<int> all = co_await tulip::gather(std::move(vector_of_tasks));
//   auto outcomes = co_await tulip::gather(tulip::return_exceptions, f(), g());
//   auto [done, pending] = co_await tulip::wait(tasks, FIRST_COMPLETED, 1.5);
//   AsCompleted<int> ac(tasks);  while (!ac.empty()) use(co_await ac.next());
//   int r = co_await tulip::shield(task);
//
// Arguments may be lazy coroutines (scheduled as tasks on the running loop when
// the combinator starts: asyncio's ensure_future), scheduled tasks, or Futures
// (wrapped in a task that awaits them). All of these must be awaited from a
// task (they use the running loop).
//
// gather: results in argument order, void results as std::monostate. Without
// return_exceptions the first child to fail (or be cancelled) makes gather
// throw its exception at once; the other children go on running and their
// errors are marked retrieved. With return_exceptions each result is an
// Outcome (a value or an exception_ptr; a cancelled child gives a
// CancelledError). Cancelling the task that awaits gather cancels every child;
// gather then throws CancelledError once they finished.
// Difference from asyncio: gather(...) creates nothing until it is awaited (it
// is a lazy coroutine); pass tasks from create_task to start children earlier.
//
// wait: (done, pending) vectors after the condition or `timeout` (which raises
// nothing); the children are never cancelled, not even when the waiting task
// is. An empty input is std::invalid_argument.
//
// Thread-safety: loop thread only.
#pragma once

#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "tulip/detail/await_result.hpp"
#include "tulip/detail/children_awaiter.hpp"
#include "tulip/future.hpp"
#include "tulip/task.hpp"
#include "tulip/timeouts.hpp"

namespace tulip {

/// gather's return_exceptions=True.
struct ReturnExceptions {};
inline constexpr ReturnExceptions return_exceptions{};

/// A child's outcome for gather(return_exceptions, ...): a value or an exception.
template <class T>
struct Outcome {
  /// The value, if the child finished (std::monostate for void).
  std::optional<detail::ValueOf<T>> value;
  /// The child's exception (a CancelledError if it was cancelled), else null.
  std::exception_ptr exception;

  /// True if the child finished with a value.
  bool ok() const noexcept { return exception == nullptr; }
  /// The value, or rethrows the exception.
  detail::ValueOf<T>& get() {
    if (exception) std::rethrow_exception(exception);
    return *value;
  }
};

namespace detail {

template <class T>
Outcome<T> outcome_of(Task<T>& task) {
  Outcome<T> outcome;
  try {
    outcome.value.emplace(result_value(task));
  } catch (...) {
    outcome.exception = std::current_exception();
  }
  return outcome;
}

// gather's children errors count as retrieved: gather reports one, asyncio
// marks the rest retrieved too, so nothing is logged as "never retrieved".
inline void retrieve_later(AnyTask& child) {
  child.add_done_callback([](AnyTask& done) {
    if (!done.cancelled()) (void)done.exception();
  });
}

}  // namespace detail

/// Runs the awaitables concurrently; a tuple of their results.
template <class... A>
Task<std::tuple<detail::ValueOf<detail::AwaitResultT<A>>...>> gather(A... awaitables) {
  EventLoop& loop = get_running_loop();
  auto tasks = std::make_tuple(detail::ensure_task(loop, std::move(awaitables))...);
  std::vector<AnyTask> children =
      std::apply([](auto&... task) { return std::vector<AnyTask>{AnyTask(task)...}; }, tasks);
  for (AnyTask& child : children) detail::retrieve_later(child);
  co_await detail::ChildrenAwaiter(children, detail::ChildrenAwaiter::Kind::kGather);
  co_return std::apply([](auto&... task) { return std::make_tuple(detail::result_value(task)...); },
                       tasks);
}

/// gather with return_exceptions: a tuple of Outcomes, never throws for a child.
template <class... A>
Task<std::tuple<Outcome<detail::AwaitResultT<A>>...>> gather(ReturnExceptions, A... awaitables) {
  EventLoop& loop = get_running_loop();
  auto tasks = std::make_tuple(detail::ensure_task(loop, std::move(awaitables))...);
  std::vector<AnyTask> children =
      std::apply([](auto&... task) { return std::vector<AnyTask>{AnyTask(task)...}; }, tasks);
  co_await detail::ChildrenAwaiter(children,
                                   detail::ChildrenAwaiter::Kind::kGatherReturnExceptions);
  co_return std::apply([](auto&... task) { return std::make_tuple(detail::outcome_of(task)...); },
                       tasks);
}

/// gather over a vector: a vector of results in the same order.
template <class A>
Task<std::vector<detail::ValueOf<detail::AwaitResultT<A>>>> gather(std::vector<A> awaitables) {
  using R = detail::AwaitResultT<A>;
  EventLoop& loop = get_running_loop();
  std::vector<Task<R>> tasks;
  std::vector<AnyTask> children;
  tasks.reserve(awaitables.size());
  children.reserve(awaitables.size());
  for (A& awaitable : awaitables) {
    tasks.push_back(detail::ensure_task(loop, std::move(awaitable)));
    children.emplace_back(tasks.back());
    detail::retrieve_later(children.back());
  }
  co_await detail::ChildrenAwaiter(children, detail::ChildrenAwaiter::Kind::kGather);
  std::vector<detail::ValueOf<R>> results;
  results.reserve(tasks.size());
  for (Task<R>& task : tasks) results.push_back(detail::result_value(task));
  co_return results;
}

/// gather over a vector with return_exceptions.
template <class A>
Task<std::vector<Outcome<detail::AwaitResultT<A>>>> gather(ReturnExceptions,
                                                           std::vector<A> awaitables) {
  using R = detail::AwaitResultT<A>;
  EventLoop& loop = get_running_loop();
  std::vector<Task<R>> tasks;
  std::vector<AnyTask> children;
  for (A& awaitable : awaitables) {
    tasks.push_back(detail::ensure_task(loop, std::move(awaitable)));
    children.emplace_back(tasks.back());
  }
  co_await detail::ChildrenAwaiter(children,
                                   detail::ChildrenAwaiter::Kind::kGatherReturnExceptions);
  std::vector<Outcome<R>> results;
  results.reserve(tasks.size());
  for (Task<R>& task : tasks) results.push_back(detail::outcome_of(task));
  co_return results;
}

/// What wait() returns: the tasks done and those still pending.
template <class T>
struct WaitResult {
  /// The tasks done when wait() returned.
  std::vector<Task<T>> done;
  /// The others, still running.
  std::vector<Task<T>> pending;
};

/// Waits until `return_when` holds or `timeout` seconds passed (asyncio.wait).
template <class A>
Task<WaitResult<detail::AwaitResultT<A>>> wait(std::vector<A> awaitables,
                                               ReturnWhen return_when = ALL_COMPLETED,
                                               std::optional<double> timeout = std::nullopt) {
  using R = detail::AwaitResultT<A>;
  if (awaitables.empty()) throw std::invalid_argument("Set of Tasks/Futures is empty.");
  EventLoop& loop = get_running_loop();
  std::vector<Task<R>> tasks;
  std::vector<AnyTask> children;
  for (A& awaitable : awaitables) {
    tasks.push_back(detail::ensure_task(loop, std::move(awaitable)));
    children.emplace_back(tasks.back());
  }
  co_await detail::ChildrenAwaiter(children, detail::ChildrenAwaiter::Kind::kWait, return_when,
                                   timeout);
  WaitResult<R> result;
  for (Task<R>& task : tasks) (task.done() ? result.done : result.pending).push_back(task);
  co_return result;
}

/// Yields results in the order the tasks finish (asyncio.as_completed).
/// `timeout` (seconds, from construction) bounds the whole iteration: next()
/// throws TimeoutError once it passed. Construct it inside a task.
template <class T>
class AsCompleted {
 public:
  /// Schedules the awaitables (ensure_future) and starts the clock.
  template <class A>
  explicit AsCompleted(std::vector<A> awaitables, std::optional<double> timeout = std::nullopt)
      : state_(std::make_shared<State>()) {
    EventLoop& loop = get_running_loop();
    if (timeout) state_->deadline = loop.time() + *timeout;
    for (A& awaitable : awaitables) {
      Task<T> task = detail::ensure_task(loop, std::move(awaitable));
      ++state_->remaining;
      // The callback keeps the state; done tasks drop their callbacks, and a
      // closing loop drops those of the others, so the cycle always ends.
      task.add_done_callback([state = state_](Task<T>& done) {
        state->finished.push_back(done);
        if (state->waiter.valid() && !state->waiter.done()) state->waiter.set_result();
      });
    }
  }

  /// True when every result was handed out.
  bool empty() const noexcept { return state_->remaining == 0; }

  /// The next result to finish (or its exception / CancelledError).
  Task<T> next() { return next_impl(state_); }

 private:
  struct State {
    std::deque<Task<T>> finished;
    std::size_t remaining = 0;
    std::optional<double> deadline;
    Future<void> waiter;
  };

  static Task<T> next_impl(std::shared_ptr<State> state) {
    if (state->remaining == 0) throw std::out_of_range("as_completed: no result left");
    if (state->finished.empty()) {
      state->waiter = get_running_loop().create_future<void>();
      co_await timeout_at(state->deadline, state->waiter);
    }
    Task<T> task = state->finished.front();
    state->finished.pop_front();
    --state->remaining;
    co_return co_await task;
  }

  std::shared_ptr<State> state_;
};

template <class A>
AsCompleted<detail::AwaitResultT<A>> as_completed(std::vector<A> awaitables,
                                                  std::optional<double> timeout = std::nullopt) {
  return AsCompleted<detail::AwaitResultT<A>>(std::move(awaitables), timeout);
}

/// Protects `awaitable` from cancellation (asyncio.shield): cancelling the
/// task that awaits the returned Future cancels only that Future; the inner
/// task goes on. Call it inside a task.
template <class A>
Future<detail::AwaitResultT<A>> shield(A awaitable) {
  using R = detail::AwaitResultT<A>;
  EventLoop& loop = get_running_loop();
  Task<R> inner = detail::ensure_task(loop, std::move(awaitable));
  Future<R> outer = loop.create_future<R>();
  inner.add_done_callback([outer](Task<R>& done) mutable {
    if (outer.cancelled()) {
      if (!done.cancelled()) (void)done.exception();
      return;
    }
    if (done.cancelled()) {
      outer.cancel();
    } else if (std::exception_ptr error = done.exception()) {
      outer.set_exception(error);
    } else if constexpr (std::is_void_v<R>) {
      outer.set_result();
    } else {
      outer.set_result(detail::copy_or_move(done.result()));
    }
  });
  return outer;
}

}  // namespace tulip
