// Steady state allocates nothing: frames and task states are recycled.
//
// A separate test binary, because it replaces the global operator new to count.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdlib>
#include <new>

#include "tulip/sleep.hpp"
#include "tulip/task.hpp"

namespace {
thread_local std::size_t t_allocations = 0;
}

void* operator new(std::size_t size) {
  ++t_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return ::operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace tulip {
namespace {

Task<int> child() {
  co_await sleep(0);
  co_return 1;
}

Task<int> leaf(int value) { co_return value; }

// Creates a task, awaits it, and an inline coroutine, `rounds` times.
Task<int> cycles(EventLoop* loop, int rounds, std::size_t* allocations_at_half) {
  int sum = 0;
  for (int i = 0; i < rounds; ++i) {
    if (i == rounds / 2) *allocations_at_half = t_allocations;
    Task<int> task = loop->create_task(child());
    sum += co_await task;
    sum += co_await leaf(1);
  }
  co_return sum;
}

TEST(TaskAllocation, SteadyStateCreateAwaitCompleteAllocatesNothing) {
  EventLoop loop;
  std::size_t at_half = 0;
  constexpr int kRounds = 2000;
  Task<int> task = loop.create_task(cycles(&loop, kRounds, &at_half));
  while (!task.done()) {
    loop.stop();
    loop.run_forever();
  }
  std::size_t at_end = t_allocations;
  EXPECT_EQ(task.result(), 2 * kRounds);
  // The second half of the rounds ran on recycled frames, states and nodes.
  EXPECT_EQ(at_end - at_half, 0u);
}

}  // namespace
}  // namespace tulip
