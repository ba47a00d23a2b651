// TaskBase: the state every task shares, whatever its result type.
//
// This is the engine behind Task<T> (task.hpp); read that header first. A
// TaskBase is reference counted (non-atomically: loop thread only) by Task
// handles, by the loop's registry while it is pending, and by every callback
// that will wake it. It owns its coroutine frame until the frame finishes, or
// is destroyed with it (a lazy coroutine never started) or by the loop's close.
//
// How a task runs (asyncio's Task.__step / __wakeup):
//  * step() resumes the innermost suspended frame (`leaf_`). Frames awaited
//    inline (co_await of a lazy Task) do not call each other: each suspends and
//    asks step() to resume the next (`next_`), a trampoline, so that a chain
//    of 100,000 nested awaits uses constant stack. (C++20 symmetric transfer
//    only guarantees that when the compiler emits the tail call; g++ 12 does
//    not at -O0 or under ASan, so tulip does not rely on it.)
//  * A leaf awaitable (a Future, another task, sleep) registers something that
//    calls step() later and tells the task what it waits on (`waiter_`), so
//    that cancel() can cancel that.
//  * cancel() cancels the waited-on thing if it can; else it sets must_cancel_
//    and the next leaf await_resume throws CancelledError.
//
// Thread-safety: loop thread only.
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tulip/detail/frame_allocator.hpp"
#include "tulip/detail/inline_function.hpp"
#include "tulip/detail/loop_token.hpp"
#include "tulip/errors.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/export.hpp"
#include "tulip/future.hpp"

namespace tulip::detail {

class TaskBase;

/// What a task is suspended on (asyncio's Task._fut_waiter), seen only
/// through `cancel`. Implemented by the awaiters that suspend a task.
struct TaskWaiter {
  /// Cancels the awaited thing; true if that will wake the task with
  /// CancelledError, false if it could not (already done).
  bool (*cancel)(TaskWaiter* self, const std::string& message) = nullptr;
};

class TULIP_API TaskBase {
 public:
  enum class Mode : std::uint8_t {
    kLazy,       // a coroutine not started: can be awaited inline or scheduled
    kInline,     // being awaited inline by some task (asyncio's `await coro`)
    kScheduled,  // a task on a loop (create_task)
  };
  enum class Status : std::uint8_t { kPending, kFinished, kCancelled };
  using DoneCallback = InlineFunction<void(TaskBase&)>;

  TaskBase() = default;
  TaskBase(const TaskBase&) = delete;
  TaskBase& operator=(const TaskBase&) = delete;
  virtual ~TaskBase();

  // Task states are recycled like frames (frame_allocator.hpp).
  static void* operator new(std::size_t size) { return FrameAllocator::allocate(size); }
  static void operator delete(void* pointer, std::size_t size) noexcept {
    FrameAllocator::deallocate(pointer, size);
  }

  void add_ref() noexcept { ++refs_; }
  void release() noexcept {
    if (--refs_ == 0) delete this;
  }

