// Timers: deadline order, FIFO among equal deadlines, cancellation, compaction.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tulip/event_loop.hpp"

namespace tulip {
namespace {

// Runs the loop until every timer scheduled so far has fired or been cancelled.
void run_briefly(EventLoop& loop, double horizon_seconds) {
  loop.call_later(horizon_seconds, [&loop] { loop.stop(); });
  loop.run_forever();
}

TEST(Timers, FireInDeadlineOrder) {
  EventLoop loop;
  std::vector<int> order;
  double now = loop.time();
  // Deadlines in the past are due at once, so this needs no waiting at all.
  loop.call_at(now - 3, [&] { order.push_back(1); });
  loop.call_at(now - 1, [&] { order.push_back(3); });
  loop.call_at(now - 2, [&] { order.push_back(2); });
  loop.call_later(-5.0, [&] { order.push_back(0); });  // negative delays are allowed
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
}

TEST(Timers, EqualDeadlinesKeepSchedulingOrder) {
  EventLoop loop;
  std::vector<int> order;
  double when = loop.time() - 1;
  for (int i = 0; i < 50; ++i) loop.call_at(when, [&order, i] { order.push_back(i); });
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  ASSERT_EQ(order.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(order[i], i);
}

TEST(Timers, WhenReportsTheDeadline) {
  EventLoop loop;
  double before = loop.time();
  TimerHandle handle = loop.call_later(2.5, [] {});
  EXPECT_GE(handle.when(), before + 2.5);
  EXPECT_LE(handle.when(), loop.time() + 2.5);
  TimerHandle at = loop.call_at(1234.5, [] {});
  EXPECT_DOUBLE_EQ(at.when(), 1234.5);
}

TEST(Timers, DoNotFireBeforeTheirDeadline) {
  EventLoop loop;
  double fired_at = 0;
  TimerHandle handle = loop.call_later(0.02, [&] {
    fired_at = loop.time();
    loop.stop();
  });
  loop.run_forever();
  EXPECT_GE(fired_at, handle.when());
}

TEST(Timers, ChronoDelay) {
  EventLoop loop;
  bool fired = false;
  loop.call_later(std::chrono::milliseconds(1), [&] {
    fired = true;
    loop.stop();
  });
  loop.run_forever();
  EXPECT_TRUE(fired);
}

TEST(Timers, CancelledTimerNeverFires) {
  EventLoop loop;
  bool fired = false;
  TimerHandle handle = loop.call_at(loop.time() - 1, [&] { fired = true; });
  handle.cancel();
  EXPECT_TRUE(handle.cancelled());
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  EXPECT_FALSE(fired);
  EXPECT_EQ(loop.scheduled_timer_count(), 0u);
}

TEST(Timers, CancelledHeadIsDroppedLazily) {
  EventLoop loop;
  TimerHandle first = loop.call_later(100, [] {});
  TimerHandle second = loop.call_later(200, [] {});
  first.cancel();
  EXPECT_EQ(loop.scheduled_timer_count(), 2u);  // nothing is removed at cancel time
  loop.stop();
  loop.run_forever();
  EXPECT_EQ(loop.scheduled_timer_count(), 1u);  // the cancelled head went at the next iteration
}

TEST(Timers, HeapIsCompactedWhenCancelledTimersDominate) {
  EventLoop loop;
  std::vector<TimerHandle> handles;
  for (int i = 0; i < 1000; ++i) handles.push_back(loop.call_later(100 + i, [] {}));
  // Cancel 600 from the middle: none is at the head or at the heap's end, so
  // only compaction can remove them.
  for (int i = 200; i < 800; ++i) handles[i].cancel();
  EXPECT_EQ(loop.scheduled_timer_count(), 1000u);
  loop.stop();
  loop.run_forever();
  EXPECT_EQ(loop.scheduled_timer_count(), 400u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(handles[i].pending(), i < 200 || i >= 800) << i;
}

TEST(Timers, CancellingTheLastScheduledTimerRemovesItAtOnce) {
  EventLoop loop;
  std::vector<int> fired;
  TimerHandle first = loop.call_at(loop.time() - 2, [&] { fired.push_back(1); });
  TimerHandle second = loop.call_at(loop.time() - 1, [&] { fired.push_back(2); });
  TimerHandle last = loop.call_later(50, [&] { fired.push_back(3); });
  last.cancel();  // at the heap's end: gone now, not left for a sweep
  EXPECT_EQ(loop.scheduled_timer_count(), 2u);
  EXPECT_TRUE(last.cancelled());
  last.cancel();  // idempotent
  EXPECT_EQ(loop.scheduled_timer_count(), 2u);
  loop.stop();
  loop.run_forever();
  EXPECT_EQ(fired, (std::vector<int>{1, 2}));
  EXPECT_EQ(loop.scheduled_timer_count(), 0u);
}

TEST(Timers, ScheduleCancelChurnKeepsTheHeapBounded) {
  EventLoop loop;
  std::size_t largest = 0;
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < 500; ++i) loop.call_later(60.0 + i, [] {}).cancel();
    largest = std::max(largest, loop.scheduled_timer_count());
    loop.stop();
    loop.run_forever();
  }
  EXPECT_EQ(loop.scheduled_timer_count(), 0u);
  EXPECT_LE(largest, 500u);
}

TEST(Timers, CancelAfterFiringDoesNotDisturbTheCount) {
  EventLoop loop;
  TimerHandle handle = loop.call_at(loop.time() - 1, [] {});
  run_briefly(loop, 0.0);
  handle.cancel();
  EXPECT_FALSE(handle.cancelled());
  for (int i = 0; i < 150; ++i) loop.call_later(100, [] {});
  loop.stop();
  loop.run_forever();
  EXPECT_EQ(loop.scheduled_timer_count(), 150u);
}

TEST(Timers, CancelWhileDueInTheSameBatch) {
  EventLoop loop;
  bool second_ran = false;
  double when = loop.time() - 1;
  TimerHandle second;
  loop.call_at(when, [&] { second.cancel(); });
  second = loop.call_at(when, [&] { second_ran = true; });
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  EXPECT_FALSE(second_ran);
  EXPECT_TRUE(second.cancelled());
}

TEST(Timers, NanDelayIsRejected) {
  EventLoop loop;
  EXPECT_THROW(loop.call_later(std::nan(""), [] {}), std::invalid_argument);
}

}  // namespace
}  // namespace tulip
