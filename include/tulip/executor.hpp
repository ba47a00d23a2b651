// Executors: where blocking work runs (concurrent.futures.Executor and
// ThreadPoolExecutor, as asyncio's run_in_executor uses them).
//
// An Executor runs jobs on threads of its own. EventLoop::run_in_executor(
// executor, fn) hands `fn` to one and returns a Future that completes on the
// loop's thread with what `fn` returned or threw (event_loop.hpp). The loop's
// default executor is a ThreadPoolExecutor made on first use; its own name
// lookups (getaddrinfo, getnameinfo, the names create_connection resolves)
// run there too, so one pool serves everything blocking a loop asks for.
//
// ThreadPoolExecutor starts a thread only when a job arrives and no thread is
// idle, up to max_workers (asyncio's default: min(32, CPUs + 4)). Its threads
// run with every signal blocked, so a signal sent to the process always
// reaches one of the application's threads (the loop's signal handling lives
// there), never a worker.
//
// Thread-safety: submit() and shutdown() may be called from any thread.
#pragma once

#include <cstddef>
#include <memory>

#include "tulip/detail/inline_function.hpp"
#include "tulip/export.hpp"

namespace tulip {

/// Runs jobs on threads other than the loop's (concurrent.futures.Executor).
class TULIP_API Executor {
 public:
  /// A job: any callable with signature void(), run once on a worker thread.
  using Job = detail::InlineFunction<void()>;

  virtual ~Executor() = default;

  /// Queues `job`; one of the executor's threads runs it later, never inside
  /// this call. The executor owns the job until it has run (it is destroyed on
  /// the thread that ran it) or was dropped by shutdown(). Throws RuntimeError
  /// once shutdown() was called, std::invalid_argument for an empty job.
  virtual void submit(Job job) = 0;

  /// Stops accepting jobs. With `wait`, returns once every queued job has run
  /// and every thread has ended. Without it, returns at once: jobs already
  /// running finish on their threads, which then end by themselves. With
  /// `cancel_pending`, queued jobs that have not started are dropped (destroyed
  /// here, on the caller's thread) instead of being run. Idempotent; safe to
  /// call from several threads at once. Throws RuntimeError if `wait` is asked
  /// from one of the executor's own threads (it would wait for itself).
  virtual void shutdown(bool wait = true, bool cancel_pending = false) = 0;
};

/// A pool of worker threads started on demand (concurrent.futures.ThreadPoolExecutor).
class TULIP_API ThreadPoolExecutor final : public Executor {
 public:
  /// asyncio's default pool size: min(32, usable CPUs + 4).
  static std::size_t default_max_workers() noexcept;

  /// A pool of at most `max_workers` threads, none started yet. Throws
  /// std::invalid_argument for 0.
  explicit ThreadPoolExecutor(std::size_t max_workers = default_max_workers());
  /// shutdown(wait = true): waits for the queued and running jobs, unless
  /// shutdown() was called before (then nothing is left to wait for).
  ~ThreadPoolExecutor() override;

  ThreadPoolExecutor(const ThreadPoolExecutor&) = delete;
  ThreadPoolExecutor& operator=(const ThreadPoolExecutor&) = delete;

  /// See Executor::submit. Starts a thread if none is idle and fewer than
  /// max_workers() run.
  void submit(Job job) override;
  /// See Executor::shutdown.
  void shutdown(bool wait = true, bool cancel_pending = false) override;

  /// The most threads this pool starts.
  std::size_t max_workers() const noexcept { return max_workers_; }
  /// Threads started so far and not yet ended or let go by shutdown().
  std::size_t thread_count() const;

 private:
  struct State;  // shared with the threads, so that a let-go thread may outlive the pool

  std::size_t max_workers_;
  std::shared_ptr<State> state_;
};

}  // namespace tulip
