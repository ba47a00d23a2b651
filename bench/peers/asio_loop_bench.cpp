// Loop-overhead microbenchmarks for Boost.Asio, the peers of bench/loop_bench.cpp:
// a chain of post() calls on io_context(1), a batch of posts, due timers fired,
// and a timer scheduled then cancelled. Asio has no callback-style future, so
// that case has no counterpart here.
#include <benchmark/benchmark.h>

#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <deque>

namespace {

namespace asio = boost::asio;

// Each handler posts the next one, as tulip's call_soon chain does.
void BM_PostChain(benchmark::State& state) {
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
BENCHMARK(BM_PostChain)->Unit(benchmark::kMillisecond);

void BM_PostBatch(benchmark::State& state) {
  asio::io_context io(1);
  const std::int64_t batch = state.range(0);
  std::int64_t ran = 0;
  for (auto _ : state) {
    for (std::int64_t i = 0; i < batch; ++i) asio::post(io, [&ran] { ++ran; });
    io.run();
    io.restart();
  }
  benchmark::DoNotOptimize(ran);
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_PostBatch)->Arg(1000);

// Deadlines already due, in shuffled order; the timer objects are reused.
void BM_TimersScheduledAndFired(benchmark::State& state) {
  asio::io_context io(1);
  const std::int64_t count = state.range(0);
  std::deque<asio::steady_timer> timers;
  for (std::int64_t i = 0; i < count; ++i) timers.emplace_back(io);
  std::int64_t fired = 0;
  for (auto _ : state) {
    auto base = std::chrono::steady_clock::now() - std::chrono::seconds(1);
    for (std::int64_t i = 0; i < count; ++i) {
      timers[i].expires_at(base - std::chrono::microseconds((i * 7919) % count));
      timers[i].async_wait([&fired](boost::system::error_code) { ++fired; });
    }
    io.run();
    io.restart();
  }
  benchmark::DoNotOptimize(fired);
  state.SetItemsProcessed(state.iterations() * count);
}
BENCHMARK(BM_TimersScheduledAndFired)->Arg(1000);

// A timeout that never fires: schedule, then cancel (Asio then runs the handler
// with operation_aborted, which the loop must do too).
void BM_TimerScheduleCancel(benchmark::State& state) {
  asio::io_context io(1);
  asio::steady_timer timer(io);
  std::int64_t n = 0;
  for (auto _ : state) {
    timer.expires_after(std::chrono::seconds(30));
    timer.async_wait([](boost::system::error_code) {});
    timer.cancel();
    if (++n % 1024 == 0) {
      io.run();
      io.restart();
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TimerScheduleCancel);

}  // namespace

BENCHMARK_MAIN();
