// Resolver: getaddrinfo() off the loop's thread.
//
// getaddrinfo blocks (DNS can take seconds), so it runs on a small pool of
// worker threads; the answer comes back through call_soon_threadsafe, the
// loop's one cross-thread entry. Numeric hosts never get here: callers parse
// them with SocketAddress::parse first.
//
// Thread-safety: resolve() and shutdown() on the loop's thread; the workers
// touch only the request queue (under its mutex) and call_soon_threadsafe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
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

class Resolver {
 public:
  using Done = InlineFunction<void(ResolveResult)>;

  explicit Resolver(EventLoop& loop) : loop_(loop) {}
  ~Resolver() { shutdown(); }
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  /// Resolves host:port for TCP (`passive`: for bind, an empty host means every
  /// interface). `done` runs on the loop's thread, never inside this call.
  void resolve(std::string host, std::uint16_t port, int family, bool passive, Done done);

  /// Stops the workers, waiting for lookups in progress; their answers are dropped.
  void shutdown();

 private:
  static constexpr std::size_t kMaxWorkers = 4;

  struct Request {
    std::string host;
    std::uint16_t port;
    int family;
    bool passive;
    Done done;
  };

  void work();

  EventLoop& loop_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Request> queue_;
  std::vector<std::thread> workers_;
  std::size_t idle_workers_ = 0;
  bool stopping_ = false;
};

}  // namespace tulip::detail
