// Coroutine-layer microbenchmarks: task create + run, co_await of a done
// Future, a co_await sleep(0) chain next to the call_soon chain it is built
// on, and Queue put/get ping-pong between two tasks.
//
// Not part of the test run. Build in Release and run:
//   build-release/bench/tulip-bench-coro --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include <cstdint>

#include "tulip/event_loop.hpp"
#include "tulip/future.hpp"
#include "tulip/queues.hpp"
#include "tulip/sleep.hpp"
#include "tulip/task.hpp"

namespace {

void run_once(tulip::EventLoop& loop) {
  loop.stop();
  loop.run_forever();
}

tulip::Task<int> trivial() { co_return 1; }

// asyncio: `loop.create_task(coro())` for a coroutine that returns at once,
// run to completion. A batch of 1000 tasks per loop iteration.
void BM_TaskCreateAndRun(benchmark::State& state) {
  tulip::EventLoop loop;
  constexpr std::int64_t kBatch = 1000;
  for (auto _ : state) {
    for (std::int64_t i = 0; i < kBatch; ++i) (void)loop.create_task(trivial());
    run_once(loop);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_TaskCreateAndRun);

tulip::Task<std::int64_t> await_done(tulip::Future<int> future, std::int64_t count) {
  std::int64_t sum = 0;
  for (std::int64_t i = 0; i < count; ++i) sum += co_await future;
  co_return sum;
}

// `await fut` on a future that is already done: no suspension.
void BM_AwaitDoneFuture(benchmark::State& state) {
  tulip::EventLoop loop;
  tulip::Future<int> future = loop.create_future<int>();
  future.set_result(1);
  constexpr std::int64_t kAwaits = 100'000;
  for (auto _ : state) {
    auto task = loop.create_task(await_done(future, kAwaits));
    run_once(loop);
    benchmark::DoNotOptimize(task.result());
  }
  state.SetItemsProcessed(state.iterations() * kAwaits);
}
BENCHMARK(BM_AwaitDoneFuture);

tulip::Task<void> sleep_zero_chain(std::int64_t steps) {
  for (std::int64_t i = 0; i < steps; ++i) co_await tulip::sleep(0);
}

// `await asyncio.sleep(0)` in a loop: one loop iteration per step.
void BM_SleepZeroChain(benchmark::State& state) {
  tulip::EventLoop loop;
  constexpr std::int64_t kSteps = 1'000'000;
  for (auto _ : state) {
    auto task = loop.create_task(sleep_zero_chain(kSteps));
    tulip::run_until_complete(loop, task);
  }
  state.SetItemsProcessed(state.iterations() * kSteps);
}
BENCHMARK(BM_SleepZeroChain)->Unit(benchmark::kMillisecond);

// The same shape with plain callbacks (loop_bench.cpp's chain), for the ratio.
void BM_CallSoonChainReference(benchmark::State& state) {
  tulip::EventLoop loop;
  constexpr std::int64_t kChain = 1'000'000;
  for (auto _ : state) {
    std::int64_t remaining = kChain;
    struct Step {
      tulip::EventLoop* loop;
      std::int64_t* remaining;
      void operator()() const {
        if (--*remaining == 0) {
          loop->stop();
        } else {
          loop->call_soon(*this);
        }
      }
    };
    loop.call_soon(Step{&loop, &remaining});
    loop.run_forever();
  }
  state.SetItemsProcessed(state.iterations() * kChain);
}
BENCHMARK(BM_CallSoonChainReference)->Unit(benchmark::kMillisecond);

tulip::Task<void> ping(tulip::Queue<int>* out, tulip::Queue<int>* in, std::int64_t rounds) {
  for (std::int64_t i = 0; i < rounds; ++i) {
    co_await out->put(static_cast<int>(i));
    (void)co_await in->get();
  }
}

tulip::Task<void> pong(tulip::Queue<int>* in, tulip::Queue<int>* out, std::int64_t rounds) {
  for (std::int64_t i = 0; i < rounds; ++i) co_await out->put(co_await in->get());
}

// Two tasks bouncing an item through two queues: one round trip per item.
void BM_QueuePingPong(benchmark::State& state) {
  tulip::EventLoop loop;
  constexpr std::int64_t kRounds = 100'000;
  for (auto _ : state) {
    tulip::Queue<int> there;
    tulip::Queue<int> back;
    auto a = loop.create_task(ping(&there, &back, kRounds));
    auto b = loop.create_task(pong(&there, &back, kRounds));
    tulip::run_until_complete(loop, a);
    tulip::run_until_complete(loop, b);
  }
  state.SetItemsProcessed(state.iterations() * kRounds);
}
BENCHMARK(BM_QueuePingPong)->Unit(benchmark::kMillisecond);

tulip::Task<int> leaf_value() { co_return 1; }

tulip::Task<std::int64_t> await_inline(std::int64_t count) {
  std::int64_t sum = 0;
  for (std::int64_t i = 0; i < count; ++i) sum += co_await leaf_value();
  co_return sum;
}

// `await coro()` of a coroutine that returns at once: a frame made, run
// inline and destroyed (recycled) per await.
void BM_AwaitInlineCoroutine(benchmark::State& state) {
  tulip::EventLoop loop;
  constexpr std::int64_t kAwaits = 100'000;
  for (auto _ : state) {
    auto task = loop.create_task(await_inline(kAwaits));
    run_once(loop);
    benchmark::DoNotOptimize(task.result());
  }
  state.SetItemsProcessed(state.iterations() * kAwaits);
}
BENCHMARK(BM_AwaitInlineCoroutine);

}  // namespace

BENCHMARK_MAIN();
