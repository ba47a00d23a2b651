// Cancellation and destruction at every suspension point of a task, exhaustively:
// for each k, a task is cancelled (or its loop closed) while suspended at its
// k-th co_await, each await of a different kind.
#include <gtest/gtest.h>

#include <string>

#include "tulip/sleep.hpp"
#include "tulip/task.hpp"

namespace tulip {
namespace {

void run_one_iteration(EventLoop& loop) {
  loop.stop();
  loop.run_forever();
}

struct Progress {
  int reached = 0;  // which await the worker is at (set just before it)
  bool finished = false;
  bool guard_destroyed = false;
  Future<int> future;
  Task<int> helper;
};

struct Guard {
  bool* destroyed;
  ~Guard() { *destroyed = true; }
};

Task<int> helper_task() {
  co_await sleep(0);
  co_await sleep(0);
  co_return 5;
}

Task<int> inline_child() {
  co_await sleep(0.001);
  co_return 2;
}

// Five suspension points: sleep(0), a Future, an inline coroutine that sleeps,
// another task, a timed sleep.
constexpr int kSuspensions = 5;

Task<int> worker(EventLoop* loop, Progress* p) {
  Guard guard{&p->guard_destroyed};
  int total = 0;
  p->reached = 1;
  co_await sleep(0);
  p->reached = 2;
  total += co_await p->future;
  p->reached = 3;
  total += co_await inline_child();
  p->reached = 4;
  p->helper = loop->create_task(helper_task());
  total += co_await p->helper;
  p->reached = 5;
  co_await sleep(0.001);
  p->finished = true;
  co_return total;
}

// Runs the worker, calling `act` once the worker is suspended at await k (k = 0:
// before its first step), completing the future when it is reached otherwise.
template <class Act>
void drive(EventLoop& loop, Progress& p, Task<int>& task, int k, Act act) {
  p.future = loop.create_future<int>();
  task = loop.create_task(worker(&loop, &p));
  bool acted = false;
  if (k == 0) {
    act();
    acted = true;
  }
  while (!task.done() && !loop.is_closed()) {
    run_one_iteration(loop);
    if (!acted && p.reached == k && !task.done()) {
      act();
      acted = true;
    } else if (p.reached == 2 && !p.future.done()) {
      p.future.set_result(1);
    }
  }
}

TEST(TaskCancellation, CancelledAtEveryAwait) {
  for (int k = 0; k <= kSuspensions; ++k) {
    SCOPED_TRACE("cancelled at await " + std::to_string(k));
    EventLoop loop;
    Progress p;
    Task<int> task;
    drive(loop, p, task, k, [&] { EXPECT_TRUE(task.cancel("at " + std::to_string(k))); });
    ASSERT_TRUE(task.done());
    EXPECT_TRUE(task.cancelled());
    EXPECT_EQ(p.reached, k);
    EXPECT_FALSE(p.finished);
    EXPECT_EQ(p.guard_destroyed, k > 0);  // k = 0: the body never ran
    try {
      task.result();
      ADD_FAILURE() << "result() of a cancelled task must throw";
    } catch (const CancelledError& e) {
      EXPECT_EQ(std::string(e.what()), "at " + std::to_string(k));
    }
    if (k == 2) {
      EXPECT_TRUE(p.future.cancelled());
    }
    if (k == 4) {
      // The awaited task is cancelled too; let it finish.
      while (!p.helper.done()) run_one_iteration(loop);
      EXPECT_TRUE(p.helper.cancelled());
    }
    EXPECT_TRUE(all_tasks(loop).empty());
  }
}

TEST(TaskCancellation, NotCancelledRunsToTheEnd) {
  EventLoop loop;
  Progress p;
  Task<int> task;
  drive(loop, p, task, kSuspensions + 1, [] {});
  EXPECT_EQ(task.result(), 1 + 2 + 5);
  EXPECT_TRUE(p.finished);
  EXPECT_TRUE(p.guard_destroyed);
}

TEST(TaskCancellation, LoopClosedAtEveryAwaitDestroysTheFrame) {
  for (int k = 0; k <= kSuspensions; ++k) {
    SCOPED_TRACE("loop closed at await " + std::to_string(k));
    Progress p;
    Task<int> task;
    {
      EventLoop loop;
      drive(loop, p, task, k, [&] { loop.close(); });
      EXPECT_TRUE(loop.is_closed());
    }
    EXPECT_TRUE(task.cancelled());
    EXPECT_EQ(p.reached, k);
    EXPECT_FALSE(p.finished);
    EXPECT_EQ(p.guard_destroyed, k > 0);
  }
}

TEST(TaskCancellation, DroppingEveryHandleAtEveryAwaitStillFinishes) {
  // The loop owns a pending task: dropping the handles changes nothing.
  for (int k = 1; k <= kSuspensions; ++k) {
    SCOPED_TRACE("handle dropped at await " + std::to_string(k));
    EventLoop loop;
    Progress p;
    p.future = loop.create_future<int>();
    Task<int> task = loop.create_task(worker(&loop, &p));
    while (p.reached < k) {
      run_one_iteration(loop);
      if (p.reached == 2 && !p.future.done() && k != 2) p.future.set_result(1);
    }
    task = Task<int>();  // no handle left while suspended at await k
    while (!all_tasks(loop).empty()) {
      run_one_iteration(loop);
      if (p.reached == 2 && !p.future.done()) p.future.set_result(1);
    }
    EXPECT_TRUE(p.finished);
    EXPECT_TRUE(p.guard_destroyed);
  }
}

TEST(TaskCancellation, RepeatedCancelWhileWaking) {
  EventLoop loop;
  Progress p;
  Task<int> task;
  drive(loop, p, task, 2, [&] {
    EXPECT_TRUE(task.cancel("first"));
    EXPECT_TRUE(task.cancel("second"));  // the future is done: pending on the task
    EXPECT_EQ(task.cancelling(), 2);
  });
  EXPECT_TRUE(task.cancelled());
}

}  // namespace
}  // namespace tulip
