// What tulip-echo-server does around a listening server, whichever API serves
// the connections: report errors in one line, announce the addresses, and
// shut down cleanly on SIGINT or SIGTERM.
//
// Thread-safety: the loop's thread only.
#pragma once

#include <memory>

#include "server_options.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/server.hpp"

namespace tulip::tools {

/// Makes the loop's exception handler print one line per error (never a
/// stack trace); the server goes on.
void report_server_errors(EventLoop& loop);

/// Serves until SIGINT or SIGTERM. Logs "Serving on ..." once the signals are
/// handled; on a signal logs "shutting down", stops listening, closes every
/// connection (each flushes first), aborts after one second those that could
/// not flush, and returns once they are all gone. Returns the exit status.
int serve_until_signalled(EventLoop& loop, const ServerToolOptions& options,
                          const std::shared_ptr<Server>& server);

}  // namespace tulip::tools
