#include "address_resolution.hpp"

#include "loop_access.hpp"
#include "loop_internals.hpp"
#include "tulip/event_loop.hpp"

namespace tulip::detail {

void resolve_address(EventLoop& loop, const std::string& host, std::uint16_t port, int family,
                     bool passive, Resolver::Done done) {
  if (auto numeric = SocketAddress::parse(host, port)) {
    ResolveResult result;
    result.addresses.push_back(*numeric);
    loop.call_soon([done = std::move(done), result = std::move(result)]() mutable {
      done(std::move(result));
    });
    return;
  }
  LoopAccess::internals(loop).resolver.resolve(ResolveQuestion{host, port, family, passive},
                                               std::move(done));
}

}  // namespace tulip::detail
