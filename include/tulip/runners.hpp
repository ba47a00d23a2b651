// run(): asyncio.run for tulip.
//
// tulip::run(main) makes a fresh EventLoop, runs main's coroutine as a task
// until it is done, then cancels every task still pending and runs the loop
// until they have finished, reports those that failed to the exception
// handler, shuts the default executor down (waiting up to 300 seconds for its
// threads, as asyncio.run does), closes the loop, and returns main's result
// (or rethrows its exception / CancelledError).
//
// `main` is a callable returning a Task<T>, taking the loop (EventLoop&) or
// nothing (then get_running_loop() gives the loop inside the coroutine). run()
// keeps the callable alive until it returns, so a capturing lambda is safe here.
//
// Thread-safety: runs the loop on the calling thread.
#pragma once

#include <exception>
#include <type_traits>
#include <utility>

#include "tulip/event_loop.hpp"
#include "tulip/export.hpp"
#include "tulip/task.hpp"

namespace tulip {
namespace detail {

/// asyncio.runners._cancel_all_tasks: cancel what is left and let it finish.
TULIP_API void cancel_all_tasks(EventLoop& loop);

/// asyncio.run's last step: shut the default executor down, waiting up to
/// 300 seconds (asyncio.constants.THREAD_JOIN_TIMEOUT) for its threads.
TULIP_API void shutdown_default_executor(EventLoop& loop);

template <class F>
auto invoke_main(F& main, EventLoop& loop) {
  if constexpr (std::is_invocable_v<F&, EventLoop&>) {
    return main(loop);
  } else {
    return main();
  }
}

}  // namespace detail

template <class F>
auto run(F main) {
  EventLoop loop;
  auto task = loop.create_task(detail::invoke_main(main, loop), "main");
  using T = typename decltype(task)::value_type;
  struct Finally {
    EventLoop& loop;
    ~Finally() {
      try {
        detail::cancel_all_tasks(loop);
        detail::shutdown_default_executor(loop);
      } catch (...) {
        // Running the loop for the clean-up failed: close() below still
        // destroys whatever is left; there is no caller left to tell.
      }
      loop.close();
    }
  } finally{loop};
  if constexpr (std::is_void_v<T>) {
    run_until_complete(loop, task);
  } else {
    return run_until_complete(loop, task);
  }
}

}  // namespace tulip
