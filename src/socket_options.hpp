// Options every tulip stream socket gets: TCP_NODELAY and keep-alive. Not API.
#pragma once

#include <optional>

#include "tulip/connection_options.hpp"

namespace tulip::detail {

/// Applies TCP_NODELAY (if `nodelay`) and keep-alive (if given) to a TCP socket.
/// Failures are ignored: these are tuning, not correctness.
void apply_stream_options(int fd, bool nodelay, const std::optional<KeepAliveOptions>& keepalive);

}  // namespace tulip::detail
