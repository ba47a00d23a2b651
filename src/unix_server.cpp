// EventLoop::create_unix_server: a stream server on a Unix socket path.
//
// As asyncio's create_unix_server: a socket file left by a server that is
// gone is replaced; unlike asyncio, a file where a server still listens is an
// error (EADDRINUSE) instead of being silently taken over, which would leave
// that server running but unreachable. The file is removed again when the
// server closes, if it is still the one bound (cleanup_socket, asyncio 3.13).
#include <sys/socket.h>

#include <exception>
#include <string>
#include <utility>

#include "loop_access.hpp"
#include "loop_internals.hpp"
#include "server_access.hpp"
#include "tls/tls_wiring.hpp"
#include "tulip/event_loop.hpp"
#include "unix_socket_file.hpp"

namespace tulip::detail {

void open_unix_server(EventLoop& loop, ProtocolFactory factory, std::string path,
                      UnixServerOptions options, ServerCallback done) {
  if (loop.is_closed()) throw RuntimeError("Event loop is closed");
  if (options.backlog <= 0) options.backlog = 100;
  if (options.ssl) {
    try {
      factory = wrap_tls_server(loop, std::move(factory), server_tls_settings(options));
    } catch (...) {
      done(std::current_exception(), nullptr);  // bad TLS options: nothing was opened
      return;
    }
  }
  // As every loop method, this opens nothing before returning: the steps run
  // from the ready queue, and the Future learns the outcome.
  loop.call_soon([&loop, factory = std::move(factory), path = std::move(path), options,
                  done = std::move(done)]() mutable {
    ServerOptions server_options;
    server_options.family = AF_UNIX;
    server_options.backlog = options.backlog;
    server_options.start_serving = options.start_serving;
    server_options.nodelay = false;  // a TCP option: nothing to set on a Unix socket
    std::shared_ptr<Server> server;
    try {
      SocketAddress address = unix_address_or_throw(path, "cannot listen on");
      bool has_file = !address.is_abstract();
      if (has_file) remove_stale_socket_file(address);
      int fd = open_unix_listening_socket(address, options.backlog);
      server = ServerAccess::create(loop, std::move(factory), server_options);
      ServerAccess::add_listener(*server, fd);  // owns fd from here
      if (has_file && options.cleanup_socket) {
        if (auto identity = identify_socket_file(path)) {
          ServerAccess::set_socket_file(*server, path, identity->device, identity->inode);
        }
      }
      LoopAccess::internals(loop).registry.servers.insert(server);
      if (options.start_serving) server->start_serving();
    } catch (...) {
      if (server) server->close();
      done(std::current_exception(), nullptr);
      return;
    }
    done(nullptr, std::move(server));
  });
}

}  // namespace tulip::detail
