// call_soon_threadsafe: the one cross-thread entry point (run these under TSan too).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "tulip/event_loop.hpp"
#include "tulip/future.hpp"

namespace tulip {
namespace {

TEST(Threadsafe, WakesALoopSleepingWithoutTimers) {
  EventLoop loop;
  Future<int> future = loop.create_future<int>();
  std::thread worker;
  // The loop has no timers and nothing ready once this callback ran, so it
  // blocks in poll with no timeout; only the wake-up can end the wait.
  loop.call_soon([&] {
    worker = std::thread([&loop, future]() mutable {
      loop.call_soon_threadsafe([future]() mutable { future.set_result(17); });
    });
  });
  EXPECT_EQ(loop.run_until_complete(future), 17);
  worker.join();
}

TEST(Threadsafe, ManyThreadsManyCallbacksAllRunInPerThreadOrder) {
  EventLoop loop;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5000;
  std::vector<std::vector<int>> seen(kThreads);
  int total = 0;
  Future<> all_done = loop.create_future();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        loop.call_soon_threadsafe([&, t, i]() mutable {
          seen[t].push_back(i);
          if (++total == kThreads * kPerThread) all_done.set_result();
        });
      }
    });
  }
  loop.run_until_complete(all_done);
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(seen[t].size(), static_cast<std::size_t>(kPerThread));
    for (int i = 0; i < kPerThread; ++i) ASSERT_EQ(seen[t][i], i);
  }
}

TEST(Threadsafe, RunUntilCompleteWithFutureCompletedFromAnotherThread) {
  EventLoop loop;
  Future<std::string> future = loop.create_future<std::string>();
  std::atomic<bool> go{false};
  std::thread worker([&loop, &go, future]() mutable {
    while (!go.load()) std::this_thread::yield();
    loop.call_soon_threadsafe([future]() mutable { future.set_result("from a thread"); });
  });
  loop.call_soon([&] { go.store(true); });
  EXPECT_EQ(loop.run_until_complete(future), "from a thread");
  worker.join();
}

TEST(Threadsafe, CallbacksScheduledBeforeRunAreKept) {
  EventLoop loop;
  int ran = 0;
  std::thread([&] { loop.call_soon_threadsafe([&] { ++ran; }); }).join();
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  // The threadsafe callback may run in the same iteration or the next one.
  if (ran == 0) {
    loop.stop();
    loop.run_forever();
  }
  EXPECT_EQ(ran, 1);
}

}  // namespace
}  // namespace tulip
