// Test support: SIGPIPE as the tests of broken pipes watch it.
#pragma once

#include <pthread.h>
#include <signal.h>

namespace tulip::testing {

/// True if a SIGPIPE is pending for this thread or the process.
inline bool sigpipe_pending() {
  sigset_t pending;
  sigpending(&pending);
  return sigismember(&pending, SIGPIPE) == 1;
}

/// True if this thread blocks SIGPIPE.
inline bool sigpipe_blocked() {
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, SIGPIPE) == 1;
}

/// SIGPIPE at its default action, which ends the process, while it lives: the
/// tests run with it, so a single raised SIGPIPE fails the whole binary loudly.
struct DefaultSigpipe {
  DefaultSigpipe() {
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    sigaction(SIGPIPE, &action, &previous);
  }
  ~DefaultSigpipe() { sigaction(SIGPIPE, &previous, nullptr); }
  DefaultSigpipe(const DefaultSigpipe&) = delete;
  DefaultSigpipe& operator=(const DefaultSigpipe&) = delete;
  struct sigaction previous {};
};

}  // namespace tulip::testing
