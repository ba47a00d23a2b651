// LoopInternals: the parts of an EventLoop that only tulip's own sources see.
//
// The public EventLoop keeps the hot scheduling state inline (so call_soon can
// be inlined); everything else a loop owns lives here, out of the public
// header, one concern per member: the registry of live transports, attempts
// and servers; the add_reader/add_writer watchers; the signal handlers; the
// executors and the resolver that uses them.
//
// Thread-safety: loop thread only.
#pragma once

#include <memory>
#include <unordered_map>

#include "child_watcher.hpp"
#include "fd_watcher.hpp"
#include "io_backend.hpp"
#include "loop_executors.hpp"
#include "loop_registry.hpp"
#include "resolver.hpp"
#include "tulip/event_loop.hpp"

namespace tulip::detail {

struct LoopInternals {
  LoopInternals(EventLoop& owner, IoBackend& io)
      : loop(owner), backend(io), executors(owner), resolver(owner) {}

  /// Releases everything the loop holds: the registry (servers, attempts,
  /// transports), executor jobs (name lookups among them), signal handlers and
  /// descriptor watchers.
  /// Called by EventLoop::close().
  void shutdown();

  EventLoop& loop;
  IoBackend& backend;
  LoopRegistry registry;
  std::unordered_map<int, std::shared_ptr<FdWatcher>> fd_watchers;
  std::unordered_map<int, std::shared_ptr<Callback>> signal_handlers;
  LoopExecutors executors;
  Resolver resolver;
  // Children watched through SIGCHLD where the kernel has no pidfd.
  SigchldChildren sigchld_children;
  bool sigchld_handler_installed = false;
};

/// Signal handling (signal_handlers.cpp).
void uninstall_all_signal_handlers(EventLoop& loop) noexcept;

}  // namespace tulip::detail
