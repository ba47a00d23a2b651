#include "resolver.hpp"

#include <netdb.h>

#include <memory>
#include <utility>

#include "loop_access.hpp"
#include "tulip/errors.hpp"
#include "tulip/event_loop.hpp"

namespace tulip::detail {
namespace {

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

ResolveResult system_lookup(const ResolveQuestion& question) {
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

void Resolver::resolve(ResolveQuestion question, Done done) {
  // The answer travels in a box the job fills on the worker and `done` reads
  // here, after call_soon_threadsafe has ordered the two.
  auto answer = std::make_shared<ResolveResult>();
  Lookup lookup = lookup_ ? lookup_ : Lookup(system_lookup);
  // Shared, so that it is still here if the job cannot be queued.
  auto callback = std::make_shared<Done>(std::move(done));
  try {
    LoopAccess::submit_job(
        loop_, nullptr,
        [answer, lookup = std::move(lookup), question = std::move(question)]() mutable {
          *answer = lookup(question);
        },
        [answer, callback]() mutable { (*callback)(std::move(*answer)); });
  } catch (const RuntimeError& e) {
    // The default executor was shut down (or the loop is closing): the
    // caller hears it as this lookup's failure, from the loop, as ever.
    ResolveResult failed;
    failed.error = e.what();
    loop_.call_soon(
        [callback, failed = std::move(failed)]() mutable { (*callback)(std::move(failed)); });
  }
}

}  // namespace tulip::detail
