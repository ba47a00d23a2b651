// Task<T>: asyncio's coroutines and tasks, for C++20 coroutines.
//
// A function returning Task<T> is a coroutine (asyncio's `async def`). Calling
// it runs nothing: it makes a lazy Task holding the coroutine's frame. Then
// either
//  * `co_await coro()` from another coroutine runs it inline, inside the
//    awaiting task, exactly like Python's `await coro()`: same task, no trip
//    through the loop, and a chain of 100,000 nested awaits uses constant
//    stack (see detail/task_base.hpp, "trampoline"); or
//  * `loop.create_task(coro(), "name")` schedules it as a task: its first step
//    runs in a later loop iteration, never inside create_task. The Task it
//    returns is itself Future-like: done(), result(), exception(), cancel(),
//    cancelled(), cancelling()/uncancel() (3.11), add_done_callback(),
//    get_name()/set_name(). `co_await task` waits for it.
//
// Inside a coroutine, `co_await future` (Future<T>), `co_await task`,
// `co_await sleep(d)` and the combinators (tasks.hpp) suspend the task; the loop
// resumes it when the awaited thing is done.
//
// Cancellation (asyncio's): task.cancel(msg) makes the task's current co_await
// throw CancelledError(msg) (it cancels the Future or task being awaited, which
// then wakes it). The coroutine may catch it and go on; if CancelledError
// escapes, the task ends cancelled. CancelledError is not a std::exception
// (errors.hpp says why), so `catch (const std::exception&)` does not swallow it.
//
// Lifetime and ownership:
//  * A Task handle is a counted reference to the task's state; copies share it.
//    The state owns the coroutine frame.
//  * The loop owns every scheduled task until it is done (task_registry.hpp): a
//    running task needs no handle to keep running (unlike asyncio, where a task
//    only weakly referenced can be collected mid-flight).
//  * A frame is destroyed when its coroutine finishes (its locals are gone by
//    then, so a done task costs only its small state); when the last handle of
//    a lazy, never started coroutine goes; or, for a task still pending, when
//    its loop is closed: its frame is destroyed there (destructors run, no
//    leak), the task becomes cancelled and its done callbacks are dropped.
//  * A coroutine awaited inline lives in the awaiting frame: destroying that
//    frame destroys the inner one too.
//  * Arguments: a coroutine's parameters are copied into its frame, but
//    references stay references. Pass by value what the coroutine keeps using
//    after its first suspension. Lambdas that are coroutines must not capture
//    (their closure object usually dies before the frame does); give them
//    parameters instead.
//  * A task that fails and is destroyed without anyone retrieving the error
//    (result(), exception(), co_await) reports "Task exception was never
//    retrieved" to its loop's exception handler, as asyncio does.
//
// Thread-safety: a task and its handles belong to the loop's thread, including
// copying and dropping handles. Use loop.call_soon_threadsafe to reach a task
// from another thread.
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "tulip/detail/frame_allocator.hpp"
#include "tulip/detail/task_base.hpp"
#include "tulip/errors.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/export.hpp"
#include "tulip/future.hpp"

namespace tulip {

template <class T>
class Task;
class AnyTask;

namespace detail {

template <class T>
using ValueOf = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// A task's state with its result slot.
template <class T>
class TaskState final : public TaskBase {
 public:
  std::optional<ValueOf<T>> value_;

  /// The inline awaiter's result: moved out, or the coroutine's exception.
  T take_inline_result() {
    rethrow_inline_exception();
    if constexpr (!std::is_void_v<T>) return std::move(*value_);
  }
};

/// What every tulip coroutine's promise has: its state, and recycled frames.
struct PromiseBase {
  TaskBase* state_ = nullptr;

  static void* operator new(std::size_t size) { return FrameAllocator::allocate(size); }
  static void operator delete(void* pointer, std::size_t size) noexcept {
    FrameAllocator::deallocate(pointer, size);
  }

  std::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <class P>
    void await_suspend(std::coroutine_handle<P> frame) noexcept {
      // Suspend for good; step() or the awaiting frame destroys the frame.
      frame.promise().state_->frame_finished();
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }

