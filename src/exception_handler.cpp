// The loop's exception handler: errors that no caller could receive.
#include <stdexcept>
#include <string>

#include "tulip/event_loop.hpp"
#include "tulip/log.hpp"

namespace tulip {

void EventLoop::set_exception_handler(ExceptionHandler handler) {
  exception_handler_ = std::move(handler);
}

void EventLoop::call_exception_handler(const ExceptionContext& context) noexcept {
  if (!exception_handler_) {
    default_exception_handler(context);
    return;
  }
  try {
    exception_handler_(*this, context);
  } catch (...) {
    // As asyncio: a failing custom handler is reported by the default one,
    // together with what it was handling.
    default_exception_handler({"Unhandled error in exception handler", std::current_exception()});
    default_exception_handler(context);
  }
}

void EventLoop::default_exception_handler(const ExceptionContext& context) noexcept {
  try {
    log(LogLevel::kError, describe(context));
  } catch (...) {
    // Logging must never take the loop down; there is nowhere left to report to.
  }
}

std::string describe(const ExceptionContext& context) {
  std::string text =
      context.message.empty() ? "Unhandled exception in event loop" : context.message;
  if (context.exception) {
    try {
      std::rethrow_exception(context.exception);
    } catch (const std::exception& e) {
      text += ": ";
      text += e.what();
    } catch (const CancelledError& e) {
      // Not a std::exception on purpose (see errors.hpp).
      text += ": CancelledError: ";
      text += e.what();
    } catch (...) {
      text += ": unknown exception";
    }
  }
  return text;
}

void EventLoop::throw_closed() { throw RuntimeError("Event loop is closed"); }

void EventLoop::throw_empty_callback(const char* method) {
  throw std::invalid_argument(std::string(method) + "() needs a callable, not an empty one");
}

}  // namespace tulip
