// The loop core: callback order, batching, stop, close, exception handling.
#include "tulip/event_loop.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "tulip/future.hpp"
#include "tulip/log.hpp"

namespace tulip {
namespace {

TEST(EventLoop, CallSoonRunsInFifoOrder) {
  EventLoop loop;
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) loop.call_soon([&order, i] { order.push_back(i); });
  loop.call_soon([&loop] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(EventLoop, CallSoonNeverRunsInline) {
  EventLoop loop;
  bool ran = false;
  loop.call_soon([&] { ran = true; });
  EXPECT_FALSE(ran);
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  EXPECT_TRUE(ran);
}

TEST(EventLoop, CallbacksScheduledDuringABatchRunInTheNextIteration) {
  EventLoop loop;
  std::vector<std::string> log;
  loop.call_soon([&] {
    log.push_back("a");
    loop.call_soon([&] { log.push_back("c (next iteration)"); });
  });
  loop.call_soon([&] {
    log.push_back("b");
    // stop() lets the current batch finish; "c" belongs to the next batch.
    loop.stop();
  });
  loop.run_forever();
  EXPECT_EQ(log, (std::vector<std::string>{"a", "b"}));
  // The callback scheduled during the batch is still pending and runs next time.
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  EXPECT_EQ(log.back(), "c (next iteration)");
}

TEST(EventLoop, StopBeforeRunForeverRunsOneIteration) {
  EventLoop loop;
  int ran = 0;
  loop.call_soon([&] {
    ++ran;
    loop.call_soon([&] { ++ran; });
  });
  loop.stop();
  loop.run_forever();
  EXPECT_EQ(ran, 1);
  EXPECT_FALSE(loop.is_running());
}

TEST(EventLoop, CancelledHandleNeverRuns) {
  EventLoop loop;
  bool ran = false;
  Handle handle = loop.call_soon([&] { ran = true; });
  EXPECT_TRUE(handle.pending());
  handle.cancel();
  EXPECT_TRUE(handle.cancelled());
  loop.stop();
  loop.run_forever();
  EXPECT_FALSE(ran);
  handle.cancel();  // cancelling twice is harmless
  EXPECT_TRUE(handle.cancelled());
}

TEST(EventLoop, CancelReleasesCapturesAtOnce) {
  EventLoop loop;
  auto resource = std::make_shared<int>(1);
  Handle handle = loop.call_soon([resource] {});
  EXPECT_EQ(resource.use_count(), 2);
  handle.cancel();
  EXPECT_EQ(resource.use_count(), 1);
}

TEST(EventLoop, RunningReleasesCapturesWhileAHandleIsKept) {
  // An object that keeps its own timer's handle must not be kept alive by the
  // capture after the timer fired.
  EventLoop loop;
  auto resource = std::make_shared<int>(1);
  TimerHandle handle = loop.call_later(0, [resource] {});
  Handle soon = loop.call_soon([resource] {});
  EXPECT_EQ(resource.use_count(), 3);
  // A zero delay is due at once; a few iterations at most (bounded, not timed).
  for (int i = 0; i < 100 && (handle.pending() || soon.pending()); ++i) {
    loop.stop();
    loop.run_forever();
  }
  ASSERT_FALSE(handle.pending());
  ASSERT_FALSE(soon.pending());
  EXPECT_EQ(resource.use_count(), 1);
}

TEST(EventLoop, CancelAfterRunHasNoEffect) {
  EventLoop loop;
  int ran = 0;
  Handle handle = loop.call_soon([&] { ++ran; });
  loop.stop();
  loop.run_forever();
  handle.cancel();
  EXPECT_EQ(ran, 1);
  EXPECT_FALSE(handle.cancelled());
  EXPECT_FALSE(handle.pending());
}

TEST(EventLoop, HandleOutlivesLoop) {
  Handle handle;
  {
    EventLoop loop;
    handle = loop.call_soon([] {});
  }
  // The loop is gone: the handle reports a callback that will never run and
  // cancelling it is a harmless no-op.
  EXPECT_TRUE(handle.cancelled());
  handle.cancel();
}

TEST(EventLoop, RunningTwiceIsAnError) {
  EventLoop loop;
  bool threw = false;
  loop.call_soon([&] {
    try {
      loop.run_forever();
    } catch (const RuntimeError&) {
      threw = true;
    }
    loop.stop();
  });
  loop.run_forever();
  EXPECT_TRUE(threw);
}

TEST(EventLoop, ClosedLoopRefusesWork) {
  EventLoop loop;
  EXPECT_FALSE(loop.is_closed());
  loop.close();
  loop.close();  // idempotent
  EXPECT_TRUE(loop.is_closed());
  EXPECT_THROW(loop.call_soon([] {}), RuntimeError);
  EXPECT_THROW(loop.call_later(1.0, [] {}), RuntimeError);
  EXPECT_THROW(loop.run_forever(), RuntimeError);
  EXPECT_THROW(loop.call_soon_threadsafe([] {}), RuntimeError);
}

TEST(EventLoop, CloseWhileRunningIsAnError) {
  EventLoop loop;
  bool threw = false;
  loop.call_soon([&] {
    try {
      loop.close();
    } catch (const RuntimeError&) {
      threw = true;
    }
    loop.stop();
  });
  loop.run_forever();
  EXPECT_TRUE(threw);
  EXPECT_FALSE(loop.is_closed());
}

TEST(EventLoop, CloseDropsPendingCallbacks) {
  auto resource = std::make_shared<int>(0);
  EventLoop loop;
  Handle soon = loop.call_soon([resource] {});
  TimerHandle later = loop.call_later(100.0, [resource] {});
  loop.close();
  EXPECT_EQ(resource.use_count(), 1);
  EXPECT_TRUE(soon.cancelled());
  EXPECT_TRUE(later.cancelled());
}

TEST(EventLoop, ExceptionInCallbackGoesToHandlerAndLoopContinues) {
  EventLoop loop;
  std::vector<std::string> messages;
  loop.set_exception_handler(
      [&](EventLoop&, const ExceptionContext& context) { messages.push_back(describe(context)); });
  bool after = false;
  loop.call_soon([] { throw std::runtime_error("boom"); });
  loop.call_soon([&] { after = true; });
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  EXPECT_TRUE(after);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0], "Exception in callback: boom");
}

TEST(EventLoop, DefaultExceptionHandlerLogsOneLine) {
  std::vector<std::string> lines;
  LogSink previous = set_log_sink([&](LogLevel level, std::string_view text) {
    EXPECT_EQ(level, LogLevel::kError);
    lines.emplace_back(text);
  });
  {
    EventLoop loop;
    loop.call_soon([] { throw std::logic_error("bad"); });
    loop.stop();
    loop.run_forever();
  }
  set_log_sink(std::move(previous));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "Exception in callback: bad");
}

