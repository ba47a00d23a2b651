// What tulip-echo-server does around a listening server, whichever API serves
// the connections: report errors in one line, announce the addresses, and
// shut down cleanly on SIGINT or SIGTERM.
//
// Thread-safety: the loop's thread only; serve_group_until_signalled runs
// the group's loops on threads of their own and handles the signals on the
// calling thread.
#pragma once

#include <functional>
#include <memory>

#include "server_options.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/server.hpp"
#include "tulip/server_group.hpp"

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

/// --threads N: serves with a ServerGroup of options.threads loops, each
/// opening its server with `opener` (on its own thread), until SIGINT or
/// SIGTERM, which the calling thread handles. Every loop reports errors as
/// report_server_errors does; `on_loop_finish` (may be empty) runs on each
/// loop once its connections are gone. Logs and shuts down as
/// serve_until_signalled does. Returns the exit status (1 when a loop cannot
/// listen, after one error line).
int serve_group_until_signalled(const ServerToolOptions& options, ServerGroup::ServerOpener opener,
                                std::function<void(EventLoop&)> on_loop_finish);

}  // namespace tulip::tools
