#include "loop_executors.hpp"

#include <cstdio>
#include <string>
#include <thread>
#include <utility>

#include "background_thread.hpp"
#include "loop_access.hpp"
#include "loop_internals.hpp"
#include "tulip/detail/loop_token.hpp"
#include "tulip/log.hpp"

namespace tulip {
namespace detail {

void LoopExecutors::submit(std::shared_ptr<Executor> executor, Executor::Job work, Callback done) {
  if (!executor) {
    if (shutdown_called_) throw RuntimeError("Executor shutdown has been called");
    if (!default_executor_) {
      default_executor_ = std::make_shared<ThreadPoolExecutor>();
      default_is_own_ = true;
    }
    executor = default_executor_;
  }
  std::uint64_t id = ++last_id_;
  std::shared_ptr<LoopToken> token = LoopAccess::token(loop_);
  EventLoop* loop = &loop_;
  executor->submit([token, loop, id, work = std::move(work)]() mutable {
    work();
    // The spent callable goes back with the answer, so that what it captured
    // is released on the loop's thread. If the loop has closed meanwhile,
    // post() refuses and both die here: nobody waits for them any more.
    token->post([loop, id, spent = std::move(work)]() mutable {
      spent = nullptr;
      LoopAccess::internals(*loop).executors.complete(id);
    });
  });
  // Only now: a job that could not be queued leaves nothing behind. (Its
  // answer cannot overtake this line: it is delivered on this thread.)
  pending_.emplace(id, std::move(done));
}

void LoopExecutors::complete(std::uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Callback done = std::move(it->second);
  pending_.erase(it);
  done();
}

void LoopExecutors::set_default(std::shared_ptr<Executor> executor) {
  if (!executor) throw std::invalid_argument("set_default_executor() needs an executor, not null");
  // The pool made here is no longer anyone's: its threads end once idle.
  if (default_executor_ && default_is_own_) default_executor_->shutdown(false);
  default_executor_ = std::move(executor);
  default_is_own_ = false;
}

namespace {

// The thread that waits for the executor's threads. Let go, not joined, if
// the wait times out or the loop closes first.
struct ExecutorJoiner {
  std::thread thread;
  ~ExecutorJoiner() {
    if (thread.joinable()) thread.detach();
  }
};

}  // namespace

Future<void> LoopExecutors::shutdown_default(std::optional<double> timeout) {
  Future<void> result = loop_.create_future<void>();
  shutdown_called_ = true;
  if (!default_executor_) {
    result.set_result();
    return result;
  }
  std::shared_ptr<Executor> executor = default_executor_;
  auto joiner = std::make_shared<ExecutorJoiner>();
  auto timer = std::make_shared<TimerHandle>();
  std::uint64_t id = ++last_id_;
  pending_.emplace(id, [result, joiner, timer]() mutable {
    timer->cancel();
    // The thread has posted its last word: joining it takes no time.
    if (joiner->thread.joinable()) joiner->thread.join();
    if (!result.done()) result.set_result();
  });
  std::shared_ptr<LoopToken> token = LoopAccess::token(loop_);
  EventLoop* loop = &loop_;
  try {
    joiner->thread = start_background_thread([executor, token, loop, id] {
      try {
        executor->shutdown(true);
      } catch (...) {
        // Only a shutdown asked from the executor's own thread throws, and
        // this thread is not one of them.
      }
      token->post([loop, id] { LoopAccess::internals(*loop).executors.complete(id); });
    });
  } catch (...) {
    pending_.erase(id);
    throw;
  }
  if (timeout) {
    *timer = loop_.call_later(*timeout, [this, result, joiner, executor, id,
                                         seconds = *timeout]() mutable {
      if (result.done()) return;
      pending_.erase(id);
      char text[128];
      std::snprintf(text, sizeof(text),
                    "The executor did not finish joining its threads within %g seconds.", seconds);
      log(LogLevel::kWarning, text);
      executor->shutdown(false);
      joiner->thread.detach();
      result.set_result();
    });
  }
  return result;
}

void LoopExecutors::shutdown() noexcept {
  // The callables die here, on the loop's thread, whatever the workers do.
  pending_.clear();
  if (!default_executor_) return;
  try {
    // asyncio's loop.close(): shutdown(wait=False). Jobs queued by this loop
    // for its own pool would only be dropped on arrival: they are not run.
    default_executor_->shutdown(false, default_is_own_);
  } catch (...) {
    // A user's executor that throws on shutdown: the loop closes anyway.
  }
  default_executor_.reset();
}

}  // namespace detail

void EventLoop::submit_job(std::shared_ptr<Executor> executor, Executor::Job work, Callback done) {
  if (closed_) throw_closed();
  internals_->executors.submit(std::move(executor), std::move(work), std::move(done));
}

void EventLoop::set_default_executor(std::shared_ptr<Executor> executor) {
  internals_->executors.set_default(std::move(executor));
}

Future<void> EventLoop::shutdown_default_executor(std::optional<double> timeout) {
  return internals_->executors.shutdown_default(timeout);
}

}  // namespace tulip
