// create_connection and create_server: opening TCP connections and servers.
//
// EventLoop::create_connection(factory, host, port) resolves `host` (off the
// loop's thread, unless it is a numeric address), tries every resolved address
// in turn until one connects, makes a transport and a protocol from `factory`,
// and completes its Future once the protocol's connection_made has run, with
// both: `auto [transport, protocol] = loop.run_until_complete(...)`.
// If every address fails, the Future fails with ConnectionError naming each
// address and cause ("Multiple exceptions: ..." when there are several, as
// asyncio joins them); with a timeout option, with TimeoutError.
//
// EventLoop::connect_accepted_socket(factory, fd) wraps a TCP or Unix stream
// socket that is already connected (accepted by your own code, inherited, or
// one end of a socketpair): it takes the descriptor over, makes it
// non-blocking, sets TCP_NODELAY on TCP, and completes as create_connection
// does. A descriptor that is not a connected stream socket fails the Future
// (OSError, or std::invalid_argument for another kind of socket) and is
// closed: either way the caller no longer owns it.
//
// EventLoop::create_unix_connection(factory, path) and
// create_unix_server(factory, path) are the same for Unix domain stream
// sockets: `path` is a file-system path, or a Linux abstract name when it
// starts with a NUL byte. The transports are the same as TCP's (flow control,
// BufferedProtocol, write_eof); peername and sockname are SocketAddresses of
// family AF_UNIX (path()), and get_extra_info("peercred") gives the peer's
// PeerCredentials. A path too long for sun_path fails the Future with OSError
// (ENAMETOOLONG) naming the path. create_unix_server replaces a stale socket
// file, refuses (EADDRINUSE) one where a server is listening, and removes its
// file again on close (UnixServerOptions::cleanup_socket).
//
// create_server(factory, sock, options) and create_unix_server(factory, sock,
// options) serve on a listening socket made elsewhere (systemd's LISTEN_FDS, a
// parent process): the server owns `sock` from the call on; one that is not a
// listening stream socket (of the Unix family, for create_unix_server) fails
// the Future with std::invalid_argument, and is closed.
//
// EventLoop::create_server(factory, host, port) binds every address `host`
// resolves to (an empty host: every interface, IPv4 and IPv6), listens, and
// completes with the Server. Port 0 picks a free port; Server::sockets() tells
// which.
//
// `factory` is any callable returning std::shared_ptr<P> (or unique_ptr<P>) for
// a P derived from Protocol or BufferedProtocol; it is called on the loop's
// thread, once per connection. If it throws, that connection is closed and the
// exception is reported (server) or fails the Future (client).
//
// Thread-safety: call on the loop's thread.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "tulip/connection_options.hpp"
#include "tulip/detail/inline_function.hpp"
#include "tulip/export.hpp"
#include "tulip/future.hpp"
#include "tulip/protocol.hpp"
#include "tulip/transport.hpp"

namespace tulip {

class EventLoop;
class Server;

/// A connected transport and its protocol, as asyncio's (transport, protocol).
template <class P = StreamProtocol>
struct Connection {
  std::shared_ptr<Transport> transport;  ///< The connection's transport.
  std::shared_ptr<P> protocol;           ///< The protocol the factory made for it.
};

namespace detail {

using ProtocolFactory = std::function<std::shared_ptr<StreamProtocol>()>;

/// How the untyped machinery reports to the typed Future of create_connection
/// and connect_accepted_socket.
struct ConnectCompletion {
  /// Completes the Future: an error, or the transport and protocol.
  InlineFunction<void(std::exception_ptr, std::shared_ptr<Transport>,
                      std::shared_ptr<StreamProtocol>)>
      done;
  /// True once the caller cancelled the Future: the attempt stops before the
  /// factory is called (asyncio's create_connection never makes a protocol then).
  InlineFunction<bool()> cancelled;
};
using ServerCallback = InlineFunction<void(std::exception_ptr, std::shared_ptr<Server>)>;

/// An operation in progress that its caller may give up on.
class CancellableOperation {
 public:
  /// Stops the operation now and releases what it holds; reports nothing.
  virtual void cancel() noexcept = 0;

