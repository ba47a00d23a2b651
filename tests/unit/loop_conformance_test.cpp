// The loop where a first review found it unlike asyncio or unsafe: empty
// callables, another loop's Future, the order of one iteration, huge chrono
// delays, a callable whose copy throws, Futures dropped on other threads, and
// signal handlers installed from loops on different threads.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/loopback.hpp"
#include "tulip/tulip.hpp"

namespace tulip::testing {
namespace {

// ---- Empty callables are refused where they are scheduled ----------------------------------

TEST(EmptyCallback, EverySchedulingMethodRefusesItAndTheLoopIsUnharmed) {
  EventLoop loop;
  std::function<void()> empty_function;
  void (*null_pointer)() = nullptr;
  EXPECT_THROW(loop.call_soon(Callback{}), std::invalid_argument);
  EXPECT_THROW(loop.call_soon(empty_function), std::invalid_argument);
  EXPECT_THROW(loop.call_soon(null_pointer), std::invalid_argument);
  EXPECT_THROW(loop.call_later(0.01, nullptr), std::invalid_argument);
  EXPECT_THROW(loop.call_later(std::chrono::milliseconds(1), empty_function),
               std::invalid_argument);
  EXPECT_THROW(loop.call_at(loop.time(), nullptr), std::invalid_argument);
  EXPECT_THROW(loop.call_soon_threadsafe({}), std::invalid_argument);
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  EXPECT_THROW(loop.add_reader(fds[0], nullptr), std::invalid_argument);
  EXPECT_THROW(loop.add_writer(fds[0], empty_function), std::invalid_argument);
  EXPECT_FALSE(loop.remove_reader(fds[0])) << "a refused reader left a watcher behind";
  EXPECT_THROW(loop.add_signal_handler(SIGUSR2, nullptr), std::invalid_argument);
  EXPECT_FALSE(loop.remove_signal_handler(SIGUSR2));
  Future<int> future = loop.create_future<int>();
  EXPECT_THROW(future.add_done_callback(empty_function), std::invalid_argument);
  EXPECT_THROW(future.add_done_callback(std::function<void(Future<int>&)>{}),
               std::invalid_argument);
  ::close(fds[0]);
  ::close(fds[1]);

  EXPECT_EQ(loop.ready_count(), 0u);
  EXPECT_EQ(loop.scheduled_timer_count(), 0u);
  // Nothing was scheduled, so nothing crashes later; the loop still runs.
  int ran = 0;
  loop.call_later(0.001, [&] { ++ran; });
  loop.call_soon([&] { ++ran; });
  future.add_done_callback([&](Future<int>& done) { ran += done.result(); });
  future.set_result(10);
  ASSERT_TRUE(run_until(loop, [&] { return ran == 12; }));
}

// ---- run_until_complete of another loop's Future --------------------------------------------

TEST(RunUntilComplete, AnotherLoopsFutureIsRefusedAtOnce) {
  EventLoop loop;
  EventLoop other;
  Future<int> foreign = other.create_future<int>();
  EXPECT_THROW(loop.run_until_complete(foreign), std::invalid_argument);
  EXPECT_THROW(loop.run_until_complete(Future<int>()), std::invalid_argument);
  EXPECT_FALSE(loop.is_running());
  // Both loops are unharmed.
  other.call_soon([&] { foreign.set_result(7); });
  EXPECT_EQ(other.run_until_complete(foreign), 7);
  Future<void> own = loop.create_future();
  loop.call_soon([&] { own.set_result(); });
  loop.run_until_complete(own);
}

// ---- The order of one iteration ---------------------------------------------------------------

// asyncio's _run_once: the callbacks already ready run first, then the I/O
// handlers of what the poll saw, then the timers that were due; what any of
// them schedules runs in the next iteration.
TEST(IterationOrder, ReadyCallbacksRunBeforeTheIoOfTheSameIterationThenDueTimers) {
  EventLoop loop;
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  std::vector<std::string> order;
  loop.add_reader(fds[0], [&] {
    char byte;
    if (::read(fds[0], &byte, 1) == 1) order.push_back("reader");
    loop.call_soon([&] { order.push_back("scheduled by reader"); });
  });
  ASSERT_EQ(::write(fds[1], "x", 1), 1);  // readable before the iteration starts
  loop.call_at(loop.time() - 1, [&] { order.push_back("timer"); });
  loop.call_soon([&] {
    order.push_back("ready");
    loop.call_soon([&] { order.push_back("scheduled by ready"); });
  });
  // One iteration: the loop polls (callbacks are ready, so every
  // kPollIntervalWhenBusy iterations at least; stop() forces it now).
  loop.stop();
  loop.run_forever();
  EXPECT_EQ(order, (std::vector<std::string>{"ready", "reader", "timer"}));
  loop.stop();
  loop.run_forever();
  EXPECT_EQ(order, (std::vector<std::string>{"ready", "reader", "timer", "scheduled by ready",
                                             "scheduled by reader"}));
  loop.remove_reader(fds[0]);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(IterationOrder, PauseReadingScheduledBeforeTheBytesArriveWinsOverDataReceived) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  peer.send_all("early");
  // The bytes are in the socket before the iteration; the pause was scheduled
  // before it too, so it runs first and data_received does not follow.
  Transport& transport = *connection.transport;
  loop.call_soon([&] { transport.pause_reading(); });
  loop.stop();
  loop.run_forever();
  EXPECT_EQ(protocol->chunks, 0);
  EXPECT_FALSE(transport.is_reading());
  transport.resume_reading();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->received == "early"; }));
}

