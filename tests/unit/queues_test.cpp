// Queue, PriorityQueue, LifoQueue.
#include "tulip/queues.hpp"

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

TEST(Queue, NowaitAndErrors) {
  Queue<int> queue(2);
  EXPECT_TRUE(queue.empty());
  queue.put_nowait(1);
  queue.put_nowait(2);
  EXPECT_TRUE(queue.full());
  EXPECT_THROW(queue.put_nowait(3), QueueFull);
  EXPECT_EQ(queue.get_nowait(), 1);
  EXPECT_EQ(queue.get_nowait(), 2);
  EXPECT_THROW(queue.get_nowait(), QueueEmpty);
  EXPECT_EQ(queue.maxsize(), 2);
}

TEST(Queue, ProducerWaitsWhileFullConsumerWhileEmpty) {
  EventLoop loop;
  Queue<std::string> queue(1);
  std::vector<std::string> received;
  auto producer = [](Queue<std::string>* q) -> Task<void> {
    for (int i = 0; i < 5; ++i) co_await q->put(std::to_string(i));
  };
  auto consumer = [](Queue<std::string>* q, std::vector<std::string>* out) -> Task<void> {
    for (int i = 0; i < 5; ++i) {
      out->push_back(co_await q->get());
      q->task_done();
    }
  };
  (void)loop.create_task(consumer(&queue, &received));
  (void)loop.create_task(producer(&queue));
  run_all(loop);
  EXPECT_EQ(received, (std::vector<std::string>{"0", "1", "2", "3", "4"}));
  EXPECT_THROW(queue.task_done(), std::invalid_argument);
}

TEST(Queue, GettersAreServedInOrder) {
  EventLoop loop;
  Queue<int> queue;
  std::vector<std::pair<int, int>> got;
  auto getter = [](Queue<int>* q, std::vector<std::pair<int, int>>* out, int id) -> Task<void> {
    out->emplace_back(id, co_await q->get());
  };
  for (int id = 0; id < 3; ++id) (void)loop.create_task(getter(&queue, &got, id));
  run_one_iteration(loop);
  for (int v = 10; v < 13; ++v) queue.put_nowait(v);
  run_all(loop);
  EXPECT_EQ(got, (std::vector<std::pair<int, int>>{{0, 10}, {1, 11}, {2, 12}}));
}

TEST(Queue, CancelledGetterPassesTheItemOn) {
  EventLoop loop;
  Queue<int> queue;
  Task<int> first = loop.create_task(queue.get());
  Task<int> second = loop.create_task(queue.get());
  run_one_iteration(loop);
  queue.put_nowait(7);  // wakes first ...
  first.cancel();       // ... which is cancelled before taking it
  run_all(loop);
  EXPECT_TRUE(first.cancelled());
  EXPECT_EQ(second.result(), 7);
}

TEST(Queue, CancelledPutterPassesTheSlotOn) {
  EventLoop loop;
  Queue<int> queue(1);
  queue.put_nowait(0);
  Task<void> first = loop.create_task(queue.put(1));
  Task<void> second = loop.create_task(queue.put(2));
  run_one_iteration(loop);
  EXPECT_EQ(queue.get_nowait(), 0);  // wakes first ...
  first.cancel();                    // ... which is cancelled before putting
  run_all(loop);
  EXPECT_TRUE(first.cancelled());
  EXPECT_TRUE(second.done());
  EXPECT_EQ(queue.get_nowait(), 2);
}

TEST(Queue, JoinWaitsForTaskDone) {
  EventLoop loop;
  Queue<int> queue;
  for (int i = 0; i < 3; ++i) queue.put_nowait(i);
  Task<void> join = loop.create_task(queue.join());
  auto worker = [](Queue<int>* q) -> Task<void> {
    while (!q->empty()) {
      (void)co_await q->get();
      co_await sleep(0);
      q->task_done();
    }
  };
  run_one_iteration(loop);
  EXPECT_FALSE(join.done());
  (void)loop.create_task(worker(&queue));
  run_all(loop);
  EXPECT_TRUE(join.done());
}

TEST(PriorityQueue, SmallestFirst) {
  PriorityQueue<int> queue;
  for (int v : {5, 1, 4, 2, 3}) queue.put_nowait(v);
  std::vector<int> out;
  while (!queue.empty()) out.push_back(queue.get_nowait());
  EXPECT_EQ(out, (std::vector<int>{1, 2, 3, 4, 5}));
}

TEST(LifoQueue, MostRecentFirst) {
  LifoQueue<int> queue;
  for (int v : {1, 2, 3}) queue.put_nowait(v);
  std::vector<int> out;
  while (!queue.empty()) out.push_back(queue.get_nowait());
  EXPECT_EQ(out, (std::vector<int>{3, 2, 1}));
}

}  // namespace
}  // namespace tulip