  // ---- Queries ----------------------------------------------------------------
  Mode mode() const noexcept { return mode_; }
  bool done() const noexcept { return status_ != Status::kPending; }
  bool cancelled() const noexcept { return status_ == Status::kCancelled; }
  int cancelling() const noexcept { return num_cancels_requested_; }
  const std::string& name() const noexcept { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  /// The loop of a scheduled task; throws RuntimeError otherwise or if it is gone.
  EventLoop& loop() const;
  /// The task that runs this frame: itself when scheduled, the awaiting task inline.
  TaskBase* driver() const noexcept { return driver_; }

  // ---- The Task API -------------------------------------------------------------
  bool cancel(std::string message);
  int uncancel() noexcept;
  std::exception_ptr exception();
  /// Throws InvalidStateError if pending, CancelledError if cancelled, or the
  /// exception the coroutine raised (which then counts as retrieved).
  void check_result_ready();
  CallbackId add_done_callback(DoneCallback callback);
  std::size_t remove_done_callback(CallbackId id) noexcept;

  // ---- Driving (awaiters and the promise) ----------------------------------------
  /// create_task: binds to `loop`, registers, queues the first step.
  void schedule(EventLoop& loop, std::string name);
  /// Runs the task until it suspends or finishes. Called from loop callbacks only.
  void step() noexcept;
  /// A leaf awaiter suspended `leaf` of this (driver) task, waiting on `waiter`
  /// (null if nothing can be cancelled, e.g. sleep(0)).
  void suspend(std::coroutine_handle<> leaf, TaskWaiter* waiter) noexcept;
  /// Asks step() to resume `frame` once the current frame has suspended.
  void resume_next(std::coroutine_handle<> frame) noexcept { next_ = frame; }
  /// A leaf await_resume: throws CancelledError if a cancel() is pending on
  /// this (driver) task, consuming it (asyncio's __step throwing into the coro).
  void throw_if_must_cancel() {
    if (must_cancel_) throw_cancelled();
  }
  /// co_await of a lazy task: runs its frame inside `driver`, then resumes
  /// `continuation`. Throws RuntimeError if it was already started or scheduled.
  void start_inline(TaskBase* driver, std::coroutine_handle<> continuation);

  // ---- The frame's side (promise) ------------------------------------------------
  void attach_frame(std::coroutine_handle<> frame) noexcept { frame_ = frame; }
  void store_frame_exception(std::exception_ptr exception) noexcept {
    exception_ = std::move(exception);
  }
  /// The frame reached its final suspend point.
  void frame_finished() noexcept;
  /// Destroys the frame if there is one (it is suspended or finished).
  void destroy_frame() noexcept;
  /// The loop is closing: destroy the frame, become cancelled, drop callbacks.
  void abandon() noexcept;

  // Registry links (task_registry.hpp).
  TaskBase* registry_prev_ = nullptr;
  TaskBase* registry_next_ = nullptr;

 protected:
  /// Rethrows the inline frame's exception, if any (for the awaiting frame).
  void rethrow_inline_exception() {
    if (exception_) std::rethrow_exception(std::exchange(exception_, nullptr));
  }

 private:
  [[noreturn]] void throw_cancelled();
  void complete() noexcept;
  void schedule_callbacks() noexcept;
  void run_callbacks() noexcept;

  std::uint32_t refs_ = 0;
  Mode mode_ = Mode::kLazy;
  Status status_ = Status::kPending;
  bool started_ = false;
  bool must_cancel_ = false;
  bool frame_done_ = false;
  bool exception_retrieved_ = false;
  int num_cancels_requested_ = 0;

  std::coroutine_handle<> frame_;         // the outermost frame this state owns
  std::coroutine_handle<> leaf_;          // where to resume on the next step
  std::coroutine_handle<> next_;          // the trampoline's next frame
  std::coroutine_handle<> continuation_;  // inline: the awaiting frame
  TaskBase* driver_ = nullptr;
  TaskWaiter* waiter_ = nullptr;

  EventLoop* loop_ = nullptr;
  std::shared_ptr<LoopToken> token_;  // tells whether loop_ still exists
  std::exception_ptr exception_;
  std::string cancel_message_;
  std::string name_;

  // The first done callback is stored inline: one task awaiting another
  // allocates nothing.
  CallbackId last_callback_id_ = 0;
  CallbackId first_callback_id_ = 0;
  DoneCallback first_callback_;
  std::vector<std::pair<CallbackId, DoneCallback>> more_callbacks_;
};

/// An owning reference to a TaskBase (intrusive, non-atomic).
class TaskRef {
 public:
  TaskRef() noexcept = default;
  explicit TaskRef(TaskBase* task) noexcept : task_(task) {
    if (task_ != nullptr) task_->add_ref();
  }
  TaskRef(const TaskRef& other) noexcept : TaskRef(other.task_) {}
  TaskRef(TaskRef&& other) noexcept : task_(std::exchange(other.task_, nullptr)) {}
  TaskRef& operator=(TaskRef other) noexcept {
    std::swap(task_, other.task_);
    return *this;
  }
  ~TaskRef() {
    if (task_ != nullptr) task_->release();
  }
  TaskBase* get() const noexcept { return task_; }
  TaskBase* operator->() const noexcept { return task_; }
  explicit operator bool() const noexcept { return task_ != nullptr; }

 private:
  TaskBase* task_ = nullptr;
};

/// The task stepping on this thread right now (any loop), or null.
TULIP_API TaskBase* running_task() noexcept;

}  // namespace tulip::detail