  void unhandled_exception() noexcept { state_->store_frame_exception(std::current_exception()); }
};

template <class T>
struct Promise : PromiseBase {
  Task<T> get_return_object();
  template <class U = T>
  requires std::is_convertible_v<U&&, T>
  void return_value(U&& value) {
    static_cast<TaskState<T>*>(state_)->value_.emplace(std::forward<U>(value));
  }
};

template <>
struct Promise<void> : PromiseBase {
  Task<void> get_return_object();
  void return_void() noexcept {}
};

/// The task that runs the coroutine `frame` belongs to.
template <class P>
TaskBase* driver_of(std::coroutine_handle<P> frame) noexcept {
  static_assert(std::is_base_of_v<PromiseBase, P>,
                "tulip awaitables can only be awaited from a tulip::Task coroutine");
  return frame.promise().state_->driver();
}

template <class T>
T copy_or_move(T& value) {
  if constexpr (std::is_copy_constructible_v<T>) {
    return value;
  } else {
    return std::move(value);
  }
}

template <class T>
class TaskAwaiter;
template <class T>
class FutureAwaiter;

}  // namespace detail

/// A task whatever its result type: what current_task() and all_tasks() give.
/// Has the whole Task API except result().
class AnyTask {
 public:
  /// An empty handle; valid() is false. Only assignment is allowed.
  AnyTask() noexcept = default;
  /// @cond INTERNAL
  explicit AnyTask(detail::TaskBase* state) noexcept : state_(state) {}
  /// @endcond

  /// False for an empty handle.
  bool valid() const noexcept { return static_cast<bool>(state_); }
  /// The loop the task runs on. Throws RuntimeError for a coroutine that is
  /// not a task, or if the loop was destroyed.
  EventLoop& get_loop() const { return state_->loop(); }

  /// True once the task finished, failed or was cancelled.
  bool done() const noexcept { return state_->done(); }
  /// True if the task ended cancelled.
  bool cancelled() const noexcept { return state_->cancelled(); }

  /// Requests cancellation (asyncio 3.11 Task.cancel): false if the task is
  /// done; else the task's current or next co_await throws CancelledError with
  /// `message` ("cancelled" if empty). Never runs anything synchronously.
  /// Throws RuntimeError for a coroutine that is not a scheduled task.
  bool cancel(std::string message = {}) { return state_->cancel(std::move(message)); }
  /// How many cancel() requests are outstanding (cancel() adds, uncancel() removes).
  int cancelling() const noexcept { return state_->cancelling(); }
  /// Withdraws one cancel() request; returns how many are left. For code that
  /// turns a cancellation into something else (timeouts, TaskGroup).
  int uncancel() noexcept { return state_->uncancel(); }

  /// The task's name ("Task-<n>" unless one was given).
  const std::string& get_name() const noexcept { return state_->name(); }
  /// Renames the task.
  void set_name(std::string name) { state_->set_name(std::move(name)); }

  /// The exception the coroutine raised, or null. Throws InvalidStateError if
  /// pending, CancelledError if cancelled. Counts as retrieving the error.
  std::exception_ptr exception() const { return state_->exception(); }

  /// Adds a callback, called as callback(task) or callback() through call_soon
  /// once the task is done (scheduled at once if it is done already). The task
  /// owns the callable until it ran or was removed.
  template <class F>
  CallbackId add_done_callback(F&& callback) {
    if constexpr (std::is_invocable_v<F&, AnyTask&>) {
      return state_->add_done_callback(
          [callback = std::forward<F>(callback)](detail::TaskBase& state) mutable {
            AnyTask task(&state);
            callback(task);
          });
    } else {
      return state_->add_done_callback(
          [callback = std::forward<F>(callback)](detail::TaskBase&) mutable { callback(); });
    }
  }
  /// Removes a callback that has not run; returns how many were removed (0 or 1).
  std::size_t remove_done_callback(CallbackId id) noexcept {
    return state_->remove_done_callback(id);
  }

  /// Same task: asyncio's `is`.
  bool operator==(const AnyTask& other) const noexcept {
    return state_.get() == other.state_.get();
  }

  /// @cond INTERNAL
  detail::TaskBase* state() const noexcept { return state_.get(); }

