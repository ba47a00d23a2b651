// WaitHooks: run around every poll that may block, never around one that does not.
#include "tulip/wait_hooks.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "tulip/event_loop.hpp"

namespace tulip {
namespace {

// Records the order of hook calls and callbacks.
struct RecordingHooks final : WaitHooks {
  std::vector<std::string>* log;
  explicit RecordingHooks(std::vector<std::string>* target) : log(target) {}
  void before_wait() noexcept override { log->push_back("before"); }
  void after_wait() noexcept override { log->push_back("after"); }
};

TEST(WaitHooks, SurroundABlockingWaitAndRunBeforeTheTimer) {
  EventLoop loop;
  std::vector<std::string> log;
  RecordingHooks hooks(&log);
  loop.set_wait_hooks(&hooks);
  EXPECT_EQ(loop.wait_hooks(), &hooks);
  // Far enough ahead that the first poll certainly has time left to wait.
  loop.call_later(0.2, [&] {
    log.push_back("timer");
    loop.stop();
  });
  loop.run_forever();
  // The wait for the timer may end early (a spurious wake-up is allowed), but
  // every wait is announced and closed before the timer runs.
  ASSERT_GE(log.size(), 3u);
  EXPECT_EQ(log.back(), "timer");
  for (std::size_t i = 0; i + 1 < log.size(); i += 2) {
    EXPECT_EQ(log[i], "before");
    EXPECT_EQ(log[i + 1], "after");
  }
}

TEST(WaitHooks, NotCalledWhenCallbacksAreReady) {
  EventLoop loop;
  std::vector<std::string> log;
  RecordingHooks hooks(&log);
  loop.set_wait_hooks(&hooks);
  // Ready callbacks make the loop poll without blocking: no hook runs.
  int remaining = 1000;
  auto step = [&](auto&& self) -> void {
    if (--remaining == 0) {
      loop.stop();
    } else {
      loop.call_soon([&self] { self(self); });
    }
  };
  loop.call_soon([&] { step(step); });
  loop.run_forever();
  EXPECT_TRUE(log.empty());
}

// The waker starts from inside the first before_wait, so the loop is certainly
// about to block (or blocking) when another thread wakes it.
struct WakingHooks final : WaitHooks {
  EventLoop* loop;
  std::thread waker;
  int waits = 0;
  int wakes = 0;
  void before_wait() noexcept override {
    if (waits++ == 0) {
      waker = std::thread([this] { loop->call_soon_threadsafe([this] { loop->stop(); }); });
    }
  }
  void after_wait() noexcept override { ++wakes; }
};

TEST(WaitHooks, AfterWaitRunsWhenAnotherThreadWakesTheLoop) {
  EventLoop loop;
  WakingHooks hooks;
  hooks.loop = &loop;
  loop.set_wait_hooks(&hooks);
  loop.run_forever();  // no timer: only the other thread can end the wait
  hooks.waker.join();
  EXPECT_GE(hooks.waits, 1);
  EXPECT_EQ(hooks.wakes, hooks.waits);
}

TEST(WaitHooks, RemovedHooksAreNotCalled) {
  EventLoop loop;
  std::vector<std::string> log;
  RecordingHooks hooks(&log);
  loop.set_wait_hooks(&hooks);
  loop.set_wait_hooks(nullptr);
  loop.call_later(0.001, [&] { loop.stop(); });
  loop.run_forever();
  EXPECT_TRUE(log.empty());
}

}  // namespace
}  // namespace tulip
