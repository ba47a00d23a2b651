// Coroutine microbenchmarks for Boost.Asio's C++20 coroutines (awaitable,
// co_spawn, use_awaitable), the peers of bench/coro_bench.cpp, with the same
// benchmark names so the runner files them side by side:
//
//   BM_TaskCreateAndRun        co_spawn(io, coro(), detached), 1000 per run of the loop
//   BM_SleepZeroChain          co_await post(executor, use_awaitable): one trip
//                              through the scheduler's queue per step, Asio's sleep(0)
//   BM_CallSoonChainReference  the same chain with plain handlers (post), for the ratio
//   BM_QueuePingPong           two coroutines bouncing an item through two
//                              experimental::channel<void(error_code, int)> of capacity 1
//   BM_AwaitInlineCoroutine    co_await of an awaitable<int> that returns at once
//
// Asio has no future to await that may already be done (std::future through
// use_future blocks a thread; experimental::promise is one-shot and awaiting it
// is itself an asynchronous operation), so tulip's BM_AwaitDoneFuture has no
// counterpart here; its nearest Asio shape is BM_AwaitInlineCoroutine.
//
// Single-threaded: io_context(1), as the loop benchmarks.
#include <benchmark/benchmark.h>

#include <boost/asio.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <cstdint>

namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using Channel = asio::experimental::channel<void(boost::system::error_code, int)>;

awaitable<int> trivial() { co_return 1; }

void BM_TaskCreateAndRun(benchmark::State& state) {
  asio::io_context io(1);
  constexpr std::int64_t kBatch = 1000;
  for (auto _ : state) {
    for (std::int64_t i = 0; i < kBatch; ++i) asio::co_spawn(io, trivial(), asio::detached);
    io.run();
    io.restart();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_TaskCreateAndRun);

awaitable<void> sleep_zero_chain(std::int64_t steps) {
  auto executor = co_await asio::this_coro::executor;
  for (std::int64_t i = 0; i < steps; ++i) co_await asio::post(executor, use_awaitable);
}

void BM_SleepZeroChain(benchmark::State& state) {
  asio::io_context io(1);
  constexpr std::int64_t kSteps = 1'000'000;
  for (auto _ : state) {
    asio::co_spawn(io, sleep_zero_chain(kSteps), asio::detached);
    io.run();
    io.restart();
  }
  state.SetItemsProcessed(state.iterations() * kSteps);
}
BENCHMARK(BM_SleepZeroChain)->Unit(benchmark::kMillisecond);

// Each handler posts the next one (asio_loop_bench.cpp's BM_PostChain).
void BM_CallSoonChainReference(benchmark::State& state) {
  asio::io_context io(1);
  constexpr std::int64_t kChain = 1'000'000;
  for (auto _ : state) {
    std::int64_t remaining = kChain;
    struct Step {
      asio::io_context* io;
      std::int64_t* remaining;
      void operator()() const {
        if (--*remaining != 0) asio::post(*io, *this);
      }
    };
    asio::post(io, Step{&io, &remaining});
    io.run();
    io.restart();
  }
  state.SetItemsProcessed(state.iterations() * kChain);
}
BENCHMARK(BM_CallSoonChainReference)->Unit(benchmark::kMillisecond);

awaitable<void> ping(Channel& out, Channel& in, std::int64_t rounds) {
  for (std::int64_t i = 0; i < rounds; ++i) {
    co_await out.async_send(boost::system::error_code{}, static_cast<int>(i), use_awaitable);
    (void)co_await in.async_receive(use_awaitable);
  }
}

awaitable<void> pong(Channel& in, Channel& out, std::int64_t rounds) {
  for (std::int64_t i = 0; i < rounds; ++i) {
    int item = co_await in.async_receive(use_awaitable);
    co_await out.async_send(boost::system::error_code{}, item, use_awaitable);
  }
}

void BM_QueuePingPong(benchmark::State& state) {
  asio::io_context io(1);
  constexpr std::int64_t kRounds = 100'000;
  for (auto _ : state) {
    // Capacity 1: a send completes at once while the item waits for its
    // receiver, as asyncio.Queue's put does; one item is in flight at a time.
    Channel there(io, 1);
    Channel back(io, 1);
    asio::co_spawn(io, ping(there, back, kRounds), asio::detached);
    asio::co_spawn(io, pong(there, back, kRounds), asio::detached);
    io.run();
    io.restart();
  }
  state.SetItemsProcessed(state.iterations() * kRounds);
}
BENCHMARK(BM_QueuePingPong)->Unit(benchmark::kMillisecond);

awaitable<std::int64_t> await_inline(std::int64_t count) {
  std::int64_t sum = 0;
  for (std::int64_t i = 0; i < count; ++i) sum += co_await trivial();
  co_return sum;
}

void BM_AwaitInlineCoroutine(benchmark::State& state) {
  asio::io_context io(1);
  constexpr std::int64_t kAwaits = 100'000;
  std::int64_t result = 0;
  for (auto _ : state) {
    asio::co_spawn(io, await_inline(kAwaits),
                   [&result](std::exception_ptr, std::int64_t sum) { result = sum; });
    io.run();
    io.restart();
    benchmark::DoNotOptimize(result);
  }
  state.SetItemsProcessed(state.iterations() * kAwaits);
}
BENCHMARK(BM_AwaitInlineCoroutine);

}  // namespace

BENCHMARK_MAIN();
