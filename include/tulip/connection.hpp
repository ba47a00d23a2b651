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
// EventLoop::connect_accepted_socket(factory, fd) wraps a TCP socket that is
// already connected (accepted by your own code, or inherited): it takes the
// descriptor over, makes it non-blocking, sets TCP_NODELAY, and completes as
// create_connection does. A descriptor that is not a connected TCP socket fails
// the Future (OSError, or std::invalid_argument for another kind of socket) and
// is closed: either way the caller no longer owns it.
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
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "tulip/connection_options.hpp"
#include "tulip/detail/inline_function.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/export.hpp"
#include "tulip/future.hpp"
#include "tulip/protocol.hpp"
#include "tulip/server.hpp"
#include "tulip/transport.hpp"

namespace tulip {

/// A connected transport and its protocol, as asyncio's (transport, protocol).
template <class P = StreamProtocol>
struct Connection {
  std::shared_ptr<Transport> transport;  ///< The connection's transport.
  std::shared_ptr<P> protocol;           ///< The protocol the factory made for it.
};

namespace detail {

using ProtocolFactory = std::function<std::shared_ptr<StreamProtocol>()>;
using ConnectCallback = InlineFunction<void(std::exception_ptr, std::shared_ptr<Transport>,
                                            std::shared_ptr<StreamProtocol>)>;
using ServerCallback = InlineFunction<void(std::exception_ptr, std::shared_ptr<Server>)>;

/// The untyped machinery behind the templates below (src/connector.cpp, src/server.cpp).
TULIP_API void open_connection(EventLoop& loop, ProtocolFactory factory, std::string host,
                               std::uint16_t port, ConnectOptions options, ConnectCallback done);
TULIP_API void adopt_connection(EventLoop& loop, ProtocolFactory factory, int fd,
                                ConnectCallback done);
TULIP_API void open_server(EventLoop& loop, ProtocolFactory factory, std::string host,
                           std::uint16_t port, ServerOptions options, ServerCallback done);

template <class Factory>
using FactoryProtocol = typename std::invoke_result_t<Factory&>::element_type;

template <class Factory>
ProtocolFactory erase_factory(Factory&& factory) {
  static_assert(std::is_base_of_v<StreamProtocol, FactoryProtocol<Factory>>,
                "the factory must return a (shared or unique) pointer to a Protocol or "
                "BufferedProtocol");
  return [factory = std::forward<Factory>(factory)]() mutable -> std::shared_ptr<StreamProtocol> {
    std::shared_ptr<FactoryProtocol<Factory>> protocol(factory());
    // Checked here, once for every caller (client, server, adopted socket).
    if (!protocol) throw std::invalid_argument("the protocol factory returned a null pointer");
    return protocol;
  };
}

/// The callback that completes a connection's Future with its typed protocol.
template <class P>
ConnectCallback complete_connection(Future<Connection<P>> result) {
  return [result](std::exception_ptr error, std::shared_ptr<Transport> transport,
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
}

}  // namespace detail

template <class Factory>
auto EventLoop::create_connection(Factory&& factory, std::string host, std::uint16_t port,
                                  ConnectOptions options) {
  using P = detail::FactoryProtocol<Factory>;
  Future<Connection<P>> result = create_future<Connection<P>>();
  detail::open_connection(*this, detail::erase_factory(std::forward<Factory>(factory)),
                          std::move(host), port, std::move(options),
                          detail::complete_connection(result));
  return result;
}

template <class Factory>
auto EventLoop::connect_accepted_socket(Factory&& factory, int fd) {
  using P = detail::FactoryProtocol<Factory>;
  Future<Connection<P>> result = create_future<Connection<P>>();
  detail::adopt_connection(*this, detail::erase_factory(std::forward<Factory>(factory)), fd,
                           detail::complete_connection(result));
  return result;
}

template <class Factory>
Future<std::shared_ptr<Server>> EventLoop::create_server(Factory&& factory, std::string host,
                                                         std::uint16_t port,
                                                         ServerOptions options) {
  Future<std::shared_ptr<Server>> result = create_future<std::shared_ptr<Server>>();
  detail::open_server(*this, detail::erase_factory(std::forward<Factory>(factory)), std::move(host),
                      port, std::move(options),
                      [result](std::exception_ptr error, std::shared_ptr<Server> server) mutable {
                        if (result.done()) {
                          if (server) server->close();
                          return;
                        }
                        if (error) {
                          result.set_exception(error);
                        } else {
                          result.set_result(std::move(server));
                        }
                      });
  return result;
}

}  // namespace tulip
