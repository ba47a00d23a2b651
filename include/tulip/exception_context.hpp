// ExceptionContext: what the loop's exception handler is told.
//
// asyncio passes the handler a dict with keys such as 'message', 'exception',
// 'handle', 'transport' and 'protocol'. tulip passes this struct: the fields that
// do not apply are empty. The pointers are borrowed for the duration of the
// handler call only: do not keep them.
//
// Thread-safety: built and delivered on the loop's thread.
#pragma once

#include <exception>
#include <functional>
#include <string>

#include "tulip/export.hpp"

namespace tulip {

class EventLoop;
class BaseTransport;
class BaseProtocol;
class Server;

/// What went wrong, for the loop's exception handler (asyncio's context dict).
struct ExceptionContext {
  /// Always set: what went wrong, in a sentence (asyncio's 'message').
  std::string message;
  /// The exception, if one was thrown (asyncio's 'exception').
  std::exception_ptr exception;
  /// The transport / protocol / server involved, if any; borrowed.
  BaseTransport* transport = nullptr;
  BaseProtocol* protocol = nullptr;  ///< The protocol involved, if any; borrowed.
  Server* server = nullptr;          ///< The server involved, if any; borrowed.
};

/// Called on the loop's thread; an exception it throws is caught and logged.
using ExceptionHandler = std::function<void(EventLoop&, const ExceptionContext&)>;

/// "message: what()" — the one-line text the default handler logs.
TULIP_API std::string describe(const ExceptionContext& context);

}  // namespace tulip
