// DirectConnect: create_connection to a numeric address, the common case made
// short. Not API.
//
// A host that is already an address (127.0.0.1, ::1) needs no resolution and
// has exactly one address to try, so none of the Connector's machinery applies:
// no lookup step, no address list, no Happy Eyeballs race, no per-attempt
// bookkeeping. This is one socket and one connect through the backend, then
// the transport. open_connection takes this path only when nothing else is
// asked for (no TLS, no local address, no timeout, a family that matches);
// everything else, and every host name, goes through the Connector.
//
// What the caller sees is the Connector's behaviour for a one-address
// attempt: the same error messages ("connect to ADDRESS failed: REASON"), the
// outcome reported from the loop and never inside create_connection,
// cancellation closing the socket at once and no protocol ever made for a
// cancelled attempt, and the loop's registry keeping the attempt alive until
// it finishes or the loop closes. The end of the attempt, from the connected
// socket to the caller's Future, is the Connector's own (ConnectAttempt,
// connector.hpp).
//
// Thread-safety: loop thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "io_backend.hpp"
#include "tulip/connection.hpp"
#include "tulip/socket_address.hpp"

namespace tulip::detail {

/// The address `host` names when create_connection may take the direct path
/// with `options`; nullopt when the Connector must handle it.
std::optional<SocketAddress> direct_connect_address(const std::string& host, std::uint16_t port,
                                                    const ConnectOptions& options);

/// Starts a direct connection to `address`; returns what cancelling the
/// caller's Future stops.
std::weak_ptr<CancellableOperation> start_direct_connect(EventLoop& loop, ProtocolFactory&& factory,
                                                         const SocketAddress& address,
                                                         const ConnectOptions& options,
                                                         ConnectCompletion&& completion);

}  // namespace tulip::detail
