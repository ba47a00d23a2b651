// TaskGroup: structured concurrency (asyncio.TaskGroup, 3.11).
//
// Python writes `async with asyncio.TaskGroup() as tg: tg.create_task(...)`.
// In tulip the body of the `async with` is a callable that takes the group:
//
//   co_await tulip::task_group([&](TaskGroup& tg) -> Task<void> {
//     tg.create_task(fetch(1));
//     tg.create_task(fetch(2));
//     co_return;
//   });
//
// task_group() keeps the callable alive until the group is done, so a lambda
// that captures is safe here. The group ends when the body and every child
// are done. If a child fails, the other children and the body are cancelled;
// when everything has finished, the errors (the children's, then the
// body's, CancelledError excluded) come out together as one ExceptionGroup.
// If the task running the group is cancelled from outside, the children are
// cancelled and CancelledError propagates, unless there were errors, which
// take priority. The uncancel() bookkeeping is 3.11's: the group's own
// cancellation of its parent task is withdrawn on the way out, so a group
// inside a timeout() still times out correctly.
//
// create_task() after the group finished, or while it is shutting down after
// a failure, throws RuntimeError (and destroys the coroutine unstarted).
//
// Thread-safety: loop thread only.
#pragma once

#include <exception>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tulip/exception_group.hpp"
#include "tulip/export.hpp"
#include "tulip/future.hpp"
#include "tulip/task.hpp"

namespace tulip {

/// A group of child tasks that ends together (asyncio.TaskGroup); see the file comment.
class TULIP_API TaskGroup {
 public:
  /// A group not entered yet: task_group() enters it.
  TaskGroup() = default;
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  ~TaskGroup();

  /// Schedules `coro` as a child of the group; returns its task.
  template <class T>
  Task<T> create_task(Task<T> coro, std::string name = {}) {
    check_can_create();
    Task<T> task = parent_.get_loop().create_task(std::move(coro), std::move(name));
    adopt(task);
    return task;
  }

  /// @cond INTERNAL
  // The `async with` protocol, driven by task_group().
  void enter();
  Task<void> exit(std::exception_ptr error);
  /// @endcond

 private:
  void check_can_create() const;
  void adopt(AnyTask task);
  void on_task_done(AnyTask& task);
  void abort();

  bool entered_ = false;
  bool exiting_ = false;
  bool aborting_ = false;
  bool parent_cancel_requested_ = false;
  AnyTask parent_;
  // Children not yet done, with the id of the group's done callback on each.
  std::vector<std::pair<AnyTask, CallbackId>> tasks_;
  std::vector<std::exception_ptr> errors_;
  Future<void> on_completed_;
};

namespace detail {

template <class F>
Task<void> run_task_group(F body) {
  TaskGroup group;
  group.enter();
  std::exception_ptr error;
  try {
    co_await body(group);
  } catch (...) {
    error = std::current_exception();
  }
  co_await group.exit(error);
}

}  // namespace detail

/// Runs `body(group)` as the body of a TaskGroup (see above).
template <class F>
Task<void> task_group(F body) {
  return detail::run_task_group(std::move(body));
}

}  // namespace tulip
