// Event, Lock, Semaphore, BoundedSemaphore, Condition.
#include "tulip/locks.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tulip/sleep.hpp"
#include "tulip/task.hpp"

namespace tulip {
namespace {

void run_one_iteration(EventLoop& loop) {
  loop.stop();
  loop.run_forever();
}

void run_all(EventLoop& loop) {
  while (!all_tasks(loop).empty()) run_one_iteration(loop);
}

TEST(Event, WaitersWakeWhenSet) {
  EventLoop loop;
  Event event;
  int woken = 0;
  auto waiter = [](Event* e, int* count) -> Task<void> {
    EXPECT_TRUE(co_await e->wait());
    ++*count;
  };
  for (int i = 0; i < 3; ++i) (void)loop.create_task(waiter(&event, &woken));
  run_one_iteration(loop);
  EXPECT_EQ(woken, 0);
  event.set();
  EXPECT_TRUE(event.is_set());
  run_all(loop);
  EXPECT_EQ(woken, 3);
  // Already set: no waiting.
  Task<bool> again = loop.create_task(event.wait());
  run_one_iteration(loop);
  EXPECT_TRUE(again.done());
  event.clear();
  EXPECT_FALSE(event.is_set());
}

TEST(Event, CancelledWaiterLeavesTheQueue) {
  EventLoop loop;
  Event event;
  Task<bool> task = loop.create_task(event.wait());
  run_one_iteration(loop);
  task.cancel();
  EXPECT_THROW(run_until_complete(loop, task), CancelledError);
  event.set();  // nothing left to wake
}

Task<void> hold(Lock* lock, std::vector<std::string>* log, std::string name) {
  co_await lock->acquire();
  log->push_back(name + " in");
  co_await sleep(0);
  log->push_back(name + " out");
  lock->release();
}

TEST(Lock, MutualExclusionInFifoOrder) {
  EventLoop loop;
  Lock lock;
  std::vector<std::string> log;
  for (const char* name : {"a", "b", "c"}) (void)loop.create_task(hold(&lock, &log, name));
  run_all(loop);
  EXPECT_EQ(log, (std::vector<std::string>{"a in", "a out", "b in", "b out", "c in", "c out"}));
  EXPECT_FALSE(lock.locked());
  EXPECT_THROW(lock.release(), RuntimeError);
}

TEST(Lock, WokenWaiterCancelledPassesTheTurnOn) {
  EventLoop loop;
  Lock lock;
  std::vector<std::string> log;
  auto owner = [](Lock* l) -> Task<void> {
    co_await l->acquire();
    co_await sleep(0);
    l->release();
  };
  (void)loop.create_task(owner(&lock));
  Task<void> b = loop.create_task(hold(&lock, &log, "b"));
  Task<void> c = loop.create_task(hold(&lock, &log, "c"));
  run_one_iteration(loop);  // owner holds; b and c wait
  run_one_iteration(loop);  // owner releases: b's waiter is done, b not yet resumed
  b.cancel();
  run_all(loop);
  EXPECT_TRUE(b.cancelled());
  EXPECT_EQ(log, (std::vector<std::string>{"c in", "c out"}));
  EXPECT_FALSE(lock.locked());
}

TEST(Semaphore, LimitsConcurrency) {
  EventLoop loop;
  Semaphore semaphore(2);
  int inside = 0;
  int peak = 0;
  auto worker = [](Semaphore* s, int* in, int* max) -> Task<void> {
    co_await s->acquire();
    ++*in;
    *max = std::max(*max, *in);
    co_await sleep(0);
    --*in;
    s->release();
  };
  for (int i = 0; i < 6; ++i) (void)loop.create_task(worker(&semaphore, &inside, &peak));
  run_all(loop);
  EXPECT_EQ(peak, 2);
  EXPECT_EQ(semaphore.value(), 2);
  EXPECT_THROW(Semaphore(-1), std::invalid_argument);
}

TEST(Semaphore, CancelledAfterWakeUpGivesTheUnitBack) {
  EventLoop loop;
  Semaphore semaphore(0);
  Task<void> a = loop.create_task(semaphore.acquire());
  Task<void> b = loop.create_task(semaphore.acquire());
  run_one_iteration(loop);
  semaphore.release();  // a is given the unit
  a.cancel();           // ... but is cancelled before it runs
  run_all(loop);
  EXPECT_TRUE(a.cancelled());
  EXPECT_TRUE(b.done());  // the unit went to b
  EXPECT_FALSE(b.cancelled());
  EXPECT_EQ(semaphore.value(), 0);
}

TEST(BoundedSemaphore, ReleasedTooManyTimes) {
  BoundedSemaphore semaphore(1);
  EXPECT_THROW(semaphore.release(), std::invalid_argument);
}

TEST(Condition, NotifyWakesInOrderAndRelocks) {
  EventLoop loop;
  Condition condition;
  std::vector<int> order;
  auto waiter = [](Condition* c, std::vector<int>* out, int id) -> Task<void> {
    co_await c->acquire();
    co_await c->wait();
    EXPECT_TRUE(c->locked());
    out->push_back(id);
    c->release();
  };
  for (int i = 0; i < 3; ++i) (void)loop.create_task(waiter(&condition, &order, i));
  run_one_iteration(loop);
  auto notifier = [](Condition* c, int n) -> Task<void> {
    co_await c->acquire();
    c->notify(n);
    c->release();
  };
  run_until_complete(loop, notifier(&condition, 2));
  for (int i = 0; i < 5; ++i) run_one_iteration(loop);
  EXPECT_EQ(order, (std::vector<int>{0, 1}));
  run_until_complete(loop, [](Condition* c) -> Task<void> {
    co_await c->acquire();
    c->notify_all();
    c->release();
  }(&condition));
  run_all(loop);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  EXPECT_THROW(condition.notify(), RuntimeError);
}

TEST(Condition, WaitForPredicateAndCancellationRelocks) {
  EventLoop loop;
  Condition condition;
  int value = 0;
  std::function<bool()> ready = [&] { return value >= 2; };
  auto waiter = [](Condition* c, std::function<bool()>* predicate) -> Task<void> {
    co_await c->acquire();
    try {
      co_await c->wait_for(*predicate);
    } catch (const CancelledError&) {
      EXPECT_TRUE(c->locked());  // cancelled, but holding the lock again
      c->release();
      throw;
    }
    c->release();
  };
  Task<void> task = loop.create_task(waiter(&condition, &ready));
  auto bump = [](Condition* c, int* v) -> Task<void> {
    co_await c->acquire();
    ++*v;
    c->notify_all();
    c->release();
  };
  run_until_complete(loop, bump(&condition, &value));
  run_one_iteration(loop);
  EXPECT_FALSE(task.done());
  run_until_complete(loop, bump(&condition, &value));
  run_until_complete(loop, task);

  Task<void> cancelled = loop.create_task(waiter(&condition, &ready));
  value = 0;
  run_one_iteration(loop);
  cancelled.cancel();
  EXPECT_THROW(run_until_complete(loop, cancelled), CancelledError);
  EXPECT_FALSE(condition.locked());
}

}  // namespace
}  // namespace tulip
