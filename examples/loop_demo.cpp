// A tour of the core loop: callbacks, timers, a future resolved from another thread.
#include <cstdio>
#include <thread>

#include "tulip/tulip.hpp"

int main() {
  tulip::EventLoop loop;
  loop.call_soon([] { std::puts("call_soon: runs on the next iteration"); });
  loop.call_later(0.02, [] { std::puts("call_later(0.02): a timer fired"); });
  tulip::TimerHandle cancelled = loop.call_later(0.01, [] { std::puts("never printed"); });
  cancelled.cancel();

  tulip::Future<int> answer = loop.create_future<int>();
  answer.add_done_callback(
      [](tulip::Future<int>& f) { std::printf("done callback: result %d\n", f.result()); });
  std::thread worker([&loop, answer]() mutable {
    loop.call_soon_threadsafe([answer]() mutable { answer.set_result(42); });
  });
  int value = loop.run_until_complete(answer);
  worker.join();
  loop.run_until_complete([&] {
    auto later = loop.create_future();
    loop.call_later(0.03, [later]() mutable { later.set_result(); });
    return later;
  }());
  std::printf("run_until_complete returned %d\n", value);
  loop.close();
  return 0;
}
