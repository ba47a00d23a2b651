// The non-template half of Task<T>: stepping, cancellation, completion, the
// registry of a loop's tasks. See include/tulip/detail/task_base.hpp.
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "loop_access.hpp"
#include "tulip/detail/task_base.hpp"
#include "tulip/detail/task_registry.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/task.hpp"

namespace tulip {

namespace detail {

TaskRegistry& LoopAccess::task_registry(EventLoop& loop) {
  if (!loop.task_registry_) loop.task_registry_ = std::make_unique<TaskRegistry>();
  return *loop.task_registry_;
}

}  // namespace detail

AnyTask current_task(EventLoop& loop) {
  return AnyTask(detail::LoopAccess::task_registry(loop).current);
}

AnyTask current_task() { return AnyTask(detail::running_task()); }

EventLoop& get_running_loop() {
  detail::TaskBase* task = detail::running_task();
  if (task == nullptr) throw RuntimeError("no running event loop");
  return task->loop();
}

std::vector<AnyTask> all_tasks(EventLoop& loop) {
  std::vector<AnyTask> tasks;
  detail::TaskRegistry& registry = detail::LoopAccess::task_registry(loop);
  tasks.reserve(registry.size());
  for (detail::TaskBase* task = registry.first(); task != nullptr; task = task->registry_next_) {
    tasks.emplace_back(task);
  }
  return tasks;
}

namespace detail {
namespace {

thread_local TaskBase* t_running_task = nullptr;

// The message of a CancelledError held by `error`, or null if it holds something else.
bool is_cancelled_error(const std::exception_ptr& error, std::string& message) {
  try {
    std::rethrow_exception(error);
  } catch (const CancelledError& e) {
    message = e.what();
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace

TaskBase* running_task() noexcept { return t_running_task; }

// ---- TaskBase ------------------------------------------------------------------

TaskBase::~TaskBase() {
  // A lazy coroutine that was never started (or awaited) is destroyed with its
  // handle; a finished frame was destroyed already.
  destroy_frame();
  // asyncio reports a task exception nobody looked at when the task is collected;
  // the last reference going away is C++'s equivalent of that moment.
  if (mode_ == Mode::kScheduled && status_ == Status::kFinished && exception_ &&
      !exception_retrieved_ && token_ && token_->loop != nullptr) {
    token_->loop->call_exception_handler(
        {"Task exception was never retrieved (" + name_ + ")", exception_});
  }
}

EventLoop& TaskBase::loop() const {
  if (mode_ != Mode::kScheduled) {
    if (driver_ != nullptr && driver_ != this) return driver_->loop();
    throw RuntimeError("the coroutine is not running as a task on an event loop");
  }
  if (token_->loop == nullptr) throw RuntimeError("the Task's event loop was destroyed");
  return *loop_;
}

bool TaskBase::cancel(std::string message) {
  if (done()) return false;
  if (mode_ != Mode::kScheduled) {
    throw RuntimeError("cancel() needs a task: schedule the coroutine with create_task first");
  }
  ++num_cancels_requested_;
  if (message.empty()) message = "cancelled";
  if (waiter_ != nullptr && waiter_->cancel(waiter_, message)) {
    // The waited-on thing wakes the task with CancelledError.
    return true;
  }
  // The task is running, or its next step is already queued: that step throws.
  must_cancel_ = true;
  cancel_message_ = std::move(message);
  return true;
}

int TaskBase::uncancel() noexcept {
  if (num_cancels_requested_ > 0) {
    --num_cancels_requested_;
    // As in 3.13: with no cancellation left, a pending one is withdrawn too.
    if (num_cancels_requested_ == 0) must_cancel_ = false;
  }
  return num_cancels_requested_;
}

void TaskBase::throw_cancelled() {
  must_cancel_ = false;
  throw CancelledError(cancel_message_);
}

std::exception_ptr TaskBase::exception() {
  if (status_ == Status::kPending) throw InvalidStateError("Exception is not set.");
  if (status_ == Status::kCancelled) throw CancelledError(cancel_message_);
  exception_retrieved_ = true;
  return exception_;
}

void TaskBase::check_result_ready() {
  if (status_ == Status::kPending) throw InvalidStateError("Result is not ready.");
  if (status_ == Status::kCancelled) throw CancelledError(cancel_message_);
  if (exception_) {
    exception_retrieved_ = true;
    std::rethrow_exception(exception_);
  }
}

CallbackId TaskBase::add_done_callback(DoneCallback callback) {
  CallbackId id = ++last_callback_id_;
  if (done()) {
    // As asyncio: scheduled at once, never run inline.
    loop().call_soon([self = TaskRef(this), callback = std::make_shared<DoneCallback>(std::move(
                                                callback))] { (*callback)(*self.get()); });
    return id;
  }
  if (!first_callback_ && more_callbacks_.empty()) {
    first_callback_id_ = id;
    first_callback_ = std::move(callback);
  } else {
    more_callbacks_.emplace_back(id, std::move(callback));
  }
  return id;
}

std::size_t TaskBase::remove_done_callback(CallbackId id) noexcept {
  if (first_callback_ && first_callback_id_ == id) {
    first_callback_.reset();
    return 1;
  }
  std::size_t before = more_callbacks_.size();
  std::erase_if(more_callbacks_, [id](const auto& entry) { return entry.first == id; });
  return before - more_callbacks_.size();
}

void TaskBase::schedule(EventLoop& loop, std::string name) {
  if (mode_ != Mode::kLazy || !frame_) {
    throw RuntimeError("create_task() needs a coroutine that was never started or scheduled");
  }
  TaskRegistry& registry = LoopAccess::task_registry(loop);
  // Queue the first step before changing anything: call_soon throws on a closed loop.
  loop.call_soon([self = TaskRef(this)] { self->step(); });
  mode_ = Mode::kScheduled;
  loop_ = &loop;
  token_ = LoopAccess::token(loop);
  driver_ = this;
  leaf_ = frame_;
  name_ = name.empty() ? "Task-" + std::to_string(registry.next_task_number()) : std::move(name);
  registry.add(this);
}

void TaskBase::start_inline(TaskBase* driver, std::coroutine_handle<> continuation) {
  if (mode_ != Mode::kLazy || !frame_ || started_) {
    throw RuntimeError("cannot await a coroutine that is already started or scheduled");
  }
  mode_ = Mode::kInline;
  started_ = true;
  driver_ = driver;
  continuation_ = continuation;
  driver->resume_next(frame_);
}

void TaskBase::suspend(std::coroutine_handle<> leaf, TaskWaiter* waiter) noexcept {
  leaf_ = leaf;
  waiter_ = waiter;
  // asyncio's __step after a yield: a cancel() that arrived while the task ran
  // goes straight to what it now waits on.
  if (must_cancel_ && waiter != nullptr && waiter->cancel(waiter, cancel_message_)) {
    must_cancel_ = false;
  }
}

void TaskBase::step() noexcept {
  if (status_ != Status::kPending || !leaf_) return;
  // The callback that called step() holds a reference, but completion drops
  // the registry's: keep this alive to the end of the step regardless.
  TaskRef keep(this);
  TaskRegistry& registry = LoopAccess::task_registry(*loop_);
  TaskBase* outer_current = std::exchange(registry.current, this);
  TaskBase* outer_running = std::exchange(t_running_task, this);
  waiter_ = nullptr;
  if (!started_) {
    started_ = true;
    if (must_cancel_) {
      // Cancelled before it ever ran: the body never starts (asyncio throws
      // CancelledError into the fresh coroutine, which raises it at once).
      must_cancel_ = false;
      exception_ = std::make_exception_ptr(CancelledError(cancel_message_));
      leaf_ = {};
      frame_done_ = true;
    }
  }
  next_ = std::exchange(leaf_, {});
  while (next_) std::exchange(next_, {}).resume();
  if (frame_done_) complete();
  registry.current = outer_current;
  t_running_task = outer_running;
}

void TaskBase::frame_finished() noexcept {
  if (mode_ == Mode::kInline) {
    // The awaiting frame takes the result and destroys this frame.
    status_ = Status::kFinished;
    driver_->resume_next(std::exchange(continuation_, {}));
    return;
  }
  // A task's outermost frame: step() completes the task once resume() returned.
  frame_done_ = true;
}

void TaskBase::complete() noexcept {
  frame_done_ = false;
  destroy_frame();
  std::string message;
  if (exception_ && is_cancelled_error(exception_, message)) {
    // CancelledError escaped the coroutine: the task is cancelled, not failed.
    exception_ = nullptr;
    cancel_message_ = std::move(message);
    status_ = Status::kCancelled;
  } else if (!exception_ && must_cancel_) {
    // Cancelled right before the coroutine returned (asyncio does the same).
    must_cancel_ = false;
    status_ = Status::kCancelled;
  } else {
    status_ = Status::kFinished;
  }
  schedule_callbacks();
  LoopAccess::task_registry(*loop_).remove(this);
}

void TaskBase::schedule_callbacks() noexcept {
  if (!first_callback_ && more_callbacks_.empty()) return;
  try {
    // One ready-queue entry runs every callback present at completion, in
    // order, as Future does.
    loop_->call_soon([self = TaskRef(this)] { self->run_callbacks(); });
  } catch (...) {
    loop_->call_exception_handler(
        {"Could not schedule a Task's done callbacks", std::current_exception()});
  }
}

void TaskBase::run_callbacks() noexcept {
  DoneCallback first = std::move(first_callback_);
  auto more = std::move(more_callbacks_);
  more_callbacks_.clear();
  auto run = [this](DoneCallback& callback) {
    try {
      callback(*this);
    } catch (...) {
      loop_->call_exception_handler(
          {"Exception in a Task done callback", std::current_exception()});
    }
  };
  if (first) run(first);
  for (auto& entry : more) run(entry.second);
}

void TaskBase::destroy_frame() noexcept {
  // Cleared first: the frame's destructors may release references to this task.
  if (auto frame = std::exchange(frame_, {})) frame.destroy();
}

void TaskBase::abandon() noexcept {
  TaskRef keep(this);
  status_ = Status::kCancelled;
  cancel_message_ = "Event loop is closed";
  leaf_ = {};
  waiter_ = nullptr;
  destroy_frame();
  // Nobody can run them any more; what they captured is released now.
  first_callback_.reset();
  more_callbacks_.clear();
}

// ---- TaskRegistry --------------------------------------------------------------

TaskRegistry::~TaskRegistry() { close(); }

void TaskRegistry::add(TaskBase* task) noexcept {
  task->add_ref();
  task->registry_prev_ = nullptr;
  task->registry_next_ = head_;
  if (head_ != nullptr) head_->registry_prev_ = task;
  head_ = task;
  ++size_;
}

void TaskRegistry::remove(TaskBase* task) noexcept {
  if (task->registry_prev_ != nullptr) {
    task->registry_prev_->registry_next_ = task->registry_next_;
  } else {
    head_ = task->registry_next_;
  }
  if (task->registry_next_ != nullptr) task->registry_next_->registry_prev_ = task->registry_prev_;
  task->registry_prev_ = task->registry_next_ = nullptr;
  --size_;
  task->release();
}

void TaskRegistry::close() noexcept {
  // Destroying one frame can release other tasks, or even create new ones:
  // take them one at a time until none is left.
  while (TaskBase* task = head_) {
    task->abandon();
    remove(task);
  }
}

}  // namespace detail
}  // namespace tulip
