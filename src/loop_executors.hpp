// LoopExecutors: the loop's side of run_in_executor. Not API.
//
// Holds the loop's default executor (a ThreadPoolExecutor made on first use,
// or the one set_default_executor gave), and the completions of jobs handed
// to any executor. A job is split in two: `work`, which runs on a worker
// thread, and `done`, which never leaves the loop's thread. The worker posts
// only the job's number back (with call_soon_threadsafe), together with the
// spent `work` callable, so that what `work` captured is released on the
// loop's thread too. Closing the loop drops every `done` here, on the loop's
// thread, and lets the default executor's threads go without waiting for
// them: a late answer finds the loop closed and is dropped.
//
// Thread-safety: loop thread only; the workers reach the loop only through
// its LoopToken.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>

#include "tulip/event_loop.hpp"
#include "tulip/executor.hpp"

namespace tulip::detail {

class LoopExecutors {
 public:
  explicit LoopExecutors(EventLoop& loop) : loop_(loop) {}
  LoopExecutors(const LoopExecutors&) = delete;
  LoopExecutors& operator=(const LoopExecutors&) = delete;

  /// Runs `work` on `executor` (the default one if null); `done` runs later on
  /// the loop's thread, once `work` has returned, unless the loop closed
  /// first. Throws RuntimeError if the default executor was shut down (as
  /// asyncio: "Executor shutdown has been called"), or what the executor's
  /// submit throws; then nothing was queued.
  void submit(std::shared_ptr<Executor> executor, Executor::Job work, Callback done);

  /// asyncio's set_default_executor. Throws std::invalid_argument for null.
  void set_default(std::shared_ptr<Executor> executor);

  /// asyncio's shutdown_default_executor(timeout) (see event_loop.hpp).
  Future<void> shutdown_default(std::optional<double> timeout);

  /// The loop is closing: drops every pending `done` and shuts the default
  /// executor down without waiting.
  void shutdown() noexcept;

  /// Jobs whose `done` has not run yet.
  std::size_t pending() const noexcept { return pending_.size(); }

 private:
  void complete(std::uint64_t id);

  EventLoop& loop_;
  std::shared_ptr<Executor> default_executor_;
  bool default_is_own_ = false;   // made here, not given by set_default_executor
  bool shutdown_called_ = false;  // shutdown_default_executor was called
  std::unordered_map<std::uint64_t, Callback> pending_;
  std::uint64_t last_id_ = 0;
};

}  // namespace tulip::detail
