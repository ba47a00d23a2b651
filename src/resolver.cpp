#include "resolver.hpp"

#include <netdb.h>

#include <memory>

#include "tulip/errors.hpp"
#include "tulip/event_loop.hpp"

namespace tulip::detail {
namespace {

ResolveResult lookup(const std::string& host, std::uint16_t port, int family, bool passive) {
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = passive ? AI_PASSIVE : AI_ADDRCONFIG;
  std::string service = std::to_string(port);
  addrinfo* list = nullptr;
  int status = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &list);
  ResolveResult result;
  if (status != 0) {
    result.error = ::gai_strerror(status);
    return result;
  }
  for (addrinfo* entry = list; entry != nullptr; entry = entry->ai_next) {
    SocketAddress address(entry->ai_addr, entry->ai_addrlen);
    bool seen = false;
    for (const SocketAddress& existing : result.addresses) seen = seen || existing == address;
    if (!seen) result.addresses.push_back(address);
  }
  ::freeaddrinfo(list);
  if (result.addresses.empty()) result.error = "no address found";
  return result;
}

}  // namespace

void Resolver::resolve(std::string host, std::uint16_t port, int family, bool passive, Done done) {
  std::lock_guard lock(mutex_);
  queue_.push_back(Request{std::move(host), port, family, passive, std::move(done)});
  // A worker per concurrent lookup, up to a few: one slow DNS answer must not
  // hold up every other connection.
  if (idle_workers_ == 0 && workers_.size() < kMaxWorkers) {
    workers_.emplace_back([this] { work(); });
  } else {
    wake_.notify_one();
  }
}

void Resolver::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    ++idle_workers_;
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    --idle_workers_;
    if (stopping_) return;
    Request request = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    ResolveResult result = lookup(request.host, request.port, request.family, request.passive);
    // The Done callable moves to the loop thread with the answer; it is only
    // ever run and destroyed there, or dropped here if the loop closed.
    auto delivery = std::make_unique<std::pair<Done, ResolveResult>>(std::move(request.done),
                                                                     std::move(result));
    lock.lock();
    if (stopping_) return;
    try {
      loop_.call_soon_threadsafe([delivery = std::shared_ptr(std::move(delivery))]() mutable {
        delivery->first(std::move(delivery->second));
      });
    } catch (const RuntimeError&) {
      return;  // the loop closed meanwhile; nobody is waiting for the answer
    }
  }
}

void Resolver::shutdown() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  wake_.notify_all();
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
}

}  // namespace tulip::detail
