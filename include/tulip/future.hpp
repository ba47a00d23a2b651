// Future<T>: asyncio.Future for C++.
//
// A Future is a shared handle to a result that is not there yet. Copies refer to
// the same state. It is pending until set_result(), set_exception() or cancel();
// after that it is done and never changes again.
//
// Semantics follow asyncio.Future:
//  * Done callbacks never run inline: when the future completes they are
//    scheduled with the loop's call_soon, in the order they were added; a
//    callback added to a done future is scheduled at once.
//  * result() on a pending future throws InvalidStateError; on a cancelled one,
//    CancelledError; with an exception set, rethrows it.
//  * Completing a done future throws InvalidStateError; cancel() on a done
//    future returns false.
//  * An exception that is set and never retrieved (result() / exception()) is
//    reported to the loop's exception handler when the last copy goes away.
//
// Differences from asyncio, and why:
//  * add_done_callback returns an id and remove_done_callback takes it: C++
//    callables have no identity to compare. A callback removed after the future
//    completed but before its callbacks ran is not run (asyncio would run it).
//  * set_exception takes a std::exception_ptr (make one with
//    std::make_exception_ptr).
//
// Thread-safety: a Future belongs to its loop's thread: complete it, read it
// and add callbacks there (from another thread, use loop.call_soon_threadsafe).
// Copying or dropping a Future is safe on any thread: if the last copy goes
// away on another thread while the loop lives, what the state holds (the
// value, pending callbacks, an unretrieved exception) is handed to the loop
// and released or reported there. A Future may outlive its loop; completing it
// then throws RuntimeError if callbacks would need the loop.
#pragma once

#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "tulip/detail/done_callbacks.hpp"
#include "tulip/detail/inline_function.hpp"
#include "tulip/detail/loop_token.hpp"
#include "tulip/errors.hpp"
#include "tulip/export.hpp"

namespace tulip {

class EventLoop;
template <class T>
class Future;

/// Identifies a done callback for remove_done_callback.
using CallbackId = std::uint64_t;

namespace detail {

// The few loop operations a Future needs, out of line so that this header does
// not depend on event_loop.hpp (which includes it).
TULIP_API const std::shared_ptr<LoopToken>& loop_token(EventLoop& loop) noexcept;
TULIP_API void post_callback(EventLoop& loop, InlineFunction<void()> callback);
TULIP_API void report_callback_error(EventLoop& loop, const char* message,
                                     std::exception_ptr error) noexcept;
TULIP_API void report_unretrieved(EventLoop& loop, const char* message,
                                  std::exception_ptr error) noexcept;

/// What every Future<T> shares, whatever T is.
class TULIP_API FutureStateBase {
 public:
  enum class Status : std::uint8_t { kPending, kCancelled, kFinished };

  explicit FutureStateBase(EventLoop& loop) : token_(loop_token(loop)) {}
  FutureStateBase(const FutureStateBase&) = delete;
  FutureStateBase& operator=(const FutureStateBase&) = delete;
  ~FutureStateBase();

  EventLoop& loop() const {
    if (token_->loop == nullptr) throw RuntimeError("the Future's event loop was destroyed");
    return *token_->loop;
  }
  bool done() const noexcept { return status_ != Status::kPending; }
  bool cancelled() const noexcept { return status_ == Status::kCancelled; }

  // Throws InvalidStateError unless pending.
  void check_pending(const char* operation) const;
  // For result(): throws if pending or cancelled, rethrows a stored exception.
  void check_result_ready();
  std::exception_ptr take_exception();
  void store_exception(std::exception_ptr exception);
  bool store_cancel(std::string message);

