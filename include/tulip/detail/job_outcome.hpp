// JobOutcome: what a job given to run_in_executor produced, carried from the
// worker thread that ran it to the loop's thread that completes its Future.
// Not API.
//
// Thread-safety: the worker writes `value`/`error` before handing the outcome
// to the loop (through call_soon_threadsafe, whose lock orders the two); the
// loop reads them after. `cancelled` is atomic: the loop sets it when the
// Future is cancelled, the worker reads it before starting the job.
#pragma once

#include <atomic>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace tulip::detail {

template <class R>
struct JobOutcome {
  using Value = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

  /// Runs `job` unless the Future was cancelled first, keeping what it
  /// returned or threw. Called on the worker thread.
  template <class F>
  void run(F& job) {
    if (cancelled.load(std::memory_order_acquire)) return;
    try {
      if constexpr (std::is_void_v<R>) {
        job();
        value.emplace();
      } else {
        value.emplace(job());
      }
    } catch (...) {
      error = std::current_exception();
    }
  }

  /// Completes `result` with the outcome. Called on the loop's thread.
  template <class FutureT>
  void deliver(FutureT& result) {
    if (result.done()) return;  // cancelled meanwhile
    if (error) {
      result.set_exception(std::move(error));
    } else if (value) {
      if constexpr (std::is_void_v<R>) {
        result.set_result();
      } else {
        result.set_result(std::move(*value));
      }
    }
  }

  std::optional<Value> value;
  std::exception_ptr error;
  std::atomic<bool> cancelled{false};
};

}  // namespace tulip::detail
