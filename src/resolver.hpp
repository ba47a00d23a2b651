// Resolver: getaddrinfo() and getnameinfo() off the loop's thread.
//
// These calls block (DNS can take tens of seconds), so each runs as a job on
// the loop's default executor (loop_executors.hpp): one pool of threads for
// every blocking thing the loop does, as asyncio runs its lookups through
// run_in_executor. The job sees only the question (host, port, family) and
// keeps the answer; what the caller wants done with it (a callable that may
// own loop objects) never leaves the loop's thread. Closing the loop does not
// wait for lookups in progress: their late answers are dropped.
//
// Numeric hosts never get here: resolve_address (address_resolution.hpp)
// parses them first.
//
// Thread-safety: loop thread only; the lookup itself runs on a worker and
// touches nothing but its question and answer.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tulip/address_info.hpp"
#include "tulip/detail/inline_function.hpp"
#include "tulip/socket_address.hpp"

namespace tulip {
class EventLoop;
}

namespace tulip::detail {

struct ResolveResult {
  std::vector<SocketAddress> addresses;  // in getaddrinfo's order
  std::string error;                     // empty on success: gai_strerror's text
  int error_code = 0;                    // the EAI_* code behind `error`, if any
  std::vector<AddressInfo> entries;      // kAddressInfo: every answer, as asked
  NameInfo name;                         // kNameInfo: the answer
};

/// What a lookup asks; also what a test's replacement lookup receives.
struct ResolveQuestion {
  /// kConnect: the addresses create_connection / create_server use (TCP);
  /// kAddressInfo: loop.getaddrinfo, every field as asked; kNameInfo: loop.getnameinfo.
  enum Kind { kConnect, kAddressInfo, kNameInfo };

  std::string host;
  std::uint16_t port = 0;
  int family = 0;
  bool passive = false;  // for bind: an empty host means every interface
  Kind kind = kConnect;
  std::string service;  // kAddressInfo: the port or service name ("" for none)
  int type = 0;         // kAddressInfo: hints
  int protocol = 0;
  int flags = 0;          // kAddressInfo: AI_* flags; kNameInfo: NI_* flags
  SocketAddress address;  // kNameInfo: the address to name
};

class Resolver {
 public:
  using Done = InlineFunction<void(ResolveResult)>;
  using Lookup = std::function<ResolveResult(const ResolveQuestion&)>;

  explicit Resolver(EventLoop& loop) : loop_(loop) {}
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  /// Answers `question` (host:port for TCP, or a getaddrinfo / getnameinfo
  /// call as asked). `done` runs on the loop's thread, never inside this call;
  /// it is dropped unrun if the loop closes first. If the default executor
  /// was shut down, `done` gets that as the lookup's error.
  void resolve(ResolveQuestion question, Done done);

  /// Test hook: lookups from now on run `lookup` instead of the C library's.
  void set_lookup_for_testing(Lookup lookup) { lookup_ = std::move(lookup); }

 private:
  EventLoop& loop_;
  Lookup lookup_;  // empty: the C library's lookups
};

}  // namespace tulip::detail
