// tulip::run's shutdown half (runners.hpp).
#include "tulip/runners.hpp"

#include <cstddef>
#include <exception>
#include <vector>

namespace tulip::detail {

void cancel_all_tasks(EventLoop& loop) {
  if (loop.is_closed()) return;
  std::vector<AnyTask> tasks = all_tasks(loop);
  if (tasks.empty()) return;
  std::size_t remaining = tasks.size();
  for (AnyTask& task : tasks) {
    task.cancel();
    task.add_done_callback([&] {
      if (--remaining == 0) loop.stop();
    });
  }
  // As asyncio: a task that refuses to finish keeps run() waiting.
  while (remaining > 0) loop.run_forever();
  for (AnyTask& task : tasks) {
    if (task.cancelled()) continue;
    if (std::exception_ptr error = task.exception()) {
      loop.call_exception_handler(
          {"unhandled exception during tulip::run() shutdown (" + task.get_name() + ")", error});
    }
  }
}

void shutdown_default_executor(EventLoop& loop) {
  // asyncio's constants.THREAD_JOIN_TIMEOUT.
  constexpr double kThreadJoinTimeout = 300.0;
  if (loop.is_closed()) return;
  loop.run_until_complete(loop.shutdown_default_executor(kThreadJoinTimeout));
}

}  // namespace tulip::detail
