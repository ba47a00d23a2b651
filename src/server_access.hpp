// ServerAccess: how tulip's own sources reach a Server's non-API side. Not API.
//
// Server keeps its constructor and its hooks for listeners and transports
// private; the backend's listeners and transports and create_server go
// through here.
//
// Thread-safety: loop thread only.
#pragma once

#include <memory>

#include "tulip/server.hpp"

namespace tulip::detail {

struct ServerAccess {
  static std::shared_ptr<Server> create(EventLoop& loop, Server::ProtocolFactory factory,
                                        ServerOptions options) {
    return std::shared_ptr<Server>(new Server(loop, std::move(factory), std::move(options)));
  }
  static void add_listener(Server& server, int fd) { server.add_listener(fd); }
  /// A listener accepted `fd` from `peer`: make its transport and protocol.
  static void on_accepted(Server& server, int fd, const SocketAddress& peer) {
    server.on_accepted(fd, peer);
  }
  /// accept() failed with `error`: report it and stop accepting for a while.
  static void pause_accepting(Server& server, int error) { server.pause_accepting(error); }
  /// A transport of `server` started / was released.
  static void attach(Server& server, Transport* transport) { server.attach(transport); }
  static void detach(Server& server, Transport* transport) { server.detach(transport); }
};

}  // namespace tulip::detail
