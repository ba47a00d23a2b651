#include "serving.hpp"

#include <csignal>
#include <exception>
#include <string>
#include <utility>

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

int serve_group_until_signalled(const ServerToolOptions& options, ServerGroup::ServerOpener opener,
                                std::function<void(EventLoop&)> on_loop_finish) {
  ServerGroupOptions group_options;
  group_options.threads = options.threads;
  group_options.on_loop_start = report_server_errors;
  group_options.on_loop_finish = std::move(on_loop_finish);
  ServerGroup group(std::move(opener), options.port, std::move(group_options));
  try {
    group.start();
  } catch (const std::exception& e) {
    error_line(kServerProgram, e.what());
    return kExitConnectionError;
  }
  // The group's threads block every signal: SIGINT and SIGTERM come here.
  EventLoop signals;
  Future<void> signalled = signals.create_future();
  auto shut_down = [&signalled] {
    if (!signalled.done()) signalled.set_result();
  };
  signals.add_signal_handler(SIGINT, shut_down);
  signals.add_signal_handler(SIGTERM, shut_down);
  std::string addresses;
  for (const SocketAddress& address : group.addresses()) {
    if (!addresses.empty()) addresses += ", ";
    addresses += address.to_string();
  }
  log_line("Serving on " + addresses);
  signals.run_until_complete(signalled);
  if (!options.quiet) log_line("shutting down");
  // As with one loop: each connection flushes and closes, and those that
  // cannot flush within the grace period are aborted.
  group.stop(kShutdownGraceSeconds, ShutdownMode::kCloseClients);
  return kExitOk;
}

}  // namespace tulip::tools
