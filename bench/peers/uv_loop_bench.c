// Loop-overhead microbenchmarks for libuv, the peers of bench/loop_bench.cpp.
//
// libuv has no call_soon: the nearest "run this again soon" is an idle handle,
// whose callback runs once per loop iteration, so the chain measures one
// iteration per step. Timers: due timers fired, and a timer started then
// stopped. No batch queue and no futures exist in libuv.
// Prints "bench=<name> items_per_s=<rate>" per case.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <uv.h>

enum { kTimers = 1000 };

// Rates are per second of this process's CPU time, as Google Benchmark reports
// them for tulip and Asio: other load on the machine then matters less.
static uint64_t cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double seconds_since(uint64_t start) { return (double)(cpu_ns() - start) / 1e9; }

static int64_t remaining;

static void on_idle(uv_idle_t* idle) {
  if (--remaining == 0) uv_idle_stop(idle);
}

static double idle_chain(uv_loop_t* loop) {
  const int64_t steps = 2000000;
  uv_idle_t idle;
  uv_idle_init(loop, &idle);
  remaining = steps;
  uint64_t start = cpu_ns();
  uv_idle_start(&idle, on_idle);
  uv_run(loop, UV_RUN_DEFAULT);
  double rate = (double)steps / seconds_since(start);
  uv_close((uv_handle_t*)&idle, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  return rate;
}

static int64_t fired;

static void on_timer(uv_timer_t* timer) {
  (void)timer;
  ++fired;
}

static double timers_fired(uv_loop_t* loop) {
  static uv_timer_t timers[kTimers];
  for (int i = 0; i < kTimers; ++i) uv_timer_init(loop, &timers[i]);
  const int rounds = 2000;
  uint64_t start = cpu_ns();
  for (int r = 0; r < rounds; ++r) {
    for (int i = 0; i < kTimers; ++i) uv_timer_start(&timers[(i * 7919) % kTimers], on_timer, 0, 0);
    uv_run(loop, UV_RUN_DEFAULT);
  }
  double rate = (double)rounds * kTimers / seconds_since(start);
  for (int i = 0; i < kTimers; ++i) uv_close((uv_handle_t*)&timers[i], NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  return rate;
}

static double schedule_cancel(uv_loop_t* loop) {
  uv_timer_t timer;
  uv_timer_init(loop, &timer);
  const int64_t count = 20000000;
  uint64_t start = cpu_ns();
  for (int64_t i = 0; i < count; ++i) {
    uv_timer_start(&timer, on_timer, 30000, 0);
    uv_timer_stop(&timer);
  }
  double rate = (double)count / seconds_since(start);
  uv_close((uv_handle_t*)&timer, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  return rate;
}

int main(void) {
  uv_loop_t* loop = uv_default_loop();
  printf("bench=call_soon_chain items_per_s=%.0f\n", idle_chain(loop));
  printf("bench=timers_fired items_per_s=%.0f\n", timers_fired(loop));
  printf("bench=schedule_cancel items_per_s=%.0f\n", schedule_cancel(loop));
  if (fired < 0) return 1;
  return uv_loop_close(loop) == 0 ? 0 : 1;
}