 protected:
  ~CancellableOperation() = default;
};

/// The untyped machinery behind EventLoop's templates (src/connector.cpp,
/// src/accepted_socket.cpp, src/server.cpp, src/unix_server.cpp,
/// src/adopted_server.cpp).
/// (open_connection takes the host and options by reference: the common
/// numeric-host path copies neither, and the options, TLS's included, are
/// large enough for a move to show per connection.)
TULIP_API std::weak_ptr<CancellableOperation> open_connection(
    EventLoop& loop, ProtocolFactory factory, const std::string& host, std::uint16_t port,
    const ConnectOptions& options, ConnectCompletion completion);
TULIP_API void adopt_connection(EventLoop& loop, ProtocolFactory factory, int fd,
                                ConnectCompletion completion);
TULIP_API void open_server(EventLoop& loop, ProtocolFactory factory, std::string host,
                           std::uint16_t port, ServerOptions options, ServerCallback done);
TULIP_API std::weak_ptr<CancellableOperation> open_unix_connection(EventLoop& loop,
                                                                   ProtocolFactory factory,
                                                                   std::string path,
                                                                   UnixConnectOptions options,
                                                                   ConnectCompletion completion);
TULIP_API void open_unix_server(EventLoop& loop, ProtocolFactory factory, std::string path,
                                UnixServerOptions options, ServerCallback done);
TULIP_API void adopt_server(EventLoop& loop, ProtocolFactory factory, int fd, ServerOptions options,
                            bool unix_only, ServerCallback done);
TULIP_API void close_server(Server& server);

template <class Factory>
using FactoryProtocol = typename std::invoke_result_t<Factory&>::element_type;

template <class Factory>
ProtocolFactory erase_factory(Factory&& factory) {
  using P = FactoryProtocol<Factory>;
  // A class derived from StreamProtocol alone would have no way to receive
  // bytes (it has neither data_received nor get_buffer): refuse it here. A
  // factory typed as returning StreamProtocol itself (choosing a Protocol or a
  // BufferedProtocol at run time) is checked when the transport takes it.
  static_assert(std::is_base_of_v<Protocol, P> || std::is_base_of_v<BufferedProtocol, P> ||
                    std::is_same_v<P, StreamProtocol>,
                "the factory must return a (shared or unique) pointer to a class derived from "
                "tulip::Protocol or tulip::BufferedProtocol");
  return [factory = std::forward<Factory>(factory)]() mutable -> std::shared_ptr<StreamProtocol> {
    std::shared_ptr<P> protocol(factory());
    // Checked here, once for every caller (client, server, adopted socket).
    if (!protocol) throw std::invalid_argument("the protocol factory returned a null pointer");
    return protocol;
  };
}

/// The callbacks that complete a connection's Future with its typed protocol.
template <class P>
ConnectCompletion complete_connection(Future<Connection<P>> result) {
  ConnectCompletion completion;
  completion.done = [result](std::exception_ptr error, std::shared_ptr<Transport> transport,
                             std::shared_ptr<StreamProtocol> protocol) mutable {
    if (result.done()) {
      // The caller cancelled; as asyncio does, do not leave the connection open.
      if (transport) transport->close();
      return;
    }
    if (error) {
      result.set_exception(error);
    } else {
      result.set_result(
          Connection<P>{std::move(transport), std::static_pointer_cast<P>(std::move(protocol))});
    }
  };
  completion.cancelled = [result] { return result.cancelled(); };
  return completion;
}

/// Cancelling `result` stops `operation` (on the next iteration, as every done
/// callback runs; the operation checks the Future itself before any step that
/// would make a protocol, so nothing is made in between).
template <class T>
void cancel_on_cancel(Future<T>& result, std::weak_ptr<CancellableOperation> operation) {
  result.add_done_callback([operation = std::move(operation)](Future<T>& done) {
    if (!done.cancelled()) return;
    if (auto alive = operation.lock()) alive->cancel();
  });
}

/// The callback that completes create_server's Future.
inline ServerCallback complete_server(Future<std::shared_ptr<Server>> result) {
  return [result](std::exception_ptr error, std::shared_ptr<Server> server) mutable {
    if (result.done()) {
      if (server) close_server(*server);
      return;
    }
    if (error) {
      result.set_exception(error);
    } else {
      result.set_result(std::move(server));
    }
  };
}

}  // namespace detail
}  // namespace tulip
