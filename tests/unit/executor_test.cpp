// run_in_executor, ThreadPoolExecutor and the loop's default executor.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <sched.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#include "support/loopback.hpp"

namespace tulip::testing {
namespace {

// A gate a job can wait at until the test opens it.
class Gate {
 public:
  void wait() {
    std::unique_lock lock(mutex_);
    ++waiting_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return open_; });
  }
  void wait_until_waiting(int count) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return waiting_ >= count; });
  }
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int waiting_ = 0;
  bool open_ = false;
};

// tulip's log lines while it lives.
struct CapturedLogLines {
  CapturedLogLines() {
    previous = set_log_sink([this](LogLevel, std::string_view text) { lines.emplace_back(text); });
  }
  ~CapturedLogLines() { set_log_sink(std::move(previous)); }
  std::vector<std::string> lines;
  LogSink previous;
};

// Forwards to a pool and counts what it was given.
class CountingExecutor final : public Executor {
 public:
  void submit(Job job) override {
    ++submitted;
    pool.submit(std::move(job));
  }
  void shutdown(bool wait, bool cancel_pending) override { pool.shutdown(wait, cancel_pending); }

  std::atomic<int> submitted{0};
  ThreadPoolExecutor pool{2};
};

TEST(RunInExecutor, ReturnsTheResultOfAJobRunOnAnotherThread) {
  EventLoop loop;
  std::thread::id worker;
  Future<int> answer = loop.run_in_executor(nullptr, [&] {
    worker = std::this_thread::get_id();
    return 42;
  });
  EXPECT_FALSE(answer.done());  // never inline
  EXPECT_EQ(loop.run_until_complete(answer), 42);
  EXPECT_NE(worker, std::this_thread::get_id());
  EXPECT_NE(worker, std::thread::id());
}

TEST(RunInExecutor, VoidAndMoveOnlyResults) {
  EventLoop loop;
  std::atomic<bool> ran{false};
  loop.run_until_complete(loop.run_in_executor(nullptr, [&] { ran = true; }));
  EXPECT_TRUE(ran);
  auto boxed = loop.run_until_complete(
      loop.run_in_executor(nullptr, [] { return std::make_unique<std::string>("moved"); }));
  ASSERT_TRUE(boxed);
  EXPECT_EQ(*boxed, "moved");
}

TEST(RunInExecutor, DoneCallbacksRunOnTheLoopsThread) {
  EventLoop loop;
  std::thread::id callback_thread;
  Future<int> answer = loop.run_in_executor(nullptr, [] { return 1; });
  answer.add_done_callback([&] { callback_thread = std::this_thread::get_id(); });
  loop.run_until_complete(answer);
  ASSERT_TRUE(run_until(loop, [&] { return callback_thread != std::thread::id(); }));
  EXPECT_EQ(callback_thread, std::this_thread::get_id());
}

TEST(RunInExecutor, TheDefaultPoolStartsThreadsOnlyAsJobsNeedThem) {
  cpu_set_t usable;
  ASSERT_EQ(sched_getaffinity(0, sizeof(usable), &usable), 0);
  EXPECT_EQ(ThreadPoolExecutor::default_max_workers(),
            std::min<std::size_t>(32, static_cast<std::size_t>(CPU_COUNT(&usable)) + 4));
  auto pool = std::make_shared<ThreadPoolExecutor>(3);
  EXPECT_EQ(pool->thread_count(), 0u);
  EventLoop loop;
  // Five blocked at once: the pool grows to its limit and the rest wait.
  Gate gate;
  std::atomic<int> ran{0};
  std::vector<Future<void>> jobs;
  for (int i = 0; i < 5; ++i) {
    jobs.push_back(loop.run_in_executor(pool, [&] {
      gate.wait();
      ++ran;
    }));
  }
  gate.wait_until_waiting(3);
  EXPECT_EQ(pool->thread_count(), 3u);
  gate.open();
  ASSERT_TRUE(run_until(loop, [&] {
    return std::all_of(jobs.begin(), jobs.end(), [](auto& job) { return job.done(); });
  }));
  EXPECT_EQ(ran.load(), 5);
  pool->shutdown();
  EXPECT_EQ(pool->thread_count(), 0u);
}