TEST(EventLoop, ThrowingExceptionHandlerFallsBackToDefault) {
  std::vector<std::string> lines;
  LogSink previous =
      set_log_sink([&](LogLevel, std::string_view text) { lines.emplace_back(text); });
  {
    EventLoop loop;
    loop.set_exception_handler(
        [](EventLoop&, const ExceptionContext&) { throw std::runtime_error("handler broke"); });
    loop.call_soon([] { throw std::runtime_error("original"); });
    loop.stop();
    loop.run_forever();
  }
  set_log_sink(std::move(previous));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "Unhandled error in exception handler: handler broke");
  EXPECT_EQ(lines[1], "Exception in callback: original");
}

TEST(EventLoop, NonStdExceptionIsReported) {
  EventLoop loop;
  std::string seen;
  loop.set_exception_handler(
      [&](EventLoop&, const ExceptionContext& context) { seen = describe(context); });
  loop.call_soon([] { throw 42; });
  loop.stop();
  loop.run_forever();
  EXPECT_EQ(seen, "Exception in callback: unknown exception");
}

TEST(EventLoop, RunUntilCompleteReturnsResultSetByCallback) {
  EventLoop loop;
  Future<std::string> future = loop.create_future<std::string>();
  loop.call_soon([future]() mutable { future.set_result("done"); });
  EXPECT_EQ(loop.run_until_complete(future), "done");
  EXPECT_FALSE(loop.is_running());
}

TEST(EventLoop, RunUntilCompleteRethrows) {
  EventLoop loop;
  Future<int> future = loop.create_future<int>();
  loop.call_soon([future]() mutable {
    future.set_exception(std::make_exception_ptr(std::out_of_range("nope")));
  });
  EXPECT_THROW(loop.run_until_complete(future), std::out_of_range);
}

TEST(EventLoop, RunUntilCompleteFailsIfStoppedEarly) {
  EventLoop loop;
  Future<int> future = loop.create_future<int>();
  loop.call_soon([&] { loop.stop(); });
  EXPECT_THROW(loop.run_until_complete(future), RuntimeError);
  // The loop is usable again afterwards.
  loop.call_soon([future]() mutable { future.set_result(7); });
  EXPECT_EQ(loop.run_until_complete(future), 7);
}

TEST(EventLoop, RunUntilCompleteOnDoneFuture) {
  EventLoop loop;
  Future<int> future = loop.create_future<int>();
  future.set_result(3);
  EXPECT_EQ(loop.run_until_complete(future), 3);
}

TEST(EventLoop, SignalHandlerRunsOnTheLoop) {
  EventLoop loop;
  int delivered = 0;
  loop.add_signal_handler(SIGUSR1, [&] {
    ++delivered;
    loop.stop();
  });
  loop.call_soon([] { ::raise(SIGUSR1); });
  loop.run_forever();
  EXPECT_EQ(delivered, 1);
  EXPECT_TRUE(loop.remove_signal_handler(SIGUSR1));
  EXPECT_FALSE(loop.remove_signal_handler(SIGUSR1));
  EXPECT_THROW(loop.add_signal_handler(SIGKILL, [] {}), std::invalid_argument);
}

}  // namespace
}  // namespace tulip
