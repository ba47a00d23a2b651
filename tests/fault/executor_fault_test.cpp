// Executor jobs that go wrong: a job that throws, a job still running when
// the loop closes, a job whose captures must die on the loop's thread.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "fault/fault_support.hpp"
#include "loop_access.hpp"
#include "loop_internals.hpp"

namespace tulip::testing {
namespace {

struct Gate {
  std::mutex mutex;
  std::condition_variable changed;
  bool open = false;
  bool entered = false;

  void pass() {
    std::unique_lock lock(mutex);
    entered = true;
    changed.notify_all();
    changed.wait(lock, [&] { return open; });
  }
  void wait_entered() {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return entered; });
  }
  void release() {
    std::lock_guard lock(mutex);
    open = true;
    changed.notify_all();
  }
};

// Records the thread its last copy dies on.
struct DeathWitness {
  std::shared_ptr<std::thread::id> died_on;
  explicit DeathWitness(std::shared_ptr<std::thread::id> record) : died_on(std::move(record)) {}
  DeathWitness(DeathWitness&&) noexcept = default;
  ~DeathWitness() {
    if (died_on) *died_on = std::this_thread::get_id();
  }
};

TEST(ExecutorFault, AJobThatThrowsFailsItsFutureWithThatExceptionAndThePoolGoesOn) {
  EventLoop loop;
  auto pool = std::make_shared<ThreadPoolExecutor>(1);
  Future<int> failing =
      loop.run_in_executor(pool, []() -> int { throw std::out_of_range("no such row"); });
  Future<void> odd = loop.run_in_executor(pool, [] { throw 17; });
  Future<int> fine = loop.run_in_executor(pool, [] { return 5; });
  try {
    loop.run_until_complete(failing);
    ADD_FAILURE() << "the job's exception was lost";
  } catch (const std::out_of_range& e) {
    EXPECT_STREQ(e.what(), "no such row");
  }
  try {
    loop.run_until_complete(odd);
    ADD_FAILURE() << "the job's exception was lost";
  } catch (int value) {
    EXPECT_EQ(value, 17);
  }
  // The same single thread ran the next job: a throwing job does not end it.
  EXPECT_EQ(loop.run_until_complete(fine), 5);
  EXPECT_EQ(pool->thread_count(), 1u);
}

TEST(ExecutorFault, AFailedJobNobodyAsksAboutIsReportedOnce) {
  EventLoop loop;
  ExceptionLog exceptions(loop);
  {
    Future<void> ignored =
        loop.run_in_executor(nullptr, [] { throw std::runtime_error("nobody looked"); });
    ASSERT_TRUE(run_until(loop, [&] { return ignored.done(); }));
  }
  run_iterations(loop, 3);  // the Future's last callbacks let it go
  ASSERT_EQ(exceptions.reports.size(), 1u);
  EXPECT_EQ(exceptions.reports[0].message, "Future exception was never retrieved");
}

TEST(ExecutorFault, WhatAJobCapturedDiesOnTheLoopsThread) {
  EventLoop loop;
  auto died_on = std::make_shared<std::thread::id>();
  std::thread::id ran_on;
  loop.run_until_complete(loop.run_in_executor(nullptr, [witness = DeathWitness(died_on), &ran_on] {
    ran_on = std::this_thread::get_id();
  }));
  EXPECT_NE(ran_on, std::this_thread::get_id());
  EXPECT_EQ(*died_on, std::this_thread::get_id());
}

TEST(ExecutorFault, CloseDoesNotWaitForAJobStillRunning) {
  auto gate = std::make_shared<Gate>();
  auto done_side_died_on = std::make_shared<std::thread::id>();
  Future<int> pending;
  {
    EventLoop loop;
    pending = loop.run_in_executor(nullptr, [gate] {
      gate->pass();
      return 1;
    });
    // The Future's callbacks are the loop's: one of them holds a witness.
    pending.add_done_callback([witness = DeathWitness(done_side_died_on)] {});
    gate->wait_entered();
    loop.close();  // would hang here if it waited for the job
    EXPECT_FALSE(pending.done());
  }
  // Nothing of the closed loop is left for the worker to touch: its late
  // answer finds the loop gone and is dropped.
  gate->release();
  EXPECT_FALSE(pending.done());
  pending = Future<int>();
  EXPECT_EQ(*done_side_died_on, std::this_thread::get_id());
}

TEST(ExecutorFault, LookupsStuckInTheDefaultPoolDoNotHoldUpClose) {
  auto stuck = std::make_shared<StuckLookup>();
  {
    EventLoop loop;
    detail::LoopAccess::internals(loop).resolver.set_lookup_for_testing(stuck->lookup());
    Future<std::vector<AddressInfo>> lookup = loop.getaddrinfo("stuck.test", "80");
    Future<int> job = loop.run_in_executor(nullptr, [] { return 3; });
    // A lookup that never answers does not hold up other jobs of the pool.
    EXPECT_EQ(loop.run_until_complete(job), 3);
    stuck->wait_until_asked(1);
    loop.close();
    EXPECT_FALSE(lookup.done());
  }
  stuck->release();
}

}  // namespace
}  // namespace tulip::testing
