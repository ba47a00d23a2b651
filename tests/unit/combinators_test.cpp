// sleep, timeouts, wait_for, gather, wait, as_completed, shield, TaskGroup.
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "tulip/exception_group.hpp"
#include "tulip/sleep.hpp"
#include "tulip/task.hpp"
#include "tulip/task_group.hpp"
#include "tulip/tasks.hpp"
#include "tulip/timeouts.hpp"

namespace tulip {
namespace {

void run_one_iteration(EventLoop& loop) {
  loop.stop();
  loop.run_forever();
}

Task<int> value_after(double delay, int value) {
  co_await sleep(delay);
  co_return value;
}

Task<int> fail_after(double delay, std::string message) {
  co_await sleep(delay);
  throw std::runtime_error(message);
}

Task<void> forever() { co_await sleep(3600); }

// ---- sleep --------------------------------------------------------------------

TEST(Sleep, ZeroYieldsExactlyOneIteration) {
  EventLoop loop;
  std::vector<std::string> order;
  auto sleeper = [](std::vector<std::string>* out) -> Task<void> {
    out->push_back("before");
    co_await sleep(0);
    out->push_back("after");
  };
  Task<void> task = loop.create_task(sleeper(&order));
  run_one_iteration(loop);
  loop.call_soon([&] { order.push_back("callback"); });
  run_one_iteration(loop);
  EXPECT_EQ(order, (std::vector<std::string>{"before", "after", "callback"}));
  EXPECT_TRUE(task.done());
}

TEST(Sleep, WaitsOnTheLoopClock) {
  EventLoop loop;
  double start = loop.time();
  run_until_complete(loop, value_after(0.02, 1));
  EXPECT_GE(loop.time() - start, 0.02);
}

// ---- timeout / wait_for ----------------------------------------------------------

TEST(Timeout, ExpiresIntoTimeoutError) {
  EventLoop loop;
  auto body = []() -> Task<std::string> {
    try {
      co_await timeout(0.001, forever());
    } catch (const TimeoutError&) {
      AnyTask self = current_task();
      EXPECT_EQ(self.cancelling(), 0);  // the timeout's cancel was withdrawn
      co_return "timed out";
    }
    co_return "finished";
  };
  EXPECT_EQ(run_until_complete(loop, body()), "timed out");
}

TEST(Timeout, BodyFinishingInTimeIsUnaffected) {
  EventLoop loop;
  auto body = []() -> Task<int> { co_return co_await timeout(10, value_after(0, 4)); };
  EXPECT_EQ(run_until_complete(loop, body()), 4);
  auto none = []() -> Task<int> { co_return co_await timeout(std::nullopt, value_after(0, 5)); };
  EXPECT_EQ(run_until_complete(loop, none()), 5);
}

TEST(Timeout, NestedInnerExpires) {
  EventLoop loop;
  auto inner = []() -> Task<std::string> {
    try {
      co_await timeout(0.001, forever());
    } catch (const TimeoutError&) {
      co_return "inner";
    }
    co_return "none";
  };
  auto outer = [](Task<std::string> in) -> Task<std::string> {
    co_return co_await timeout(10, std::move(in));
  };
  EXPECT_EQ(run_until_complete(loop, outer(inner())), "inner");
}

TEST(Timeout, NestedOuterExpiresInsideInner) {
  EventLoop loop;
  // The outer deadline fires while the inner scope (longer deadline) runs: the
  // inner scope must let the CancelledError through, the outer turns it into
  // TimeoutError.
  auto inner = []() -> Task<void> { co_await timeout(10, forever()); };
  auto outer = [](Task<void> in) -> Task<std::string> {
    try {
      co_await timeout(0.001, std::move(in));
    } catch (const TimeoutError&) {
      co_return "outer";
    }
    co_return "none";
  };
  EXPECT_EQ(run_until_complete(loop, outer(inner())), "outer");
}

TEST(Timeout, OutsideCancellationStaysCancelledError) {
  EventLoop loop;
  auto body = []() -> Task<void> { co_await timeout(10, forever()); };
  Task<void> task = loop.create_task(body());
  run_one_iteration(loop);
  task.cancel();
  EXPECT_THROW(run_until_complete(loop, task), CancelledError);
}

TEST(Timeout, ExpiredAndCancelledTogetherStaysCancelled) {
  EventLoop loop;
  // The deadline fires and the task is cancelled from outside in the same
  // iteration: cancelling() stays above the entry count, so CancelledError wins.
  auto body = [](Timeout* scope) -> Task<void> { co_await scope->run(forever()); };
  double when = loop.time() + 0.001;
  Timeout scope(when);
  Task<void> task = loop.create_task(body(&scope));
  run_one_iteration(loop);
  // Same deadline, scheduled after the scope's timer: both run in one iteration.
  loop.call_at(when, [task]() mutable { task.cancel(); });
  EXPECT_THROW(run_until_complete(loop, task), CancelledError);
  EXPECT_TRUE(scope.expired());
}

TEST(Timeout, Reschedule) {
  EventLoop loop;
  auto body = [](Timeout* scope) -> Task<void> {
    scope->reschedule(get_running_loop().time() + 0.001);
    co_await forever();
  };
  auto outer = [&]() -> Task<bool> {
    Timeout scope(std::nullopt);
    try {
      co_await scope.run(body(&scope));
    } catch (const TimeoutError&) {
      co_return scope.expired();
    }
    co_return false;
  };
  EXPECT_TRUE(run_until_complete(loop, outer()));
}

TEST(WaitFor, ResultOrTimeout) {
  EventLoop loop;
  auto ok = []() -> Task<int> { co_return co_await wait_for(value_after(0, 8), 10.0); };
  EXPECT_EQ(run_until_complete(loop, ok()), 8);
  auto late = []() -> Task<int> { co_return co_await wait_for(value_after(10, 8), 0.001); };
  EXPECT_THROW(run_until_complete(loop, late()), TimeoutError);
}

TEST(WaitFor, ZeroTimeoutNeverStartsACoroutine) {
  EventLoop loop;
  auto starts = [](bool* flag) -> Task<int> {
    *flag = true;
    co_return 1;
  };
  bool started = false;
  auto body = [](Task<int> child) -> Task<int> {
    co_return co_await wait_for(std::move(child), 0);
  };
  EXPECT_THROW(run_until_complete(loop, body(starts(&started))), TimeoutError);
  EXPECT_FALSE(started);
}

TEST(WaitFor, CancelsTheAwaitedFuture) {
  EventLoop loop;
  Future<int> future = loop.create_future<int>();
  auto body = [](Future<int> f) -> Task<int> { co_return co_await wait_for(f, 0.001); };
  EXPECT_THROW(run_until_complete(loop, body(future)), TimeoutError);
  EXPECT_TRUE(future.cancelled());
}

// ---- gather -----------------------------------------------------------------------

Task<void> nap() { co_await sleep(0); }

TEST(Gather, TupleOfResultsInArgumentOrder) {
  EventLoop loop;
  Future<std::string> future = loop.create_future<std::string>();
  loop.call_later(0.001, [future]() mutable { future.set_result("f"); });
  auto body = [](Future<std::string> f) -> Task<std::tuple<int, std::monostate, std::string>> {
    co_return co_await gather(value_after(0.002, 1), nap(), f);
  };
  auto [a, b, c] = run_until_complete(loop, body(future));
  EXPECT_EQ(a, 1);
  (void)b;
  EXPECT_EQ(c, "f");
}

TEST(Gather, VectorOfResults) {
  EventLoop loop;
  auto body = []() -> Task<std::vector<int>> {
    std::vector<Task<int>> children;
    for (int i = 0; i < 5; ++i) children.push_back(value_after(0.001 * (5 - i), i));
    co_return co_await gather(std::move(children));
  };
  EXPECT_EQ(run_until_complete(loop, body()), (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(Gather, FirstErrorPropagatesOthersKeepRunning) {
  EventLoop loop;
  std::vector<std::string> handled;
  loop.set_exception_handler(
      [&](EventLoop&, const ExceptionContext& c) { handled.push_back(c.message); });
  Task<int> slow;
  auto body = [](EventLoop* l, Task<int>* keep) -> Task<std::string> {
    *keep = l->create_task(value_after(0.01, 7));
    try {
      co_await gather(fail_after(0, "first"), *keep, fail_after(0.002, "second"));
    } catch (const std::runtime_error& e) {
      co_return e.what();
    }
    co_return "none";
  };
  EXPECT_EQ(run_until_complete(loop, body(&loop, &slow)), "first");
  EXPECT_FALSE(slow.done());
  EXPECT_EQ(run_until_complete(loop, slow), 7);  // not cancelled
  while (!all_tasks(loop).empty()) run_one_iteration(loop);
  run_one_iteration(loop);
  EXPECT_TRUE(handled.empty());  // "second" counts as retrieved
}

TEST(Gather, ReturnExceptions) {
  EventLoop loop;
  auto body = []() -> Task<std::tuple<Outcome<int>, Outcome<int>, Outcome<void>>> {
    Task<void> cancelled = get_running_loop().create_task(forever());
    cancelled.cancel();
    co_return co_await gather(return_exceptions, value_after(0, 1), fail_after(0, "bad"),
                              cancelled);
  };
  auto [ok, bad, cancelled] = run_until_complete(loop, body());
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.get(), 1);
  EXPECT_FALSE(bad.ok());
  EXPECT_THROW(bad.get(), std::runtime_error);
  EXPECT_THROW(cancelled.get(), CancelledError);
}

TEST(Gather, CancellingTheAwaiterCancelsEveryChild) {
  EventLoop loop;
  Task<void> a = loop.create_task(forever());
  Task<void> b = loop.create_task(forever());
  auto body = [](Task<void> x, Task<void> y) -> Task<void> { co_await gather(x, y); };
  Task<void> outer = loop.create_task(body(a, b));
  run_one_iteration(loop);
  EXPECT_TRUE(outer.cancel());
  EXPECT_THROW(run_until_complete(loop, outer), CancelledError);
  EXPECT_TRUE(a.cancelled());
  EXPECT_TRUE(b.cancelled());
}

// ---- wait / as_completed / shield -------------------------------------------------

TEST(Wait, FirstCompleted) {
  EventLoop loop;
  auto body = []() -> Task<std::pair<std::size_t, std::size_t>> {
    std::vector<Task<int>> children;
    children.push_back(value_after(0.001, 1));
    children.push_back(value_after(10, 2));
    auto result = co_await wait(std::move(children), FIRST_COMPLETED);
    for (auto& pending : result.pending) pending.cancel();
    co_return std::pair(result.done.size(), result.pending.size());
  };
  EXPECT_EQ(run_until_complete(loop, body()), (std::pair<std::size_t, std::size_t>(1, 1)));
}

TEST(Wait, FirstExceptionAndAllCompleted) {
  EventLoop loop;
  auto body = []() -> Task<std::vector<std::size_t>> {
    std::vector<Task<int>> first;
    first.push_back(fail_after(0.001, "x"));
    first.push_back(value_after(10, 2));
    auto r1 = co_await wait(std::move(first), FIRST_EXCEPTION);
    for (auto& t : r1.pending) t.cancel();
    EXPECT_THROW(r1.done[0].result(), std::runtime_error);
    std::vector<Task<int>> all;
    all.push_back(value_after(0.001, 1));
    all.push_back(value_after(0.002, 2));
    auto r2 = co_await wait(std::move(all));
    co_return std::vector<std::size_t>{r1.done.size(), r1.pending.size(), r2.done.size(),
                                       r2.pending.size()};
  };
  EXPECT_EQ(run_until_complete(loop, body()), (std::vector<std::size_t>{1, 1, 2, 0}));
}

TEST(Wait, TimeoutLeavesChildrenAlone) {
  EventLoop loop;
  auto body = []() -> Task<bool> {
    std::vector<Task<void>> children;
    children.push_back(get_running_loop().create_task(forever()));
    auto result = co_await wait(children, ALL_COMPLETED, 0.001);
    bool untouched = result.pending.size() == 1 && !result.pending[0].done();
    result.pending[0].cancel();
    co_return untouched;
  };
  EXPECT_TRUE(run_until_complete(loop, body()));
}

TEST(AsCompleted, CompletionOrderAndTimeout) {
  EventLoop loop;
  auto body = []() -> Task<std::vector<int>> {
    std::vector<Task<int>> children;
    children.push_back(value_after(0.003, 3));
    children.push_back(value_after(0.001, 1));
    children.push_back(value_after(0.002, 2));
    AsCompleted<int> results = as_completed(std::move(children));
    std::vector<int> order;
    while (!results.empty()) order.push_back(co_await results.next());
    co_return order;
  };
  EXPECT_EQ(run_until_complete(loop, body()), (std::vector<int>{1, 2, 3}));

  auto late = []() -> Task<int> {
    std::vector<Task<int>> children;
    children.push_back(value_after(10, 1));
    AsCompleted<int> results = as_completed(std::move(children), 0.001);
    co_return co_await results.next();
  };
  EXPECT_THROW(run_until_complete(loop, late()), TimeoutError);
}

TEST(Shield, InnerSurvivesTheAwaitersCancellation) {
  EventLoop loop;
  Task<int> inner = loop.create_task(value_after(0.002, 6));
  auto body = [](Task<int> in) -> Task<int> { co_return co_await shield(in); };
  Task<int> outer = loop.create_task(body(inner));
  run_one_iteration(loop);
  outer.cancel();
  EXPECT_THROW(run_until_complete(loop, outer), CancelledError);
  EXPECT_FALSE(inner.cancelled());
  EXPECT_EQ(run_until_complete(loop, inner), 6);
}

// ---- TaskGroup ----------------------------------------------------------------------

TEST(TaskGroup, WaitsForEveryChild) {
  EventLoop loop;
  auto body = []() -> Task<int> {
    int sum = 0;
    co_await task_group([&](TaskGroup& tg) -> Task<void> {
      Task<int> a = tg.create_task(value_after(0.002, 1));
      Task<int> b = tg.create_task(value_after(0.001, 2));
      a.add_done_callback([&](Task<int>& t) { sum += t.result(); });
      b.add_done_callback([&](Task<int>& t) { sum += t.result(); });
      co_return;
    });
    co_return sum;
  };
  EXPECT_EQ(run_until_complete(loop, body()), 3);
}

TEST(TaskGroup, FailingChildCancelsSiblingsAndBody) {
  EventLoop loop;
  bool sibling_cancelled = false;
  bool body_cancelled = false;
  auto sibling = [](bool* flag) -> Task<void> {
    try {
      co_await sleep(3600);
    } catch (const CancelledError&) {
      *flag = true;
      throw;
    }
  };
  auto body = [&]() -> Task<std::size_t> {
    try {
      co_await task_group([&](TaskGroup& tg) -> Task<void> {
        tg.create_task(sibling(&sibling_cancelled));
        tg.create_task(fail_after(0.001, "one"));
        tg.create_task(fail_after(0.001, "two"));
        try {
          co_await sleep(3600);
        } catch (const CancelledError&) {
          body_cancelled = true;
          throw;
        }
      });
    } catch (const ExceptionGroup& group) {
      AnyTask self = current_task();
      EXPECT_EQ(self.cancelling(), 0);
      co_return group.exceptions().size();
    }
    co_return 0;
  };
  EXPECT_EQ(run_until_complete(loop, body()), 2u);
  EXPECT_TRUE(sibling_cancelled);
  EXPECT_TRUE(body_cancelled);
}

TEST(TaskGroup, ChildrenFailWhileTheGroupIsCancelled) {
  EventLoop loop;
  // Children that fail while handling their cancellation: the errors win over
  // the outer cancellation, as in asyncio.
  auto failing_on_cancel = [](std::string message) -> Task<void> {
    try {
      co_await sleep(3600);
    } catch (const CancelledError&) {
    }
    throw std::runtime_error(message);
  };
  auto body = [&]() -> Task<void> {
    co_await task_group([&](TaskGroup& tg) -> Task<void> {
      tg.create_task(failing_on_cancel("a"));
      tg.create_task(failing_on_cancel("b"));
      co_await sleep(3600);
    });
  };
  Task<void> task = loop.create_task(body());
  run_one_iteration(loop);
  run_one_iteration(loop);
  task.cancel();
  try {
    run_until_complete(loop, task);
    FAIL() << "expected an ExceptionGroup";
  } catch (const ExceptionGroup& group) {
    EXPECT_EQ(group.exceptions().size(), 2u);
  }
}

TEST(TaskGroup, OuterCancellationPropagates) {
  EventLoop loop;
  bool child_cancelled = false;
  auto child = [](bool* flag) -> Task<void> {
    try {
      co_await sleep(3600);
    } catch (const CancelledError&) {
      *flag = true;
      throw;
    }
  };
  auto body = [&]() -> Task<void> {
    co_await task_group([&](TaskGroup& tg) -> Task<void> {
      tg.create_task(child(&child_cancelled));
      co_return;
    });
  };
  Task<void> task = loop.create_task(body());
  run_one_iteration(loop);
  run_one_iteration(loop);
  task.cancel();
  EXPECT_THROW(run_until_complete(loop, task), CancelledError);
  EXPECT_TRUE(child_cancelled);
}

TEST(TaskGroup, InsideATimeout) {
  EventLoop loop;
  auto body = []() -> Task<std::string> {
    try {
      co_await timeout(0.001, task_group([](TaskGroup& tg) -> Task<void> {
                         tg.create_task(forever());
                         co_return;
                       }));
    } catch (const TimeoutError&) {
      co_return "timeout";
    }
    co_return "none";
  };
  EXPECT_EQ(run_until_complete(loop, body()), "timeout");
}

TEST(TaskGroup, CreateTaskWhileShuttingDownIsAnError) {
  EventLoop loop;
  bool refused = false;
  auto body = [&]() -> Task<std::size_t> {
    try {
      co_await task_group([&](TaskGroup& tg) -> Task<void> {
        tg.create_task(fail_after(0, "x"));
        try {
          co_await sleep(3600);
        } catch (const CancelledError&) {
          try {
            tg.create_task(forever());
          } catch (const RuntimeError&) {
            refused = true;
          }
          throw;
        }
      });
    } catch (const ExceptionGroup& group) {
      co_return group.exceptions().size();
    }
    co_return 0;
  };
  EXPECT_EQ(run_until_complete(loop, body()), 1u);
  EXPECT_TRUE(refused);
}

// ---- Destroyed while suspended ------------------------------------------------------

TEST(Combinators, LoopClosedWhileTheyWait) {
  // Every combinator suspended, then the loop closes: the frames are destroyed,
  // their callbacks on the children removed, and nothing leaks (ASan/LSan).
  std::vector<AnyTask> tasks;
  {
    EventLoop loop;
    auto gathering = []() -> Task<void> { co_await gather(forever(), forever()); };
    auto waiting = []() -> Task<void> {
      std::vector<Task<void>> children;
      children.push_back(forever());
      co_await wait(std::move(children));
    };
    auto grouping = []() -> Task<void> {
      co_await task_group([](TaskGroup& tg) -> Task<void> {
        tg.create_task(forever());
        co_await forever();
      });
    };
    auto timing = []() -> Task<void> { co_await timeout(3600, forever()); };
    auto shielding = []() -> Task<void> { co_await shield(forever()); };
    auto completing = []() -> Task<void> {
      std::vector<Task<void>> children;
      children.push_back(forever());
      AsCompleted<void> results = as_completed(std::move(children));
      co_await results.next();
    };
    tasks.push_back(loop.create_task(gathering()));
    tasks.push_back(loop.create_task(waiting()));
    tasks.push_back(loop.create_task(grouping()));
    tasks.push_back(loop.create_task(timing()));
    tasks.push_back(loop.create_task(shielding()));
    tasks.push_back(loop.create_task(completing()));
    for (int i = 0; i < 3; ++i) run_one_iteration(loop);
    for (AnyTask& task : tasks) EXPECT_FALSE(task.done());
  }
  for (AnyTask& task : tasks) EXPECT_TRUE(task.cancelled());
}

}  // namespace
}  // namespace tulip
