// ExceptionGroup: several errors raised together (Python 3.11's ExceptionGroup).
//
// TaskGroup raises one when children fail: every child's error comes out, in
// the order they happened. what() is "unhandled errors in a TaskGroup (N
// sub-exceptions)"; exceptions() gives each one as an exception_ptr. It is a
// std::exception (Python's ExceptionGroup is an Exception); it never contains
// a CancelledError.
//
// Thread-safety: a plain value.
#pragma once

#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "tulip/export.hpp"

namespace tulip {

/// Several errors raised together (Python's ExceptionGroup).
class TULIP_API ExceptionGroup : public std::exception {
 public:
  /// `message` without the count; `exceptions` in the order they happened.
  ExceptionGroup(std::string message, std::vector<std::exception_ptr> exceptions)
      : message_(std::move(message)), exceptions_(std::move(exceptions)) {
    what_ = message_ + " (" + std::to_string(exceptions_.size()) + " sub-exception" +
            (exceptions_.size() == 1 ? ")" : "s)");
  }

  /// "message (N sub-exceptions)".
  const char* what() const noexcept override { return what_.c_str(); }
  /// The message without the count (Python's ExceptionGroup.message).
  const std::string& message() const noexcept { return message_; }
  /// Every error, in the order they happened.
  const std::vector<std::exception_ptr>& exceptions() const noexcept { return exceptions_; }

 private:
  std::string message_;
  std::string what_;
  std::vector<std::exception_ptr> exceptions_;
};

}  // namespace tulip
