// What co_await of a tulip awaitable gives, and turning awaitables into tasks.
//
// Thread-safety: loop thread only.
#pragma once

#include <type_traits>
#include <utility>

#include "tulip/future.hpp"
#include "tulip/task.hpp"

namespace tulip::detail {

template <class A>
struct AwaitResult;
template <class T>
struct AwaitResult<Task<T>> {
  using type = T;
};
template <class T>
struct AwaitResult<Future<T>> {
  using type = T;
};

/// The result type of `co_await a` for a Task<T> or Future<T>: T.
template <class A>
using AwaitResultT = typename AwaitResult<std::remove_cvref_t<A>>::type;

template <class T>
Task<T> await_future(Future<T> future) {
  if constexpr (std::is_void_v<T>) {
    co_await future;
  } else {
    co_return co_await future;
  }
}

/// asyncio.ensure_future: a lazy coroutine is scheduled on `loop`, a task is
/// kept as it is, a Future is wrapped in a task that awaits it (cancelling the
/// task cancels the future).
template <class T>
Task<T> ensure_task(EventLoop& loop, Task<T> task) {
  if (task.state()->mode() == TaskBase::Mode::kLazy) return loop.create_task(std::move(task));
  return task;
}
template <class T>
Task<T> ensure_task(EventLoop& loop, Future<T> future) {
  return loop.create_task(await_future(std::move(future)));
}

/// The result of a done task as a value (std::monostate for void).
template <class T>
ValueOf<T> result_value(Task<T>& task) {
  if constexpr (std::is_void_v<T>) {
    task.result();
    return {};
  } else {
    return copy_or_move(task.result());
  }
}

}  // namespace tulip::detail
