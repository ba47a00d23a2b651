// tulip-echo-server --streams: the server written on asyncio's streams API.
#pragma once

#include "server_options.hpp"

namespace tulip::tools {

/// Serves TCP or a Unix socket with start_server / start_unix_server, one
/// echo_over_streams coroutine per connection; returns the exit status. Same
/// log lines, exit codes and behaviour as the Protocol server (docs/tools.md).
int run_streams_server(const ServerToolOptions& options);

}  // namespace tulip::tools
