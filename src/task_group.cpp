// TaskGroup (task_group.hpp), after asyncio's taskgroups.py (3.11/3.12).
#include "tulip/task_group.hpp"

#include <algorithm>

namespace tulip {
namespace {

bool is_cancelled_error(const std::exception_ptr& error) {
  if (!error) return false;
  try {
    std::rethrow_exception(error);
  } catch (const CancelledError&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace

TaskGroup::~TaskGroup() {
  // Only reached with children left if the frame running the group was
  // destroyed (its loop closed): the children are the loop's, and the loop
  // destroys them too. The callbacks below refer to this group: drop them.
  for (auto& [task, id] : tasks_) task.remove_done_callback(id);
}

void TaskGroup::enter() {
  if (entered_) throw RuntimeError("TaskGroup has already been entered");
  parent_ = current_task();
  if (!parent_.valid()) throw RuntimeError("TaskGroup cannot determine the parent task");
  entered_ = true;
}

void TaskGroup::check_can_create() const {
  if (!entered_) throw RuntimeError("TaskGroup has not been entered");
  if (exiting_ && tasks_.empty()) throw RuntimeError("TaskGroup is finished");
  if (aborting_) throw RuntimeError("TaskGroup is shutting down");
}

void TaskGroup::adopt(AnyTask task) {
  CallbackId id = task.add_done_callback([this](AnyTask& done) { on_task_done(done); });
  tasks_.emplace_back(task, id);
}

void TaskGroup::abort() {
  aborting_ = true;
  for (auto& entry : tasks_) {
    if (!entry.first.done()) entry.first.cancel();
  }
}

void TaskGroup::on_task_done(AnyTask& task) {
  std::erase_if(tasks_, [&](const auto& entry) { return entry.first == task; });
  if (on_completed_.valid() && tasks_.empty() && !on_completed_.done()) on_completed_.set_result();
  if (task.cancelled()) return;
  std::exception_ptr error = task.exception();
  if (!error) return;
  errors_.push_back(error);
  if (parent_.done()) {
    parent_.get_loop().call_exception_handler(
        {"Task has errored out but its parent task is already completed", error});
    return;
  }
  if (!aborting_ && !parent_cancel_requested_) {
    // Stop the body too, by cancelling the parent task; exit() withdraws that
    // cancellation again (uncancel), so it does not leak out of the group.
    abort();
    parent_cancel_requested_ = true;
    parent_.cancel();
  }
}

Task<void> TaskGroup::exit(std::exception_ptr error) {
  exiting_ = true;
  std::exception_ptr propagate_cancellation;
  if (is_cancelled_error(error)) propagate_cancellation = error;
  if (parent_cancel_requested_) {
    // We cancelled the parent ourselves: withdraw that. If no other
    // cancellation is left, the CancelledError was ours: do not propagate it.
    if (parent_.uncancel() == 0) propagate_cancellation = nullptr;
  }
  if (error && !aborting_) abort();
  // A loop: the wait is cancelled again each time the parent is.
  while (!tasks_.empty()) {
    on_completed_ = parent_.get_loop().create_future<void>();
    try {
      co_await on_completed_;
    } catch (const CancelledError&) {
      if (!aborting_) {
        // The parent task is cancelled from outside while children still run.
        propagate_cancellation = std::current_exception();
        abort();
      }
    }
    on_completed_ = Future<void>();
  }
  // Errors have priority over a cancellation.
  if (propagate_cancellation && errors_.empty()) std::rethrow_exception(propagate_cancellation);
  if (error && !is_cancelled_error(error)) errors_.push_back(error);
  if (!errors_.empty()) {
    throw ExceptionGroup("unhandled errors in a TaskGroup", std::exchange(errors_, {}));
  }
}

}  // namespace tulip
