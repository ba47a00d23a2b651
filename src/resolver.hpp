// Resolver: getaddrinfo() off the loop's thread.
//
// getaddrinfo blocks (DNS can take tens of seconds), so it runs on a small
// pool of worker threads. Workers see only the question (host, port, family)
// and post the answer back with call_soon_threadsafe; what the caller wants
// done with it (a callable that may own loop objects) never leaves the loop's
// thread. Closing the loop does not wait for lookups in progress: idle workers
// are joined, busy ones detached, and a late answer finds the resolver shut
// down and is dropped.
//
// Numeric hosts never get here: resolve_address (address_resolution.hpp)
// parses them first.
//
// Thread-safety: resolve() and shutdown() on the loop's thread; the workers
// touch only the shared request queue (under its mutex).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tulip/detail/inline_function.hpp"
#include "tulip/socket_address.hpp"

namespace tulip {
class EventLoop;
}

namespace tulip::detail {

struct ResolveResult {
  std::vector<SocketAddress> addresses;  // in getaddrinfo's order
  std::string error;                     // empty on success: gai_strerror's text
};

/// What a lookup asks; also what a test's replacement lookup receives.
struct ResolveQuestion {
  std::string host;
  std::uint16_t port;
  int family;
  bool passive;  // for bind: an empty host means every interface
};

class Resolver {
 public:
  using Done = InlineFunction<void(ResolveResult)>;
  using Lookup = std::function<ResolveResult(const ResolveQuestion&)>;

  explicit Resolver(EventLoop& loop);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  /// Resolves host:port for TCP. `done` runs on the loop's thread, never
  /// inside this call; it is dropped unrun if the resolver shuts down first.
  void resolve(ResolveQuestion question, Done done);

  /// Drops every pending lookup's `done` (here, on the loop's thread) and lets
  /// the workers go without waiting for them. Idempotent.
  void shutdown() noexcept;

  /// Test hook: lookups run `lookup` instead of getaddrinfo.
  void set_lookup_for_testing(Lookup lookup);

 private:
  struct Shared;  // the part the worker threads share, outliving the resolver if need be

  void deliver(std::uint64_t id, ResolveResult result);

  EventLoop& loop_;
  std::shared_ptr<Shared> shared_;
  std::vector<std::thread> workers_;
  std::unordered_map<std::uint64_t, Done> pending_;
  std::uint64_t last_id_ = 0;
};

}  // namespace tulip::detail
