// Future<T>: the state machine, done callbacks, and unretrieved exceptions.
#include "tulip/future.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tulip/event_loop.hpp"

namespace tulip {
namespace {

void run_one_iteration(EventLoop& loop) {
  loop.stop();
  loop.run_forever();
}

TEST(Future, StartsPending) {
  EventLoop loop;
  Future<int> future = loop.create_future<int>();
  EXPECT_TRUE(future.valid());
  EXPECT_FALSE(future.done());
  EXPECT_FALSE(future.cancelled());
  EXPECT_THROW(future.result(), InvalidStateError);
  EXPECT_THROW(future.exception(), InvalidStateError);
  EXPECT_EQ(&future.get_loop(), &loop);
}

TEST(Future, ResultAfterSetResult) {
  EventLoop loop;
  Future<std::string> future(loop);
  future.set_result("value");
  EXPECT_TRUE(future.done());
  EXPECT_EQ(future.result(), "value");
  EXPECT_EQ(future.exception(), nullptr);
}

TEST(Future, SettingTwiceIsInvalidState) {
  EventLoop loop;
  Future<int> future(loop);
  future.set_result(1);
  EXPECT_THROW(future.set_result(2), InvalidStateError);
  EXPECT_THROW(future.set_exception(std::make_exception_ptr(std::runtime_error("x"))),
               InvalidStateError);
  EXPECT_FALSE(future.cancel());
  EXPECT_EQ(future.result(), 1);
}

TEST(Future, SetExceptionRethrowsFromResult) {
  EventLoop loop;
  Future<int> future(loop);
  future.set_exception(std::make_exception_ptr(std::runtime_error("broken")));
  EXPECT_TRUE(future.done());
  EXPECT_NE(future.exception(), nullptr);
  try {
    future.result();
    FAIL() << "result() should have thrown";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "broken");
  }
}

TEST(Future, NullExceptionIsRejected) {
  EventLoop loop;
  Future<int> future(loop);
  EXPECT_THROW(future.set_exception(nullptr), std::invalid_argument);
  EXPECT_FALSE(future.done());
}

TEST(Future, Cancel) {
  EventLoop loop;
  Future<void> future(loop);
  EXPECT_TRUE(future.cancel("stop it"));
  EXPECT_TRUE(future.cancelled());
  EXPECT_TRUE(future.done());
  EXPECT_FALSE(future.cancel());
  try {
    future.result();
    FAIL() << "result() should have thrown";
  } catch (const CancelledError& e) {
    EXPECT_STREQ(e.what(), "stop it");
  }
  EXPECT_THROW(future.exception(), CancelledError);
  EXPECT_THROW(future.set_result(), InvalidStateError);
}

TEST(Future, VoidFuture) {
  EventLoop loop;
  Future<> future = loop.create_future();
  future.set_result();
  EXPECT_NO_THROW(future.result());
}

TEST(Future, CopiesShareState) {
  EventLoop loop;
  Future<int> a(loop);
  Future<int> b = a;
  a.set_result(5);
  EXPECT_TRUE(b.done());
  EXPECT_EQ(b.result(), 5);
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a == Future<int>(loop));
}

TEST(Future, DoneCallbacksAreScheduledNotInline) {
  EventLoop loop;
  Future<int> future(loop);
  std::vector<int> seen;
  future.add_done_callback([&](Future<int>& f) { seen.push_back(f.result()); });
  future.add_done_callback([&](Future<int>& f) { seen.push_back(f.result() * 10); });
  future.set_result(4);
  EXPECT_TRUE(seen.empty());  // never run inside set_result()
  run_one_iteration(loop);
  EXPECT_EQ(seen, (std::vector<int>{4, 40}));
}

TEST(Future, CallbackAddedAfterCompletionIsScheduled) {
  EventLoop loop;
  Future<int> future(loop);
  future.set_result(9);
  int seen = 0;
  future.add_done_callback([&](Future<int>& f) { seen = f.result(); });
  EXPECT_EQ(seen, 0);
  run_one_iteration(loop);
  EXPECT_EQ(seen, 9);
}

TEST(Future, NullaryCallbacksAreAccepted) {
  EventLoop loop;
  Future<> future(loop);
  bool called = false;
  future.add_done_callback([&] { called = true; });
  future.cancel();
  run_one_iteration(loop);
  EXPECT_TRUE(called);
}

