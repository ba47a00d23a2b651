#include "resolver.hpp"

#include <netdb.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "background_thread.hpp"
#include "loop_access.hpp"
#include "loop_internals.hpp"
#include "tulip/errors.hpp"
#include "tulip/event_loop.hpp"

namespace tulip::detail {
namespace {

constexpr std::size_t kMaxWorkers = 4;

ResolveResult address_info_lookup(const ResolveQuestion& question) {
  addrinfo hints{};
  hints.ai_family = question.family;
  hints.ai_socktype = question.type;
  hints.ai_protocol = question.protocol;
  hints.ai_flags = question.flags;
  addrinfo* list = nullptr;
  int status =
      ::getaddrinfo(question.host.empty() ? nullptr : question.host.c_str(),
                    question.service.empty() ? nullptr : question.service.c_str(), &hints, &list);
  ResolveResult result;
  if (status != 0) {
    result.error = ::gai_strerror(status);
    result.error_code = status;
    return result;
  }
  for (addrinfo* entry = list; entry != nullptr; entry = entry->ai_next) {
    result.entries.push_back(AddressInfo{entry->ai_family, entry->ai_socktype, entry->ai_protocol,
                                         entry->ai_canonname ? entry->ai_canonname : "",
                                         SocketAddress(entry->ai_addr, entry->ai_addrlen)});
  }
  ::freeaddrinfo(list);
  return result;
}

ResolveResult name_info_lookup(const ResolveQuestion& question) {
  char host[NI_MAXHOST];
  char service[NI_MAXSERV];
  int status = ::getnameinfo(question.address.data(), question.address.size(), host, sizeof(host),
                             service, sizeof(service), question.flags);
  ResolveResult result;
  if (status != 0) {
    result.error = ::gai_strerror(status);
    result.error_code = status;
    return result;
  }
  result.name = NameInfo{host, service};
  return result;
}

ResolveResult getaddrinfo_lookup(const ResolveQuestion& question) {
  if (question.kind == ResolveQuestion::kAddressInfo) return address_info_lookup(question);
  if (question.kind == ResolveQuestion::kNameInfo) return name_info_lookup(question);
  addrinfo hints{};
  hints.ai_family = question.family;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = question.passive ? AI_PASSIVE : AI_ADDRCONFIG;
  std::string service = std::to_string(question.port);
  addrinfo* list = nullptr;
  int status = ::getaddrinfo(question.host.empty() ? nullptr : question.host.c_str(),
                             service.c_str(), &hints, &list);
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

struct Resolver::Shared {
  struct Request {
    std::uint64_t id;
    ResolveQuestion question;
  };

  std::mutex mutex;
  std::condition_variable wake;
  std::deque<Request> queue;
  EventLoop* loop;  // null once the resolver shut down: answers are dropped
  Lookup lookup = getaddrinfo_lookup;
  std::vector<bool> busy;  // per worker: inside a lookup
  std::size_t idle_workers = 0;

  // A worker: holds the shared state, so it may outlive the resolver and the loop.
  static void work(std::shared_ptr<Shared> self, std::size_t index) {
    std::unique_lock lock(self->mutex);
    for (;;) {
      ++self->idle_workers;
      self->wake.wait(lock, [&] { return self->loop == nullptr || !self->queue.empty(); });
      --self->idle_workers;
      if (self->loop == nullptr) break;
      Request request = std::move(self->queue.front());
      self->queue.pop_front();
      Lookup lookup = self->lookup;
      self->busy[index] = true;
      lock.unlock();
      ResolveResult result = lookup(request.question);
      lock.lock();
      self->busy[index] = false;
      // Under the lock, a non-null loop is open: shutdown() clears it first.
      if (self->loop == nullptr) break;
      EventLoop* loop = self->loop;
      try {
        loop->call_soon_threadsafe([loop, id = request.id, result = std::move(result)]() mutable {
          LoopAccess::internals(*loop).resolver.deliver(id, std::move(result));
        });
      } catch (...) {
        break;  // the loop is closing; nobody waits for the answer
      }
    }
  }
};

Resolver::Resolver(EventLoop& loop) : loop_(loop), shared_(std::make_shared<Shared>()) {
  shared_->loop = &loop;
}

Resolver::~Resolver() { shutdown(); }

void Resolver::set_lookup_for_testing(Lookup lookup) {
  std::lock_guard lock(shared_->mutex);
  shared_->lookup = std::move(lookup);
}

void Resolver::resolve(ResolveQuestion question, Done done) {
  std::uint64_t id = ++last_id_;
  pending_.emplace(id, std::move(done));
  std::lock_guard lock(shared_->mutex);
  shared_->queue.push_back(Shared::Request{id, std::move(question)});
  // A worker per concurrent lookup, up to a few: one slow DNS answer must not
  // hold up every other connection.
  if (shared_->idle_workers == 0 && workers_.size() < kMaxWorkers) {
    shared_->busy.push_back(false);
    workers_.push_back(start_background_thread(&Shared::work, shared_, workers_.size()));
  } else {
    shared_->wake.notify_one();
  }
}

void Resolver::deliver(std::uint64_t id, ResolveResult result) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Done done = std::move(it->second);
  pending_.erase(it);
  done(std::move(result));
}

void Resolver::shutdown() noexcept {
  std::vector<bool> busy;
  {
    std::lock_guard lock(shared_->mutex);
    shared_->loop = nullptr;
    shared_->queue.clear();
    busy = shared_->busy;
  }
  shared_->wake.notify_all();
  // Idle workers leave at once and are joined. A worker inside a lookup may
  // stay there for the DNS timeout: it is let go (it holds only the shared
  // state and drops its late answer).
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    if (busy[i]) {
      workers_[i].detach();
    } else {
      workers_[i].join();
    }
  }
  workers_.clear();
  // The callables die here, on the loop's thread, whatever the workers do.
  pending_.clear();
}

}  // namespace tulip::detail
