// resolve_address: host and port to socket addresses, the one place that
// decides between parsing and resolving. Not API.
//
// Numeric hosts skip the resolver, as in asyncio; names go to the loop's
// Resolver. Either way `done` runs later from the loop, never inside the call,
// so callers see one order of events whatever the host is.
//
// Thread-safety: loop thread only.
#pragma once

#include <cstdint>
#include <string>

#include "resolver.hpp"

namespace tulip {
class EventLoop;
}

namespace tulip::detail {

/// `passive`: for bind (an empty host means every interface). `family`:
/// AF_UNSPEC, or AF_INET / AF_INET6 to get only that family.
void resolve_address(EventLoop& loop, const std::string& host, std::uint16_t port, int family,
                     bool passive, Resolver::Done done);

}  // namespace tulip::detail
