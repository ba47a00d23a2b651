// The non-template half of Future<T>: the state machine, exception
// bookkeeping, and the loop operations the template calls.
#include <stdexcept>

#include "loop_access.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/future.hpp"

namespace tulip::detail {

const std::shared_ptr<LoopToken>& loop_token(EventLoop& loop) noexcept {
  return LoopAccess::token(loop);
}

void post_callback(EventLoop& loop, InlineFunction<void()> callback) {
  loop.call_soon(std::move(callback));
}

void report_callback_error(EventLoop& loop, const char* message,
                           std::exception_ptr error) noexcept {
  loop.call_exception_handler({message, std::move(error)});
}

void report_unretrieved(EventLoop& loop, const char* message, std::exception_ptr error) noexcept {
  loop.call_exception_handler({message, std::move(error)});
}

bool LoopToken::post(InlineFunction<void()> callback) noexcept {
  // Under the token's lock the loop cannot be destroyed (its destructor takes
  // the lock to clear `loop`); a closed loop refuses the callback.
  std::lock_guard lock(mutex);
  if (loop == nullptr) return false;
  try {
    loop->call_soon_threadsafe(std::move(callback));
    return true;
  } catch (...) {
    return false;
  }
}

FutureStateBase::~FutureStateBase() {
  // asyncio reports an exception nobody looked at when the future is collected;
  // the last copy going away is C++'s equivalent of that moment. Off the loop's
  // thread the derived state has handed the report to the loop already.
  if (status_ == Status::kFinished && exception_ && !exception_retrieved_ &&
      token_->on_loop_thread() && token_->loop != nullptr) {
    token_->loop->call_exception_handler({"Future exception was never retrieved", exception_});
  }
}

void FutureStateBase::check_pending(const char* operation) const {
  if (status_ != Status::kPending) {
    throw InvalidStateError(std::string("invalid state: ") + operation +
                            "() on a Future that is already done");
  }
}

void FutureStateBase::check_result_ready() {
  if (status_ == Status::kPending) throw InvalidStateError("Result is not ready.");
  if (status_ == Status::kCancelled) throw CancelledError(cancel_message_);
  if (exception_) {
    exception_retrieved_ = true;
    std::rethrow_exception(exception_);
  }
}

std::exception_ptr FutureStateBase::take_exception() {
  if (status_ == Status::kPending) throw InvalidStateError("Exception is not set.");
  if (status_ == Status::kCancelled) throw CancelledError(cancel_message_);
  exception_retrieved_ = true;
  return exception_;
}

void FutureStateBase::store_exception(std::exception_ptr exception) {
  check_pending("set_exception");
  if (!exception) throw std::invalid_argument("set_exception() needs a non-null exception");
  exception_ = std::move(exception);
  status_ = Status::kFinished;
}

bool FutureStateBase::store_cancel(std::string message) {
  if (status_ != Status::kPending) return false;
  status_ = Status::kCancelled;
  cancel_message_ = message.empty() ? "cancelled" : std::move(message);
  return true;
}

}  // namespace tulip::detail