 protected:
  std::shared_ptr<LoopToken> token_;
  Status status_ = Status::kPending;
  bool exception_retrieved_ = false;
  std::exception_ptr exception_;
  std::string cancel_message_;
};

template <class T>
class FutureState final : public FutureStateBase,
                          public std::enable_shared_from_this<FutureState<T>> {
 public:
  using Value = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
  using DoneCallback = InlineFunction<void(Future<T>&)>;

  using FutureStateBase::FutureStateBase;

  template <class... A>
  void finish_with_value(A&&... args) {
    check_pending("set_result");
    check_can_schedule();
    value_.emplace(std::forward<A>(args)...);
    status_ = Status::kFinished;
    schedule_callbacks();
  }
  void finish_with_exception(std::exception_ptr exception) {
    check_pending("set_exception");
    check_can_schedule();
    store_exception(std::move(exception));
    schedule_callbacks();
  }
  bool finish_cancelled(std::string message) {
    if (done()) return false;
    check_can_schedule();
    if (!store_cancel(std::move(message))) return false;
    schedule_callbacks();
    return true;
  }

  Value& value() {
    check_result_ready();
    return *value_;
  }

  ~FutureState() {
    // The last copy went away off the loop's thread: what the state holds
    // belongs to the loop's thread, so it is released (or reported) there.
    if (!token_->on_loop_thread()) [[unlikely]]
      hand_over_to_loop();
  }

  CallbackId add_callback(DoneCallback callback) {
    if (is_empty_callable(callback)) {
      throw std::invalid_argument("add_done_callback() needs a callable, not an empty one");
    }
    CallbackId id = ++last_id_;
    if (done()) {
      schedule_one(std::move(callback));
    } else {
      callbacks_.add(id, std::move(callback));
    }
    return id;
  }

  std::size_t remove_callback(CallbackId id) { return callbacks_.remove(id); }

 private:
  // Completing a future whose callbacks can no longer be scheduled (its loop is
  // gone) fails before anything changes.
  void check_can_schedule() const {
    if (!callbacks_.empty()) (void)loop();
  }

  void schedule_callbacks() {
    if (callbacks_.empty()) return;
    // One ready-queue entry runs every callback present at completion, in order.
    // It is observably the same as asyncio's one call_soon per callback (nothing
    // can be scheduled between them), and it allocates nothing.
    post_callback(loop(), [self = this->shared_from_this()] { self->run_callbacks(); });
  }

  void schedule_one(DoneCallback callback) {
    post_callback(loop(),
                  [self = this->shared_from_this(),
                   callback = std::make_shared<DoneCallback>(std::move(callback))]() mutable {
                    Future<T> future(self);
                    (*callback)(future);
                  });
  }

  void run_callbacks() {
    auto callbacks = callbacks_.take();
    Future<T> future(this->shared_from_this());
    EventLoop& owner = loop();
    callbacks.for_each([&](DoneCallback& callback) {
      try {
        callback(future);
      } catch (...) {
        report_callback_error(owner, "Exception in a Future done callback",
                              std::current_exception());
      }
    });
  }

  void hand_over_to_loop() noexcept {
    std::exception_ptr unretrieved;
    if (status_ == Status::kFinished && exception_ && !exception_retrieved_) {
      unretrieved = exception_;
      exception_retrieved_ = true;  // reported by the loop, not by ~FutureStateBase here
    }
    if constexpr (std::is_nothrow_move_constructible_v<Value>) {
      try {
        token_->post([value = std::move(value_), callbacks = callbacks_.take(), unretrieved,
                      token = token_]() mutable {
          if (unretrieved && token->loop != nullptr) {
            report_unretrieved(*token->loop, "Future exception was never retrieved", unretrieved);
          }
          // `value` and `callbacks` are destroyed here, on the loop's thread.
        });
      } catch (...) {
        // Out of memory handing over: release here rather than not at all.
      }
    }
  }

  std::optional<Value> value_;
  DoneCallbacks<DoneCallback> callbacks_;
  CallbackId last_id_ = 0;
};

}  // namespace detail

/// asyncio.Future: a shared handle to a result that is not there yet (see the file comment).
template <class T = void>
class Future {
 public:
  /// The result's type.
  using value_type = T;

  /// An empty Future with no state; valid() is false. Only assignment is allowed.
  Future() noexcept = default;
  /// A new pending Future bound to `loop` (same as loop.create_future<T>()).
  explicit Future(EventLoop& loop) : state_(std::make_shared<detail::FutureState<T>>(loop)) {}
  /// @cond INTERNAL
  explicit Future(std::shared_ptr<detail::FutureState<T>> state) noexcept
      : state_(std::move(state)) {}
  /// @endcond

  /// False for a default-constructed Future.
  bool valid() const noexcept { return state_ != nullptr; }
  /// The loop the future belongs to; throws RuntimeError if it was destroyed.
  EventLoop& get_loop() const { return state_->loop(); }

  /// True once it has a result, an exception, or was cancelled.
  bool done() const noexcept { return state_->done(); }
  /// True if cancel() took effect.
  bool cancelled() const noexcept { return state_->cancelled(); }

  /// Completes the future with a value; schedules the done callbacks.
  /// Throws InvalidStateError if it is already done.
  template <class U = T>
  requires(!std::is_void_v<T> && std::is_constructible_v<T, U&&>) void set_result(U&& value) {
    state_->finish_with_value(std::forward<U>(value));
  }
  /// Completes a Future<void>; as the other overload.
  void set_result() requires std::is_void_v<T> { state_->finish_with_value(); }

  /// Completes the future with an exception. Throws InvalidStateError if done,
  /// std::invalid_argument if `exception` is null.
  void set_exception(std::exception_ptr exception) {
    state_->finish_with_exception(std::move(exception));
  }

  /// Cancels a pending future and schedules its callbacks; returns false if it
  /// was already done. `message` becomes the CancelledError's text.
  bool cancel(std::string message = {}) { return state_->finish_cancelled(std::move(message)); }

  /// The result: a reference into the shared state, valid while any copy lives.
  /// Throws InvalidStateError if pending, CancelledError if cancelled, or the
  /// exception that was set.
  decltype(auto) result() const {
    if constexpr (std::is_void_v<T>) {
      state_->value();
    } else {
      return static_cast<T&>(state_->value());
    }
  }

  /// The exception set, or null if the future finished with a value. Throws
  /// InvalidStateError if pending, CancelledError if cancelled.
  std::exception_ptr exception() const { return state_->take_exception(); }

  /// Adds `callback`, called as callback(Future<T>&) through call_soon once the
  /// future is done (at once if it is already done). The future owns the callable
  /// until it ran or was removed.
  template <class F>
  CallbackId add_done_callback(F&& callback) {
    if (detail::is_empty_callable(callback)) {
      throw std::invalid_argument("add_done_callback() needs a callable, not an empty one");
    }
    if constexpr (std::is_invocable_v<F&, Future<T>&>) {
      return state_->add_callback(std::forward<F>(callback));
    } else {
      return state_->add_callback(
          [callback = std::forward<F>(callback)](Future<T>&) mutable { callback(); });
    }
  }

  /// Removes a callback that has not run; returns how many were removed (0 or 1).
  std::size_t remove_done_callback(CallbackId id) { return state_->remove_callback(id); }

  /// Same state: the identity asyncio compares with `is`.
  bool operator==(const Future& other) const noexcept { return state_ == other.state_; }

 private:
  std::shared_ptr<detail::FutureState<T>> state_;
};

}  // namespace tulip