 protected:
  detail::TaskRef state_;
  /// @endcond
};

/// A coroutine returning T (asyncio's coroutine object), and once scheduled with
/// create_task, the task running it (asyncio.Task). See the file comment.
template <class T = void>
class Task : public AnyTask {
  static_assert(!std::is_reference_v<T>,
                "Task<T&> is not supported: return a pointer or a std::reference_wrapper");

 public:
  /// @cond INTERNAL
  using promise_type = detail::Promise<T>;
  /// @endcond
  /// The coroutine's result type.
  using value_type = T;

  /// An empty handle; valid() is false.
  Task() noexcept = default;
  /// @cond INTERNAL
  explicit Task(detail::TaskState<T>* state) noexcept : AnyTask(state) {}
  /// @endcond

  /// The result: a reference into the task's state, valid while a handle lives.
  /// Throws InvalidStateError if pending, CancelledError if cancelled, or the
  /// coroutine's exception.
  decltype(auto) result() const {
    state_->check_result_ready();
    if constexpr (!std::is_void_v<T>) return static_cast<T&>(*typed()->value_);
  }

  /// As AnyTask::add_done_callback, with the typed task: callback(Task<T>&) or callback().
  template <class F>
  CallbackId add_done_callback(F&& callback) {
    if constexpr (std::is_invocable_v<F&, Task<T>&>) {
      return state_->add_done_callback(
          [callback = std::forward<F>(callback)](detail::TaskBase& state) mutable {
            Task<T> task(static_cast<detail::TaskState<T>*>(&state));
            callback(task);
          });
    } else {
      return AnyTask::add_done_callback(std::forward<F>(callback));
    }
  }

  /// co_await: runs a lazy coroutine inline, or waits for a scheduled task.
  detail::TaskAwaiter<T> operator co_await() const& noexcept {
    return detail::TaskAwaiter<T>(*this);
  }

 private:
  detail::TaskState<T>* typed() const noexcept {
    return static_cast<detail::TaskState<T>*>(state_.get());
  }
  friend class detail::TaskAwaiter<T>;
};

namespace detail {

template <class T>
Task<T> Promise<T>::get_return_object() {
  auto* state = new TaskState<T>();
  state_ = state;
  state->attach_frame(std::coroutine_handle<Promise<T>>::from_promise(*this));
  return Task<T>(state);
}

inline Task<void> Promise<void>::get_return_object() {
  auto* state = new TaskState<void>();
  state_ = state;
  state->attach_frame(std::coroutine_handle<Promise<void>>::from_promise(*this));
  return Task<void>(state);
}

/// co_await task: inline for a lazy coroutine, else wait for the task.
template <class T>
class TaskAwaiter : TaskWaiter {
 public:
  explicit TaskAwaiter(Task<T> task) noexcept : task_(std::move(task)) {
    cancel = &TaskAwaiter::cancel_awaited;
  }
  TaskAwaiter(const TaskAwaiter&) = delete;
  TaskAwaiter& operator=(const TaskAwaiter&) = delete;
  TaskAwaiter(TaskAwaiter&& other) noexcept : TaskWaiter(other), task_(std::move(other.task_)) {}
  ~TaskAwaiter() {
    // Destroyed while suspended (the frame went away): stop the wakeup.
    if (registered_) task_.state()->remove_done_callback(callback_id_);
  }

  bool await_ready() const {
    if (task_.done() && task_.state()->mode() == TaskBase::Mode::kInline) {
      throw RuntimeError("cannot reuse an already awaited coroutine");
    }
    return task_.done();
  }

  template <class P>
  void await_suspend(std::coroutine_handle<P> frame) {
    TaskBase* driver = driver_of(frame);
    TaskBase* awaited = task_.state();
    if (awaited->mode() == TaskBase::Mode::kLazy) {
      inline_ = true;
      awaited->start_inline(driver, frame);
      return;
    }
    if (awaited == driver) throw RuntimeError("Task cannot await on itself");
    if (awaited->mode() != TaskBase::Mode::kScheduled) {
      throw RuntimeError("cannot await a coroutine that another task is already awaiting");
    }
    driver_ = driver;
    callback_id_ =
        awaited->add_done_callback([driver = TaskRef(driver)](TaskBase&) { driver->step(); });
    registered_ = true;
    driver->suspend(frame, this);
  }