TEST(RunInExecutor, ACancelledJobThatHasNotStartedNeverRuns) {
  EventLoop loop;
  auto pool = std::make_shared<ThreadPoolExecutor>(1);
  Gate gate;
  Future<void> blocker = loop.run_in_executor(pool, [&] { gate.wait(); });
  std::atomic<bool> second_ran{false};
  Future<int> second = loop.run_in_executor(pool, [&] {
    second_ran = true;
    return 2;
  });
  gate.wait_until_waiting(1);
  EXPECT_TRUE(second.cancel());
  run_iterations(loop, 2);  // the cancellation reaches the job's outcome
  gate.open();
  loop.run_until_complete(blocker);
  pool->shutdown();  // the second job has been taken and skipped by now
  EXPECT_FALSE(second_ran.load());
  EXPECT_TRUE(second.cancelled());
}

TEST(RunInExecutor, PoolThreadsRunWithEverySignalBlocked) {
  EventLoop loop;
  bool blocks_all = loop.run_until_complete(loop.run_in_executor(nullptr, [] {
    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    return sigismember(&mask, SIGINT) == 1 && sigismember(&mask, SIGTERM) == 1 &&
           sigismember(&mask, SIGCHLD) == 1 && sigismember(&mask, SIGUSR1) == 1;
  }));
  EXPECT_TRUE(blocks_all);
  sigset_t mine;
  pthread_sigmask(SIG_BLOCK, nullptr, &mine);
  EXPECT_EQ(sigismember(&mine, SIGINT), 0);
}

TEST(RunInExecutor, NameLookupsUseTheDefaultExecutor) {
  EventLoop loop;
  auto counting = std::make_shared<CountingExecutor>();
  loop.set_default_executor(counting);
  loop.run_until_complete(loop.getaddrinfo("localhost", "80"));
  loop.run_until_complete(loop.getnameinfo(*SocketAddress::parse("127.0.0.1", 80)));
  EXPECT_EQ(counting->submitted.load(), 2);
  // And so do run_in_executor's jobs without an executor of their own.
  loop.run_until_complete(loop.run_in_executor(nullptr, [] {}));
  EXPECT_EQ(counting->submitted.load(), 3);
  loop.close();
  // The loop shut its default executor down (without waiting), as asyncio does.
  EXPECT_THROW(counting->submit([] {}), RuntimeError);
}

TEST(RunInExecutor, RefusesEmptyCallablesAndClosedLoops) {
  EventLoop loop;
  std::function<int()> empty;
  EXPECT_THROW(loop.run_in_executor(nullptr, empty), std::invalid_argument);
  EXPECT_THROW(loop.set_default_executor(nullptr), std::invalid_argument);
  loop.close();
  EXPECT_THROW(loop.run_in_executor(nullptr, [] {}), RuntimeError);
}

TEST(RunInExecutor, AnExecutorThatWasShutDownRefusesJobsAtOnce) {
  EventLoop loop;
  auto pool = std::make_shared<ThreadPoolExecutor>(1);
  pool->shutdown();
  EXPECT_THROW(loop.run_in_executor(pool, [] {}), RuntimeError);
  EXPECT_THROW(ThreadPoolExecutor(0), std::invalid_argument);
}

