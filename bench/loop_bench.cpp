// Loop-overhead microbenchmarks: call_soon chains, timers, schedule+cancel, futures.
//
// Not part of the test run. Build in Release and run:
//   build-release/bench/tulip-bench-loop --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include "tulip/event_loop.hpp"
#include "tulip/future.hpp"

namespace {

// A chain: each callback schedules the next, as asyncio's call_soon benchmark does.
void BM_CallSoonChain(benchmark::State& state) {
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
BENCHMARK(BM_CallSoonChain)->Unit(benchmark::kMillisecond);

// Many independent callbacks in one batch.
void BM_CallSoonBatch(benchmark::State& state) {
  tulip::EventLoop loop;
  const std::int64_t batch = state.range(0);
  std::int64_t ran = 0;
  for (auto _ : state) {
    for (std::int64_t i = 0; i < batch; ++i) loop.call_soon([&ran] { ++ran; });
    loop.stop();
    loop.run_forever();
  }
  benchmark::DoNotOptimize(ran);
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_CallSoonBatch)->Arg(1000);

// Timers scheduled and fired: deadlines already due, in shuffled order.
void BM_TimersScheduledAndFired(benchmark::State& state) {
  tulip::EventLoop loop;
  const std::int64_t count = state.range(0);
  std::int64_t fired = 0;
  for (auto _ : state) {
    double base = loop.time() - 1.0;
    for (std::int64_t i = 0; i < count; ++i) {
      loop.call_at(base - static_cast<double>((i * 7919) % count) * 1e-6, [&fired] { ++fired; });
    }
    loop.stop();
    loop.run_forever();
  }
  benchmark::DoNotOptimize(fired);
  state.SetItemsProcessed(state.iterations() * count);
}
BENCHMARK(BM_TimersScheduledAndFired)->Arg(1000);

// Schedule a timer and cancel it at once, the pattern of timeouts that never fire.
void BM_TimerScheduleCancel(benchmark::State& state) {
  tulip::EventLoop loop;
  std::int64_t n = 0;
  for (auto _ : state) {
    loop.call_later(30.0, [] {}).cancel();
    if (++n % 1024 == 0) {
      loop.stop();
      loop.run_forever();
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TimerScheduleCancel);

// A future created, given a done callback, resolved, and the callback run.
void BM_FutureResolveAndCallback(benchmark::State& state) {
  tulip::EventLoop loop;
  const std::int64_t batch = 1000;
  std::int64_t sum = 0;
  for (auto _ : state) {
    for (std::int64_t i = 0; i < batch; ++i) {
      tulip::Future<int> future = loop.create_future<int>();
      future.add_done_callback([&sum](tulip::Future<int>& f) { sum += f.result(); });
      future.set_result(1);
    }
    loop.stop();
    loop.run_forever();
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_FutureResolveAndCallback);

}  // namespace

BENCHMARK_MAIN();