  T await_resume() {
    if (inline_) {
      TaskState<T>* state = task_.typed();
      state->destroy_frame();
      return state->take_inline_result();
    }
    if (registered_) {
      registered_ = false;
      driver_->throw_if_must_cancel();
    }
    if constexpr (std::is_void_v<T>) {
      task_.result();
    } else {
      return copy_or_move(task_.result());
    }
  }

 private:
  static bool cancel_awaited(TaskWaiter* self, const std::string& message) {
    // asyncio: cancelling a task cancels the task it awaits.
    return static_cast<TaskAwaiter*>(self)->task_.cancel(message);
  }

  Task<T> task_;
  TaskBase* driver_ = nullptr;
  CallbackId callback_id_ = 0;
  bool registered_ = false;
  bool inline_ = false;
};

/// co_await future: its result, its exception, or CancelledError.
template <class T>
class FutureAwaiter : TaskWaiter {
 public:
  explicit FutureAwaiter(Future<T> future) noexcept : future_(std::move(future)) {
    cancel = &FutureAwaiter::cancel_awaited;
  }
  FutureAwaiter(const FutureAwaiter&) = delete;
  FutureAwaiter& operator=(const FutureAwaiter&) = delete;
  FutureAwaiter(FutureAwaiter&& other) noexcept
      : TaskWaiter(other), future_(std::move(other.future_)) {}
  ~FutureAwaiter() {
    if (registered_) future_.remove_done_callback(callback_id_);
  }

  bool await_ready() const noexcept { return future_.done(); }

  template <class P>
  void await_suspend(std::coroutine_handle<P> frame) {
    driver_ = driver_of(frame);
    callback_id_ = future_.add_done_callback([driver = TaskRef(driver_)] { driver->step(); });
    registered_ = true;
    driver_->suspend(frame, this);
  }

  T await_resume() {
    if (registered_) {
      registered_ = false;
      driver_->throw_if_must_cancel();
    }
    if constexpr (std::is_void_v<T>) {
      future_.result();
    } else {
      return copy_or_move(future_.result());
    }
  }

 private:
  static bool cancel_awaited(TaskWaiter* self, const std::string& message) {
    return static_cast<FutureAwaiter*>(self)->future_.cancel(message);
  }

  Future<T> future_;
  TaskBase* driver_ = nullptr;
  CallbackId callback_id_ = 0;
  bool registered_ = false;
};

}  // namespace detail

/// `co_await future` inside a tulip coroutine (found by argument-dependent lookup).
template <class T>
detail::FutureAwaiter<T> operator co_await(Future<T> future) noexcept {
  return detail::FutureAwaiter<T>(std::move(future));
}

template <class T>
Task<T> EventLoop::create_task(Task<T> coro, std::string name) {
  if (!coro.valid()) throw std::invalid_argument("create_task() needs a coroutine");
  coro.state()->schedule(*this, std::move(name));
  return coro;
}

/// The task running on `loop` right now, or an empty AnyTask (asyncio.current_task).
TULIP_API AnyTask current_task(EventLoop& loop);

/// The task running on this thread right now (any loop), or an empty AnyTask.
TULIP_API AnyTask current_task();

/// The loop of the task running on this thread (asyncio.get_running_loop).
/// Throws RuntimeError outside a task.
TULIP_API EventLoop& get_running_loop();

/// The tasks of `loop` not yet done (asyncio.all_tasks), in no particular order.
TULIP_API std::vector<AnyTask> all_tasks(EventLoop& loop);

/// Runs `loop` until the coroutine or task `task` is done and returns its
/// result (rethrows its exception or CancelledError). A lazy coroutine is
/// scheduled first.
template <class T>
T run_until_complete(EventLoop& loop, Task<T> task) {
  if (task.state()->mode() == detail::TaskBase::Mode::kLazy) task = loop.create_task(task);
  if (!task.done()) {
    CallbackId id = task.add_done_callback([&loop] { loop.stop(); });
    try {
      loop.run_forever();
    } catch (...) {
      task.remove_done_callback(id);
      throw;
    }
    task.remove_done_callback(id);
  }
  if (!task.done()) throw RuntimeError("Event loop stopped before Task completed.");
  if constexpr (std::is_void_v<T>) {
    task.result();
  } else {
    return detail::copy_or_move(task.result());
  }
}

}  // namespace tulip