TEST(ShutdownDefaultExecutor, WaitsForRunningJobsWithoutBlockingTheLoop) {
  EventLoop loop;
  Gate gate;
  std::atomic<bool> finished{false};
  Future<void> job = loop.run_in_executor(nullptr, [&] {
    gate.wait();
    finished = true;
  });
  gate.wait_until_waiting(1);
  Future<void> shutdown = loop.shutdown_default_executor();
  // The loop keeps running callbacks while the pool is joined elsewhere.
  bool ticked = false;
  loop.call_soon([&] { ticked = true; });
  run_iterations(loop, 3);
  EXPECT_TRUE(ticked);
  EXPECT_FALSE(shutdown.done());
  gate.open();
  loop.run_until_complete(shutdown);
  EXPECT_TRUE(finished.load());
  // The running job's answer was delivered before or after: either way it completes.
  loop.run_until_complete(job);
  try {
    loop.run_in_executor(nullptr, [] {});
    ADD_FAILURE() << "run_in_executor after shutdown_default_executor";
  } catch (const RuntimeError& e) {
    EXPECT_STREQ(e.what(), "Executor shutdown has been called");
  }
  // The loop's own lookups fail the same way, with the reason.
  try {
    loop.run_until_complete(loop.getaddrinfo("localhost", "80"));
    ADD_FAILURE() << "a lookup after shutdown_default_executor";
  } catch (const OSError& e) {
    EXPECT_NE(std::string(e.what()).find("Executor shutdown has been called"), std::string::npos)
        << e.what();
  }
  // An explicit executor still works.
  auto pool = std::make_shared<ThreadPoolExecutor>(1);
  EXPECT_EQ(loop.run_until_complete(loop.run_in_executor(pool, [] { return 7; })), 7);
}

TEST(ShutdownDefaultExecutor, GivesUpAfterItsTimeoutWithAWarning) {
  CapturedLogLines log;
  auto gate = std::make_shared<Gate>();
  {
    EventLoop loop;
    loop.run_in_executor(nullptr, [gate] { gate->wait(); });
    gate->wait_until_waiting(1);
    loop.run_until_complete(loop.shutdown_default_executor(0.05));
    ASSERT_EQ(log.lines.size(), 1u);
    EXPECT_EQ(log.lines[0], "The executor did not finish joining its threads within 0.05 seconds.");
  }
  gate->open();  // the let-go worker ends by itself
}

TEST(ShutdownDefaultExecutor, WithoutADefaultExecutorCompletesAtOnce) {
  EventLoop loop;
  loop.run_until_complete(loop.shutdown_default_executor());
  EXPECT_THROW(loop.run_in_executor(nullptr, [] {}), RuntimeError);
}

Task<void> start_a_job_and_return(EventLoop& loop, std::atomic<bool>* finished) {
  loop.run_in_executor(nullptr, [finished] { *finished = true; });
  co_return;
}

TEST(ShutdownDefaultExecutor, RunWaitsForTheDefaultExecutorAsAsyncioRunDoes) {
  std::atomic<bool> finished{false};
  tulip::run([&](EventLoop& loop) { return start_a_job_and_return(loop, &finished); });
  EXPECT_TRUE(finished.load());
}

TEST(ThreadPoolExecutorTest, ShutdownFromOneOfItsOwnJobsIsRefusedWhenItWouldWait) {
  ThreadPoolExecutor pool(1);
  std::promise<std::string> outcome;
  pool.submit([&] {
    try {
      pool.shutdown(true);
      outcome.set_value("returned");
    } catch (const RuntimeError&) {
      outcome.set_value("refused");
    }
  });
  EXPECT_EQ(outcome.get_future().get(), "refused");
  pool.shutdown();
}

TEST(ThreadPoolExecutorTest, ShutdownWithCancelDropsQueuedJobsOnTheCallersThread) {
  auto gate = std::make_shared<Gate>();
  ThreadPoolExecutor pool(1);
  pool.submit([gate] { gate->wait(); });
  gate->wait_until_waiting(1);
  auto died_on = std::make_shared<std::thread::id>();
  struct Witness {
    std::shared_ptr<std::thread::id> record;
    explicit Witness(std::shared_ptr<std::thread::id> r) : record(std::move(r)) {}
    Witness(Witness&& other) noexcept = default;
    ~Witness() {
      if (record) *record = std::this_thread::get_id();
    }
  };
  auto ran = std::make_shared<std::atomic<bool>>(false);
  pool.submit([witness = Witness(died_on), ran] { *ran = true; });
  // The queued job is dropped here; the running one is let go.
  pool.shutdown(false, true);
  EXPECT_EQ(*died_on, std::this_thread::get_id());
  EXPECT_EQ(pool.thread_count(), 0u);
  gate->open();
  EXPECT_FALSE(ran->load());
  EXPECT_THROW(pool.submit([] {}), RuntimeError);
}

}  // namespace
}  // namespace tulip::testing
