// Timeout's state machine (timeouts.hpp), after asyncio's timeouts.py.
#include "tulip/timeouts.hpp"

#include <string>

namespace tulip {

void Timeout::enter() {
  if (state_ != State::kCreated) throw RuntimeError("Timeout has already been entered");
  task_ = current_task();
  if (!task_.valid()) throw RuntimeError("Timeout should be used inside a task");
  state_ = State::kEntered;
  cancelling_ = task_.cancelling();
  reschedule(when_);
}

void Timeout::reschedule(std::optional<double> when) {
  if (state_ != State::kEntered) {
    throw RuntimeError(state_ == State::kCreated ? "Timeout has not been entered"
                                                 : "Cannot change state of a finished Timeout");
  }
  when_ = when;
  handle_.cancel();
  handle_ = Handle();
  if (!when) return;
  EventLoop& loop = task_.get_loop();
  // The handle is cancelled on exit and by the destructor: `this` outlives it.
  if (*when <= loop.time()) {
    handle_ = loop.call_soon([this] { on_timeout(); });
  } else {
    handle_ = loop.call_at(*when, [this] { on_timeout(); });
  }
}

void Timeout::on_timeout() {
  task_.cancel();
  state_ = State::kExpiring;
  handle_ = Handle();
}

void Timeout::exit(const std::exception_ptr& error) {
  handle_.cancel();
  handle_ = Handle();
  if (state_ == State::kExpiring) {
    state_ = State::kExpired;
    if (task_.uncancel() <= cancelling_ && error) {
      try {
        std::rethrow_exception(error);
      } catch (const CancelledError&) {
        throw TimeoutError("timed out");
      } catch (...) {
        // Another error: it propagates unchanged.
      }
    }
  } else if (state_ == State::kEntered) {
    state_ = State::kExited;
  }
}

}  // namespace tulip
