// EventLoop::getaddrinfo and getnameinfo: the C library's blocking lookups
// run as jobs on the loop's default executor, as asyncio runs them. The
// Future completes on the loop's thread.
#include <string>
#include <utility>

#include "loop_access.hpp"
#include "loop_internals.hpp"
#include "tulip/event_loop.hpp"

namespace tulip {

Future<std::vector<AddressInfo>> EventLoop::getaddrinfo(std::string host, std::string service,
                                                        int family, int type, int protocol,
                                                        int flags) {
  Future<std::vector<AddressInfo>> result = create_future<std::vector<AddressInfo>>();
  detail::ResolveQuestion question;
  question.host = host;
  question.family = family;
  question.kind = detail::ResolveQuestion::kAddressInfo;
  question.service = service;
  question.type = type;
  question.protocol = protocol;
  question.flags = flags;
  internals_->resolver.resolve(
      std::move(question), [result, host, service](detail::ResolveResult answer) mutable {
        if (result.done()) return;  // cancelled meanwhile
        if (!answer.error.empty()) {
          result.set_exception(std::make_exception_ptr(
              OSError(make_error_code(Error::kNameResolution),
                      "getaddrinfo('" + host + "', '" + service + "'): " + answer.error)));
          return;
        }
        result.set_result(std::move(answer.entries));
      });
  return result;
}

Future<NameInfo> EventLoop::getnameinfo(SocketAddress address, int flags) {
  Future<NameInfo> result = create_future<NameInfo>();
  detail::ResolveQuestion question;
  question.family = address.family();
  question.kind = detail::ResolveQuestion::kNameInfo;
  question.flags = flags;
  question.address = address;
  internals_->resolver.resolve(
      std::move(question), [result, address](detail::ResolveResult answer) mutable {
        if (result.done()) return;
        if (!answer.error.empty()) {
          result.set_exception(std::make_exception_ptr(
              OSError(make_error_code(Error::kNameResolution),
                      "getnameinfo(" + address.to_string() + "): " + answer.error)));
          return;
        }
        result.set_result(std::move(answer.name));
      });
  return result;
}

}  // namespace tulip