// ---- Huge delays --------------------------------------------------------------------------------

TEST(TimerLimits, HugeChronoDelaysClampInsteadOfOverflowing) {
  EventLoop loop;
  bool fired = false;
  TimerHandle forever = loop.call_later(std::chrono::seconds::max(), [&] { fired = true; });
  TimerHandle hours = loop.call_later(std::chrono::hours::max(), [&] { fired = true; });
  TimerHandle long_ago = loop.call_later(std::chrono::seconds::min(), [] {});
  TimerHandle as_double = loop.call_later(1e300, [&] { fired = true; });
  EXPECT_GT(forever.when(), 1e9) << "wrapped into the past";
  EXPECT_GT(hours.when(), 1e9);
  EXPECT_DOUBLE_EQ(forever.when(), as_double.when());
  EXPECT_LT(long_ago.when(), 0.0);
  EXPECT_THROW(loop.call_later(std::chrono::duration<double>(std::nan("")), [] {}),
               std::invalid_argument);
  run_until(loop, [&] { return !long_ago.pending(); });
  EXPECT_FALSE(fired);
  EXPECT_TRUE(forever.pending());
  forever.cancel();
  hours.cancel();
  as_double.cancel();
}

// ---- A callable whose copy throws ------------------------------------------------------------

struct ThrowingCopy {
  ThrowingCopy() = default;
  ThrowingCopy(const ThrowingCopy&) { throw std::runtime_error("copy failed"); }
  ThrowingCopy(ThrowingCopy&&) noexcept = default;
  void operator()() const {}
  std::string padding = std::string(100, 'x');  // stored on the heap, like most captures
};

TEST(CallSoon, ACallableWhoseCopyThrowsSchedulesNothingAndLeaksNothing) {
  EventLoop loop;
  ThrowingCopy callable;
  EXPECT_THROW(loop.call_soon(callable), std::runtime_error);
  EXPECT_EQ(loop.ready_count(), 0u);
  // The node went back to the pool (LeakSanitizer would report it otherwise)
  // and the loop schedules and runs normally.
  bool ran = false;
  loop.call_soon([&] { ran = true; });
  ASSERT_TRUE(run_until(loop, [&] { return ran; }));
}

// ---- Futures dropped on other threads ----------------------------------------------------------

TEST(FutureAcrossThreads, TheLastCopyDroppedElsewhereIsReleasedAndReportedOnTheLoopThread) {
  EventLoop loop;
  std::vector<std::thread::id> reported_on;
  loop.set_exception_handler([&](EventLoop&, const ExceptionContext& context) {
    EXPECT_EQ(context.message, "Future exception was never retrieved");
    reported_on.push_back(std::this_thread::get_id());
  });
  std::thread::id released_on;
  struct Marker {
    std::thread::id* where;
    ~Marker() {
      if (where != nullptr) *where = std::this_thread::get_id();
    }
    Marker(std::thread::id* w) : where(w) {}
    Marker(Marker&& other) noexcept : where(std::exchange(other.where, nullptr)) {}
  };
  {
    Future<int> failed = loop.create_future<int>();
    failed.set_exception(std::make_exception_ptr(std::runtime_error("nobody looked")));
    Future<int> pending = loop.create_future<int>();
    // A done callback owning something that must die on the loop's thread.
    pending.add_done_callback([marker = Marker(&released_on)](Future<int>&) {});
    std::thread dropper([failed = std::move(failed), pending = std::move(pending)]() mutable {
      Future<int> last_failed = std::move(failed);
      Future<int> last_pending = std::move(pending);
      // Both last copies go away here, on this thread.
    });
    dropper.join();
  }
  ASSERT_TRUE(
      run_until(loop, [&] { return reported_on.size() == 1 && released_on != std::thread::id(); }));
  EXPECT_EQ(reported_on[0], std::this_thread::get_id());
  EXPECT_EQ(released_on, std::this_thread::get_id());
}

// ---- Signal handlers from loops on different threads -------------------------------------------

TEST(SignalOwnership, LoopsOnTwoThreadsRaceForSignalsAndExactlyOneWins) {
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> winners{0};
    std::atomic<int> refused{0};
    auto contend = [&] {
      EventLoop loop;
      try {
        loop.add_signal_handler(SIGUSR2, [] {});
        ++winners;
      } catch (const RuntimeError&) {
        ++refused;
      }
      // Hold on until both have tried, then give it back.
      while (winners + refused < 2) std::this_thread::yield();
      loop.remove_signal_handler(SIGUSR2);
    };
    std::thread a(contend);
    std::thread b(contend);
    a.join();
    b.join();
    EXPECT_EQ(winners, 1);
    EXPECT_EQ(refused, 1);
  }
}

}  // namespace
}  // namespace tulip::testing
