// EventLoop::create_server(sock) / create_unix_server(sock): a server on a
// listening socket made elsewhere (inherited from a parent, or systemd's
// LISTEN_FDS). The server owns the descriptor from the call on: every path
// that does not get as far as a listener closes it.
#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>

#include "loop_access.hpp"
#include "loop_internals.hpp"
#include "server_access.hpp"
#include "socket_ops.hpp"
#include "tls/tls_wiring.hpp"
#include "tulip/event_loop.hpp"

namespace tulip::detail {
namespace {

std::string name_of(int fd, bool unix_only) {
  return std::string(unix_only ? "create_unix_server" : "create_server") +
         "(sock=" + std::to_string(fd) + ")";
}

// Checks that `fd` is a listening stream socket of an accepted family and
// makes it non-blocking; throws, naming the descriptor, if not.
void check_listening(int fd, bool unix_only) {
  std::string name = name_of(fd, unix_only);
  int type = get_int_option(fd, SOL_SOCKET, SO_TYPE);
  if (type < 0) {
    int error = errno;
    throw OSError(errno_code(error), name + ": not a socket: " + errno_code(error).message());
  }
  int family = get_int_option(fd, SOL_SOCKET, SO_DOMAIN);
  bool family_ok = unix_only ? family == AF_UNIX
                             : (family == AF_INET || family == AF_INET6 || family == AF_UNIX);
  if (type != SOCK_STREAM || !family_ok) {
    throw std::invalid_argument(name + ": a " +
                                (unix_only ? "Unix stream socket" : "stream socket (TCP or Unix)") +
                                " was expected");
  }
  if (get_int_option(fd, SOL_SOCKET, SO_ACCEPTCONN) != 1) {
    throw std::invalid_argument(name + ": the socket is not listening (call listen() first)");
  }
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    int error = errno;
    throw OSError(errno_code(error),
                  name + ": cannot make it non-blocking: " + errno_code(error).message());
  }
}

}  // namespace

void adopt_server(EventLoop& loop, ProtocolFactory factory, int fd, ServerOptions options,
                  bool unix_only, ServerCallback done) {
  if (loop.is_closed()) {
    close_fd(fd);
    throw RuntimeError("Event loop is closed");
  }
  if (options.backlog <= 0) options.backlog = 100;
  if (options.ssl) {
    try {
      factory = wrap_tls_server(loop, std::move(factory), server_tls_settings(options));
    } catch (...) {
      close_fd(fd);  // the server owned it from the call on
      done(std::current_exception(), nullptr);
      return;
    }
  }
  loop.call_soon([&loop, factory = std::move(factory), owned_fd = OwnedFd(fd), options, unix_only,
                  done = std::move(done)]() mutable {
    std::shared_ptr<Server> server;
    int descriptor = owned_fd.get();
    try {
      if (descriptor < 0) {
        throw OSError(errno_code(EBADF), name_of(descriptor, unix_only) + ": invalid descriptor");
      }
      check_listening(descriptor, unix_only);
      if (get_int_option(descriptor, SOL_SOCKET, SO_DOMAIN) == AF_UNIX) {
        options.nodelay = false;  // TCP options: nothing to set on a Unix socket
        options.keepalive.reset();
      }
      options.family = get_int_option(descriptor, SOL_SOCKET, SO_DOMAIN);
      server = ServerAccess::create(loop, std::move(factory), options);
      ServerAccess::add_listener(*server, owned_fd.release());  // owns the descriptor from here
      LoopAccess::internals(loop).registry.servers.insert(server);
      if (options.start_serving) server->start_serving();
    } catch (...) {
      if (server) server->close();  // `owned_fd` closes the descriptor if no listener took it
      done(std::current_exception(), nullptr);
      return;
    }
    done(nullptr, std::move(server));
  });
}

}  // namespace tulip::detail
