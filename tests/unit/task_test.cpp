// Task<T>: lazy coroutines, create_task, co_await, cancellation, lifetime.
#include "tulip/task.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "tulip/runners.hpp"
#include "tulip/sleep.hpp"
#include "tulip/tasks.hpp"

namespace tulip {
namespace {

void run_one_iteration(EventLoop& loop) {
  loop.stop();
  loop.run_forever();
}

// Sets a flag when destroyed: tells whether a frame's locals were destroyed.
struct Guard {
  bool* destroyed;
  ~Guard() { *destroyed = true; }
};

Task<int> answer() { co_return 42; }

Task<int> add_one(int value) { co_return value + 1; }

Task<int> await_future(Future<int> future) { co_return co_await future; }

TEST(Task, CreateTaskNeverStartsInline) {
  EventLoop loop;
  bool started = false;
  auto body = [](bool* flag) -> Task<void> {
    *flag = true;
    co_return;
  };
  Task<void> task = loop.create_task(body(&started));
  EXPECT_FALSE(started);
  EXPECT_FALSE(task.done());
  run_one_iteration(loop);
  EXPECT_TRUE(started);
  EXPECT_TRUE(task.done());
  EXPECT_FALSE(task.cancelled());
}

TEST(Task, ResultOfACompletedTask) {
  EventLoop loop;
  Task<int> task = loop.create_task(answer());
  EXPECT_THROW(task.result(), InvalidStateError);
  EXPECT_EQ(run_until_complete(loop, task), 42);
  EXPECT_EQ(task.result(), 42);
  EXPECT_EQ(task.exception(), nullptr);
}

TEST(Task, DefaultAndExplicitNames) {
  EventLoop loop;
  Task<int> first = loop.create_task(answer());
  Task<int> named = loop.create_task(answer(), "worker");
  EXPECT_EQ(first.get_name(), "Task-1");
  EXPECT_EQ(named.get_name(), "worker");
  named.set_name("renamed");
  EXPECT_EQ(named.get_name(), "renamed");
  run_until_complete(loop, named);
  run_until_complete(loop, first);
}

TEST(Task, AwaitsFutureResult) {
  EventLoop loop;
  Future<int> future = loop.create_future<int>();
  Task<int> task = loop.create_task(await_future(future));
  run_one_iteration(loop);
  EXPECT_FALSE(task.done());
  loop.call_soon([future]() mutable { future.set_result(7); });
  EXPECT_EQ(run_until_complete(loop, task), 7);
}

TEST(Task, AwaitingAFutureRethrowsItsException) {
  EventLoop loop;
  Future<int> future = loop.create_future<int>();
  future.set_exception(std::make_exception_ptr(std::runtime_error("broken")));
  Task<int> task = loop.create_task(await_future(future));
  EXPECT_THROW(run_until_complete(loop, task), std::runtime_error);
  ASSERT_NE(task.exception(), nullptr);
}

TEST(Task, AwaitingACancelledFutureCancelsTheTask) {
  EventLoop loop;
  Future<int> future = loop.create_future<int>();
  Task<int> task = loop.create_task(await_future(future));
  run_one_iteration(loop);
  future.cancel("stop now");
  try {
    run_until_complete(loop, task);
    FAIL() << "expected CancelledError";
  } catch (const CancelledError& e) {
    EXPECT_STREQ(e.what(), "stop now");
  }
  EXPECT_TRUE(task.cancelled());
}

Task<int> nested(int depth) {
  if (depth == 0) co_return 0;
  int below = co_await nested(depth - 1);
  co_return below + 1;
}

TEST(Task, InlineAwaitsChain) {
  EventLoop loop;
  auto outer = []() -> Task<int> {
    int a = co_await answer();
    int b = co_await add_one(a);
    co_return b;
  };
  EXPECT_EQ(run_until_complete(loop, outer()), 43);
}

// 100,000 frames awaiting each other inline: the trampoline keeps the stack flat
// (this overflows an 8 MiB stack if each await nests a call).
TEST(Task, HundredThousandNestedAwaitsUseConstantStack) {
  EventLoop loop;
  EXPECT_EQ(run_until_complete(loop, nested(100'000)), 100'000);
}

Task<int> nested_with_suspension(int depth, EventLoop* loop) {
  if (depth == 0) {
    co_await sleep(0);
    co_return 0;
  }
  int below = co_await nested_with_suspension(depth - 1, loop);
  co_return below + 1;
}

TEST(Task, DeepChainSuspendsAndResumesAtTheLeaf) {
  EventLoop loop;
  EXPECT_EQ(run_until_complete(loop, nested_with_suspension(10'000, &loop)), 10'000);
}

TEST(Task, AwaitingAScheduledTaskWaitsForIt) {
  EventLoop loop;
  auto parent = [](EventLoop* l) -> Task<int> {
    Task<int> child = l->create_task(nested_with_suspension(3, l));
    int value = co_await child;
    co_return value * 10;
  };
  EXPECT_EQ(run_until_complete(loop, parent(&loop)), 30);
}

TEST(Task, ThrowBeforeFirstAwait) {
  EventLoop loop;
  auto failing = []() -> Task<int> {
    throw std::logic_error("early");
    co_return 1;
  };
  Task<int> task = loop.create_task(failing());
  EXPECT_FALSE(task.done());
  run_one_iteration(loop);
  ASSERT_TRUE(task.done());
  EXPECT_FALSE(task.cancelled());
  EXPECT_THROW(task.result(), std::logic_error);

  // Awaited inline, the exception comes out of the co_await.
  auto outer = [](Task<int> inner) -> Task<std::string> {
    try {
      co_await inner;
    } catch (const std::logic_error& e) {
      co_return e.what();
    }
    co_return "no exception";
  };
  EXPECT_EQ(run_until_complete(loop, outer(failing())), "early");
}

TEST(Task, DoneCallbacksRunThroughTheLoop) {
  EventLoop loop;
  std::vector<std::string> order;
  Task<int> task = loop.create_task(answer());
  task.add_done_callback(
      [&](Task<int>& t) { order.push_back("first " + std::to_string(t.result())); });
  CallbackId removed = task.add_done_callback([&] { order.push_back("removed"); });
  task.add_done_callback([&] { order.push_back("second"); });
  EXPECT_EQ(task.remove_done_callback(removed), 1u);
  run_one_iteration(loop);  // the task completes and schedules its callbacks
  EXPECT_TRUE(task.done());
  EXPECT_TRUE(order.empty());
  run_one_iteration(loop);
  EXPECT_EQ(order, (std::vector<std::string>{"first 42", "second"}));
  // Added after completion: scheduled, not run inline.
  task.add_done_callback([&] { order.push_back("late"); });
  EXPECT_EQ(order.size(), 2u);
  run_one_iteration(loop);
  EXPECT_EQ(order.back(), "late");
}

TEST(Task, CancelWhileAwaitingCancelsTheFuture) {
  EventLoop loop;
  Future<int> future = loop.create_future<int>();
  Task<int> task = loop.create_task(await_future(future));
  run_one_iteration(loop);
  EXPECT_TRUE(task.cancel("bye"));
  EXPECT_TRUE(future.cancelled());
  EXPECT_FALSE(task.done());  // the wakeup goes through the loop
  EXPECT_THROW(run_until_complete(loop, task), CancelledError);
  EXPECT_TRUE(task.cancelled());
  EXPECT_FALSE(task.cancel());
  EXPECT_EQ(task.cancelling(), 1);
}

TEST(Task, CancelledErrorIsNotAStdException) {
  static_assert(!std::is_base_of_v<std::exception, CancelledError>);
  EventLoop loop;
  auto body = [](bool* swallowed) -> Task<void> {
    try {
      co_await sleep(10);
    } catch (const std::exception&) {
      *swallowed = true;
    }
  };
  bool swallowed = false;
  Task<void> task = loop.create_task(body(&swallowed));
  run_one_iteration(loop);
  task.cancel();
  EXPECT_THROW(run_until_complete(loop, task), CancelledError);
  EXPECT_FALSE(swallowed);
}

TEST(Task, CatchingCancellationLetsTheTaskGoOn) {
  EventLoop loop;
  auto body = [](EventLoop*) -> Task<int> {
    try {
      co_await sleep(10);
    } catch (const CancelledError&) {
      AnyTask self = current_task();
      EXPECT_EQ(self.cancelling(), 1);
      EXPECT_EQ(self.uncancel(), 0);
    }
    co_await sleep(0);
    co_return 5;
  };
  Task<int> task = loop.create_task(body(&loop));
  run_one_iteration(loop);
  task.cancel();
  EXPECT_EQ(run_until_complete(loop, task), 5);
  EXPECT_FALSE(task.cancelled());
  EXPECT_EQ(task.cancelling(), 0);
}

TEST(Task, CancelBeforeStartNeverRunsTheBody) {
  EventLoop loop;
  bool started = false;
  auto body = [](bool* flag) -> Task<void> {
    *flag = true;
    co_return;
  };
  Task<void> task = loop.create_task(body(&started));
  EXPECT_TRUE(task.cancel("early"));
  EXPECT_THROW(run_until_complete(loop, task), CancelledError);
  EXPECT_FALSE(started);
  EXPECT_TRUE(task.cancelled());
}

TEST(Task, CancelOfTheRunningTaskHitsItsNextAwait) {
  EventLoop loop;
  auto body = [](bool* after) -> Task<void> {
    current_task().cancel("self");
    co_await sleep(0);
    *after = true;
  };
  bool after = false;
  Task<void> task = loop.create_task(body(&after));
  EXPECT_THROW(run_until_complete(loop, task), CancelledError);
  EXPECT_FALSE(after);
}

TEST(Task, CancellingATaskCancelsTheTaskItAwaits) {
  EventLoop loop;
  auto child = []() -> Task<int> {
    co_await sleep(10);
    co_return 1;
  };
  auto parent = [](Task<int> inner) -> Task<int> { co_return co_await inner; };
  Task<int> inner = loop.create_task(child());
  Task<int> outer = loop.create_task(parent(inner));
  run_one_iteration(loop);
  outer.cancel();
  EXPECT_THROW(run_until_complete(loop, outer), CancelledError);
  EXPECT_TRUE(inner.cancelled());
}

TEST(Task, CurrentTaskAndAllTasks) {
  EventLoop loop;
  EXPECT_FALSE(current_task(loop).valid());
  auto body = [](EventLoop* l, AnyTask* seen) -> Task<void> {
    *seen = current_task(*l);
    co_await sleep(0);
  };
  AnyTask seen;
  Task<void> task = loop.create_task(body(&loop, &seen));
  Task<int> other = loop.create_task(answer());
  EXPECT_EQ(all_tasks(loop).size(), 2u);
  run_one_iteration(loop);
  EXPECT_TRUE(seen == task);
  EXPECT_FALSE(current_task(loop).valid());
  EXPECT_EQ(all_tasks(loop).size(), 1u);
  run_until_complete(loop, task);
  EXPECT_TRUE(all_tasks(loop).empty());
}

TEST(Task, UnretrievedExceptionIsReported) {
  EventLoop loop;
  std::vector<std::string> messages;
  loop.set_exception_handler(
      [&](EventLoop&, const ExceptionContext& context) { messages.push_back(context.message); });
  auto failing = []() -> Task<void> {
    co_await sleep(0);
    throw std::runtime_error("lost");
  };
  {
    Task<void> task = loop.create_task(failing(), "doomed");
    run_one_iteration(loop);
    run_one_iteration(loop);
    EXPECT_TRUE(task.done());
  }
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0], "Task exception was never retrieved (doomed)");

  // Retrieved: nothing reported.
  {
    Task<void> task = loop.create_task(failing());
    run_one_iteration(loop);
    run_one_iteration(loop);
    EXPECT_NE(task.exception(), nullptr);
  }
  EXPECT_EQ(messages.size(), 1u);
}

TEST(Task, FireAndForgetTaskKeepsRunning) {
  EventLoop loop;
  int result = 0;
  auto body = [](int* out) -> Task<void> {
    co_await sleep(0);
    co_await sleep(0.001);
    *out = 9;
  };
  (void)loop.create_task(body(&result));
  while (!all_tasks(loop).empty()) run_one_iteration(loop);
  EXPECT_EQ(result, 9);
}

TEST(Task, LazyCoroutineDroppedWithoutRunningDestroysItsFrame) {
  bool ran = false;
  auto body = [](std::shared_ptr<int> kept, bool* flag) -> Task<void> {
    (void)kept;
    *flag = true;
    co_return;
  };
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  {
    Task<void> lazy = body(std::move(token), &ran);
    EXPECT_FALSE(watch.expired());  // the frame holds the parameter
  }
  EXPECT_TRUE(watch.expired());
  EXPECT_FALSE(ran);
}

TEST(Task, ClosingTheLoopDestroysSuspendedFrames) {
  bool destroyed = false;
  bool inner_destroyed = false;
  Task<void> task;
  Future<int> future;
  {
    EventLoop loop;
    future = loop.create_future<int>();
    auto inner = [](Future<int> f, bool* flag) -> Task<int> {
      Guard guard{flag};
      co_return co_await f;
    };
    auto outer = [](Task<int> child, bool* flag) -> Task<void> {
      Guard guard{flag};
      // The frame holds a future whose callbacks hold the task: a cycle only close() breaks.
      co_await child;
    };
    auto cycle = [](EventLoop* l) -> Task<void> {
      Future<int> own = l->create_future<int>();
      co_await own;
    };
    task = loop.create_task(outer(inner(future, &inner_destroyed), &destroyed));
    (void)loop.create_task(cycle(&loop));
    run_one_iteration(loop);
    EXPECT_FALSE(destroyed);
  }
  EXPECT_TRUE(destroyed);
  EXPECT_TRUE(inner_destroyed);
  EXPECT_TRUE(task.done());
  EXPECT_TRUE(task.cancelled());
}

TEST(Task, AwaitingACoroutineTwiceIsAnError) {
  EventLoop loop;
  auto body = [](Task<int> shared) -> Task<int> {
    Task<int> copy = shared;
    int first = co_await shared;
    try {
      co_await copy;
    } catch (const RuntimeError&) {
      co_return first;
    }
    co_return -1;
  };
  EXPECT_EQ(run_until_complete(loop, body(answer())), 42);
}

// The example at the top of docs/coroutines.md.
Task<int> doc_fetch(int id) {
  co_await tulip::sleep(0.001);
  co_return id * 2;
}

Task<int> doc_amain() {
  EventLoop& loop = get_running_loop();
  Task<int> background = loop.create_task(doc_fetch(1), "fetch-1");
  int direct = co_await doc_fetch(2);
  auto [a, b] = co_await gather(doc_fetch(3), background);
  co_return direct + a + b;
}

TEST(Run, TheDocumentationExample) { EXPECT_EQ(run(doc_amain), 12); }

TEST(Run, ReturnsTheResultAndCancelsLeftovers) {
  bool leftover_cancelled = false;
  int result = run([&](EventLoop& loop) -> Task<int> {
    auto forever = [](bool* flag) -> Task<void> {
      try {
        co_await sleep(3600);
      } catch (const CancelledError&) {
        *flag = true;
        throw;
      }
    };
    (void)loop.create_task(forever(&leftover_cancelled));
    co_await sleep(0);
    co_return 3;
  });
  EXPECT_EQ(result, 3);
  EXPECT_TRUE(leftover_cancelled);
}

TEST(Run, RethrowsTheMainException) {
  EXPECT_THROW(run([]() -> Task<void> {
                 co_await sleep(0);
                 throw std::runtime_error("main failed");
               }),
               std::runtime_error);
}

TEST(Run, GetRunningLoopInsideATask) {
  EventLoop* seen = nullptr;
  run([&]() -> Task<void> {
    seen = &get_running_loop();
    co_return;
  });
  EXPECT_NE(seen, nullptr);
  EXPECT_THROW(get_running_loop(), RuntimeError);
}

}  // namespace
}  // namespace tulip
