// Threads the library starts for its own work (name lookups) run with every
// signal blocked.
//
// A signal sent to the process goes to any thread that does not block it. The
// library's signal handling belongs to the loop's thread (the self-pipe is
// read there), and asyncio, like Python, runs handlers on the main thread
// only. A worker that takes a signal is at best a detour; under
// ThreadSanitizer, which defers a signal until its thread next enters an
// intercepted call, an idle worker asleep on a condition variable keeps the
// signal forever and the loop never hears of it. Blocking everything in the
// workers leaves the signal to the threads the program made.
#pragma once

#include <pthread.h>
#include <signal.h>

#include <thread>
#include <utility>

namespace tulip::detail {

/// Starts std::thread(function, arguments...) with all signals blocked in the
/// new thread; the caller's own mask is unchanged when this returns.
template <class Function, class... Arguments>
std::thread start_background_thread(Function&& function, Arguments&&... arguments) {
  sigset_t everything;
  sigset_t previous;
  sigfillset(&everything);
  // A new thread inherits its creator's mask: block, create, restore.
  pthread_sigmask(SIG_SETMASK, &everything, &previous);
  try {
    std::thread thread(std::forward<Function>(function), std::forward<Arguments>(arguments)...);
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    return thread;
  } catch (...) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    throw;
  }
}

}  // namespace tulip::detail
