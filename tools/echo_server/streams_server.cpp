// tulip-echo-server --streams: start_server (or start_unix_server) with one
// echo_over_streams task per connection (echo_server_streams.hpp); listening,
// signals and shutdown are the Protocol server's (serving.hpp).
#include "streams_server.hpp"

#include <cstdint>
#include <exception>
#include <memory>
#include <vector>

#include "echo_server_streams.hpp"
#include "serving.hpp"
#include "tool_support.hpp"
#include "tulip/tulip.hpp"

namespace tulip::tools {
namespace {

// Runs the loop until no task is left: once the connections are gone, each
// client's coroutine still has its "closed" line to log.
void finish_client_tasks(EventLoop& loop) {
  for (std::vector<AnyTask> pending = all_tasks(loop); !pending.empty();
       pending = all_tasks(loop)) {
    Future<void> done = loop.create_future();
    pending.front().add_done_callback([done]() mutable {
      if (!done.done()) done.set_result();
    });
    loop.run_until_complete(done);
  }
}

}  // namespace

int run_streams_server(const ServerToolOptions& options) {
  auto client_connected = [&options](std::shared_ptr<StreamReader> reader,
                                     std::shared_ptr<StreamWriter> writer) {
    return echo_over_streams(std::move(reader), std::move(writer), options.keep_open,
                             options.quiet);
  };
  if (options.threads != 1) {
    // Each loop of the group starts its own server; the callback is shared
    // by all of them and reads only `options`.
    ServerOptions server_options = options.server;
    server_options.reuse_port = true;
    auto opener = [&options, client_connected, server_options](EventLoop& group_loop,
                                                               std::uint16_t port) {
      return run_until_complete(group_loop, start_server(group_loop, client_connected, options.host,
                                                         port, server_options));
    };
    return serve_group_until_signalled(options, opener, finish_client_tasks);
  }
  EventLoop loop;
  report_server_errors(loop);
  std::shared_ptr<Server> server;
  try {
    if (options.unix_path) {
      server =
          run_until_complete(loop, start_unix_server(loop, client_connected, *options.unix_path,
                                                     options.unix_server_options()));
    } else {
      server = run_until_complete(
          loop, start_server(loop, client_connected, options.host, options.port, options.server));
    }
  } catch (const std::exception& e) {
    error_line(kServerProgram, e.what());
    return kExitConnectionError;
  }
  int status = serve_until_signalled(loop, options, server);
  finish_client_tasks(loop);
  return status;
}

}  // namespace tulip::tools