TEST(Future, RemoveDoneCallback) {
  EventLoop loop;
  Future<int> future(loop);
  int calls = 0;
  CallbackId keep = future.add_done_callback([&] { calls += 1; });
  CallbackId drop = future.add_done_callback([&] { calls += 100; });
  EXPECT_EQ(future.remove_done_callback(drop), 1u);
  EXPECT_EQ(future.remove_done_callback(drop), 0u);
  (void)keep;
  future.set_result(0);
  run_one_iteration(loop);
  EXPECT_EQ(calls, 1);
}

TEST(Future, CallbacksRunInTheOrderAddedAcrossRemovalsAndManyCallbacks) {
  // The first two callbacks are kept inside the future's state and the rest
  // elsewhere: removing some, before and after that boundary, and adding more
  // keeps the order in which they were added.
  EventLoop loop;
  Future<int> future(loop);
  std::string order;
  std::vector<CallbackId> ids;
  for (char name : std::string("abcdef")) {
    ids.push_back(future.add_done_callback([&order, name] { order += name; }));
  }
  EXPECT_EQ(future.remove_done_callback(ids[0]), 1u);
  EXPECT_EQ(future.remove_done_callback(ids[3]), 1u);
  EXPECT_EQ(future.remove_done_callback(ids[0]), 0u);
  future.add_done_callback([&order] { order += 'g'; });
  future.set_result(1);
  run_one_iteration(loop);
  EXPECT_EQ(order, "bcefg");
  // A callback added once the future is done is scheduled on its own.
  future.add_done_callback([&order] { order += 'h'; });
  run_one_iteration(loop);
  EXPECT_EQ(order, "bcefgh");
}

TEST(Future, ACallbackRemovedBeforeTheOnlyOtherRunsLeavesThatOneAlone) {
  EventLoop loop;
  Future<int> future(loop);
  int calls = 0;
  CallbackId first = future.add_done_callback([&] { calls += 100; });
  future.add_done_callback([&] { calls += 1; });
  EXPECT_EQ(future.remove_done_callback(first), 1u);
  future.set_result(0);
  run_one_iteration(loop);
  EXPECT_EQ(calls, 1);
  run_one_iteration(loop);
  EXPECT_EQ(calls, 1) << "a callback ran twice";
}

TEST(Future, ThrowingCallbackIsReportedAndOthersStillRun) {
  EventLoop loop;
  std::vector<std::string> reports;
  loop.set_exception_handler(
      [&](EventLoop&, const ExceptionContext& context) { reports.push_back(describe(context)); });
  Future<int> future(loop);
  bool second = false;
  future.add_done_callback([] { throw std::runtime_error("callback failed"); });
  future.add_done_callback([&] { second = true; });
  future.set_result(1);
  run_one_iteration(loop);
  EXPECT_TRUE(second);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0], "Exception in a Future done callback: callback failed");
}

TEST(Future, UnretrievedExceptionIsReported) {
  EventLoop loop;
  std::vector<std::string> reports;
  loop.set_exception_handler(
      [&](EventLoop&, const ExceptionContext& context) { reports.push_back(describe(context)); });
  {
    Future<int> future(loop);
    future.set_exception(std::make_exception_ptr(std::runtime_error("lost")));
  }
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0], "Future exception was never retrieved: lost");
  {
    Future<int> future(loop);
    future.set_exception(std::make_exception_ptr(std::runtime_error("seen")));
    EXPECT_NE(future.exception(), nullptr);
  }
  EXPECT_EQ(reports.size(), 1u);
}

TEST(Future, OutlivesItsLoop) {
  Future<int> future;
  {
    EventLoop loop;
    future = loop.create_future<int>();
    future.add_done_callback([] {});
  }
  EXPECT_THROW(future.get_loop(), RuntimeError);
  // Completing it would need the loop to schedule the callback.
  EXPECT_THROW(future.set_result(1), RuntimeError);
}

TEST(Future, MoveOnlyResult) {
  EventLoop loop;
  Future<std::unique_ptr<int>> future(loop);
  loop.call_soon([future]() mutable { future.set_result(std::make_unique<int>(11)); });
  std::unique_ptr<int> value = loop.run_until_complete(future);
  ASSERT_NE(value, nullptr);
  EXPECT_EQ(*value, 11);
}

}  // namespace
}  // namespace tulip
