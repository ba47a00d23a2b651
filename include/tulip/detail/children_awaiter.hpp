// ChildrenAwaiter: suspends a task until some of a set of tasks are done.
//
// The one leaf awaitable behind gather() and wait() (tasks.hpp). It registers a
// done callback on each child and wakes the awaiting task, through the loop,
// when its condition holds (or its timeout fires). What cancel() of the
// awaiting task does depends on the caller, as in asyncio: gather cancels the
// children and keeps waiting for them; wait does not touch them and wakes at
// once with CancelledError.
//
// Thread-safety: loop thread only.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "tulip/detail/task_base.hpp"
#include "tulip/errors.hpp"
#include "tulip/handle.hpp"
#include "tulip/task.hpp"

namespace tulip {

/// When wait() returns (asyncio.FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED).
enum class ReturnWhen { FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED };
inline constexpr ReturnWhen FIRST_COMPLETED = ReturnWhen::FIRST_COMPLETED;
inline constexpr ReturnWhen FIRST_EXCEPTION = ReturnWhen::FIRST_EXCEPTION;
inline constexpr ReturnWhen ALL_COMPLETED = ReturnWhen::ALL_COMPLETED;

namespace detail {

class ChildrenAwaiter : TaskWaiter {
 public:
  enum class Kind {
    kGather,                  // until all done or the first failure / cancellation
    kGatherReturnExceptions,  // until all done
    kWait,                    // per ReturnWhen, or the timeout
  };

  /// `children` is borrowed: it must outlive the awaiter (it lives in the
  /// awaiting coroutine's frame).
  ChildrenAwaiter(const std::vector<AnyTask>& children, Kind kind,
                  ReturnWhen when = ReturnWhen::ALL_COMPLETED,
                  std::optional<double> timeout = std::nullopt) noexcept
      : children_(children), kind_(kind), when_(when), timeout_(timeout) {
    cancel = &ChildrenAwaiter::cancel_waited;
  }
  ChildrenAwaiter(const ChildrenAwaiter&) = delete;
  ChildrenAwaiter& operator=(const ChildrenAwaiter&) = delete;
  ~ChildrenAwaiter() { unregister(); }

  bool await_ready() {
    for (const AnyTask& child : children_) {
      if (child.done()) note_done(*child.state());
    }
    return satisfied();
  }

  template <class P>
  void await_suspend(std::coroutine_handle<P> frame) {
    driver_ = driver_of(frame);
    ids_.assign(children_.size(), 0);
    for (std::size_t i = 0; i < children_.size(); ++i) {
      if (children_[i].done()) continue;
      // The awaiter outlives these callbacks: unregister() removes them.
      ids_[i] = children_[i].state()->add_done_callback([this](TaskBase& child) {
        note_done(child);
        if (satisfied()) wake();
      });
    }
    if (timeout_) {
      timer_ = driver_->loop().call_later(*timeout_, [this] {
        timed_out_ = true;
        wake();
      });
    }
    driver_->suspend(frame, this);
  }

  void await_resume() {
    unregister();
    if (driver_ != nullptr) driver_->throw_if_must_cancel();
    if (cancelled_) throw CancelledError(message_);
    if (kind_ != Kind::kWait && cancel_requested_) throw CancelledError(message_);
    if (kind_ == Kind::kGather && first_failure_ != nullptr) {
      // The first child to fail or be cancelled, as asyncio's gather raises.
      AnyTask failed(first_failure_);
      if (failed.cancelled()) failed.exception();  // throws its CancelledError
      std::rethrow_exception(failed.exception());
    }
  }

  bool timed_out() const noexcept { return timed_out_; }

 private:
  void note_done(TaskBase& child) {
    ++done_count_;
    if (first_failure_ != nullptr || kind_ == Kind::kGatherReturnExceptions) return;
    bool failed = child.cancelled();
    if (!failed) failed = child.exception() != nullptr;
    if (failed && !(kind_ == Kind::kWait && child.cancelled())) first_failure_ = &child;
  }

  bool satisfied() const noexcept {
    if (done_count_ >= children_.size()) return true;
    switch (kind_) {
      case Kind::kGather:
        return first_failure_ != nullptr;
      case Kind::kGatherReturnExceptions:
        return false;
      case Kind::kWait:
        return when_ == ReturnWhen::FIRST_COMPLETED   ? done_count_ > 0
               : when_ == ReturnWhen::FIRST_EXCEPTION ? first_failure_ != nullptr
                                                      : false;
    }
    return false;
  }

  void wake() {
    if (woken_) return;
    woken_ = true;
    timer_.cancel();
    // Through the loop, as asyncio's waiter future would.
    driver_->loop().call_soon([driver = TaskRef(driver_)] { driver->step(); });
  }

  void unregister() noexcept {
    for (std::size_t i = 0; i < ids_.size(); ++i) {
      if (ids_[i] != 0) children_[i].state()->remove_done_callback(ids_[i]);
    }
    ids_.clear();
    timer_.cancel();
  }

  static bool cancel_waited(TaskWaiter* waiter, const std::string& message) {
    auto* self = static_cast<ChildrenAwaiter*>(waiter);
    if (self->woken_) return false;
    self->message_ = message;
    if (self->kind_ == Kind::kWait) {
      // asyncio.wait leaves the children alone.
      self->cancelled_ = true;
      self->wake();
      return true;
    }
    // gather: cancel the children; the awaiting task wakes once they are done.
    bool any = false;
    for (const AnyTask& child : self->children_) {
      if (AnyTask(child).cancel(message)) any = true;
    }
    if (any) self->cancel_requested_ = true;
    return any;
  }

  const std::vector<AnyTask>& children_;
  Kind kind_;
  ReturnWhen when_;
  std::optional<double> timeout_;
  TaskBase* driver_ = nullptr;
  std::vector<CallbackId> ids_;
  TimerHandle timer_;
  std::size_t done_count_ = 0;
  TaskBase* first_failure_ = nullptr;
  bool woken_ = false;
  bool timed_out_ = false;
  bool cancelled_ = false;
  bool cancel_requested_ = false;
  std::string message_;
};

}  // namespace detail
}  // namespace tulip
