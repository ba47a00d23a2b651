#include "serving.hpp"

#include <csignal>
#include <string>

#include "tool_support.hpp"
#include "tulip/errors.hpp"
#include "tulip/exception_context.hpp"

namespace tulip::tools {
namespace {

// After SIGINT/SIGTERM, connections get this long to flush before they are aborted.
constexpr double kShutdownGraceSeconds = 1.0;

}  // namespace

void report_server_errors(EventLoop& loop) {
  loop.set_exception_handler([](EventLoop&, const ExceptionContext& context) {
    error_line(kServerProgram, describe(context));
  });
}

int serve_until_signalled(EventLoop& loop, const ServerToolOptions& options,
                          const std::shared_ptr<Server>& server) {
  auto shut_down = [&loop, &options, server] {
    if (!server->is_serving()) return;
    if (!options.quiet) log_line("shutting down");
    server->close();
    server->close_clients();
    // A client that never reads would keep close() flushing forever.
    loop.call_later(kShutdownGraceSeconds, [server] { server->abort_clients(); });
  };
  loop.add_signal_handler(SIGINT, shut_down);
  loop.add_signal_handler(SIGTERM, shut_down);
  // Announced once the signals are handled: a script that stops the server
  // as soon as it reads this line (a Unix server's file is then removed) gets
  // a clean shutdown, not the default action of SIGTERM.
  std::string addresses;
  for (const ServerSocket& socket : server->sockets()) {
    if (!addresses.empty()) addresses += ", ";
    addresses += socket.sockname.to_string();
  }
  log_line("Serving on " + addresses);

  try {
    loop.run_until_complete(server->serve_forever());
  } catch (const CancelledError&) {
    // What serve_forever() ends with when the server is closed, as in asyncio.
  }
  loop.run_until_complete(server->wait_closed());
  return kExitOk;
}

}  // namespace tulip::tools
