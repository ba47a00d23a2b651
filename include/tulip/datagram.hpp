// Datagrams: UDP endpoints (asyncio.DatagramTransport, asyncio.DatagramProtocol).
//
// EventLoop::create_datagram_endpoint(factory, local_addr, remote_addr,
// options) makes a UDP socket, binds it to `local_addr` if given, connects it
// to `remote_addr` if given (then it receives only from that peer and sendto
// needs no address), and completes with DatagramEndpoint{transport, protocol}
// once the protocol's connection_made has run. Hosts are numeric addresses or
// names (resolved off the loop's thread); without either address, `family`
// must say AF_INET or AF_INET6.
//
// EventLoop::create_unix_datagram_endpoint(factory, local_path, remote_path,
// options) is the same for Unix datagram sockets (asyncio spells it
// create_datagram_endpoint(family=AF_UNIX, local_addr=path, remote_addr=path)):
// addresses are paths, a leading NUL byte makes a Linux abstract name, and an
// empty local path lets the kernel pick a unique abstract name (autobind, as
// Python's bind('')). A socket file left by an endpoint that is gone is
// replaced; one where a socket is still bound is never taken (EADDRINUSE);
// the file is removed when the endpoint closes, unless it was replaced
// (UnixDatagramOptions::cleanup_socket). A peer that wants replies must be
// bound to an address: a datagram from an unbound sender arrives with an empty
// SocketAddress (Python's None), to which nothing can be sent.
//
// Call order, for every endpoint:
//
//     connection_made -> (datagram_received | error_received)* -> connection_lost
//
// Every callback runs on the loop's thread, never inside a transport method
// you called, except pause_writing (inside sendto, as for streams).
//
// Errors. An OS error on one datagram does not end the endpoint: it reaches
// error_received (ECONNREFUSED when a connected endpoint's peer has no socket
// on that port, as ICMP reports; EMSGSIZE for a datagram longer than
// max_datagram_size, which is dropped rather than delivered cut short), and the
// endpoint goes on. A protocol callback that throws is reported to the loop's
// exception handler and ends the endpoint (connection_lost with
// Error::kCallbackRaised).
//
// Lifetime and ownership are as for stream transports (transport.hpp): the
// loop keeps the transport until connection_lost has returned, the transport
// keeps its protocol as long, and sendto copies what it has to buffer.
//
// Thread-safety: loop thread only.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include "tulip/detail/inline_function.hpp"
#include "tulip/export.hpp"
#include "tulip/future.hpp"
#include "tulip/protocol.hpp"
#include "tulip/socket_address.hpp"
#include "tulip/transport.hpp"

namespace tulip {

class EventLoop;
class DatagramTransport;

/// The application's side of a datagram endpoint (asyncio.DatagramProtocol).
class TULIP_API DatagramProtocol : public BaseProtocol {
 public:
  /// The endpoint is ready. `transport` is valid until connection_lost returns.
  virtual void connection_made(DatagramTransport& transport) { (void)transport; }
  /// A datagram arrived from `address`. `data` is borrowed (a loop-owned
  /// buffer reused after this returns); it may be empty (a zero-length datagram).
  virtual void datagram_received(std::string_view data, const SocketAddress& address) {
    (void)data;
    (void)address;
  }
  /// A send or receive failed with `error`; the endpoint stays open.
  virtual void error_received(std::error_code error) { (void)error; }
};

/// A UDP endpoint (asyncio.DatagramTransport). Made by create_datagram_endpoint.
///
/// It is a BaseTransport, so exception contexts and get_extra_info work as for
/// streams; BaseTransport's stream-typed set_protocol / get_protocol do not
/// apply (use the DatagramProtocol overload and get_datagram_protocol()).
class TULIP_API DatagramTransport : public BaseTransport {
 public:
  /// Sends `data` as one datagram to `address`, or to the remote address of a
  /// connected endpoint when `address` is nullopt. Tries the socket at once;
  /// what the kernel cannot take now (EAGAIN) is buffered, copied, and sent
  /// in order later, with pause_writing()/resume_writing() as for streams. An
  /// OS error for this datagram reaches error_received on a later iteration.
  /// After close()/abort() the datagram is dropped with a warning. Throws
  /// std::invalid_argument for an address other than a connected endpoint's
  /// remote one ("Invalid address", as asyncio's ValueError), or no address
  /// on an endpoint that is not connected.
  virtual void sendto(std::string_view data,
                      const std::optional<SocketAddress>& address = std::nullopt) = 0;

  /// Closes now, dropping buffered datagrams; connection_lost (no error)
  /// follows on a later iteration. Idempotent.
  virtual void abort() = 0;

  /// As Transport::set_write_buffer_limits. Each buffered datagram counts its
  /// size plus 8 bytes, as asyncio counts a header.
  virtual void set_write_buffer_limits(std::optional<std::size_t> high = std::nullopt,
                                       std::optional<std::size_t> low = std::nullopt) = 0;
  /// (low, high), as asyncio returns them.
  virtual std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept = 0;
  /// Bytes buffered (datagrams and their 8-byte headers) and not yet sent.
  virtual std::size_t get_write_buffer_size() const noexcept = 0;

  /// Replaces the protocol; the new one receives the callbacks from now on.
  virtual void set_protocol(std::shared_ptr<DatagramProtocol> protocol) = 0;
  /// The current protocol; null once connection_lost has returned.
  virtual DatagramProtocol* get_datagram_protocol() const noexcept = 0;

  /// Not for datagrams: throws std::invalid_argument.
  void set_protocol(std::shared_ptr<StreamProtocol> protocol) final {
    (void)protocol;
    throw std::invalid_argument("a DatagramTransport takes a DatagramProtocol");
  }
  /// Always null: a datagram endpoint has no stream protocol (see get_datagram_protocol()).
  StreamProtocol* get_protocol() const noexcept final { return nullptr; }

  /// Shorthand for this transport's shared_ptr.
  std::shared_ptr<DatagramTransport> shared() {
    return std::static_pointer_cast<DatagramTransport>(shared_from_this());
  }
};

/// A host and a port, for create_datagram_endpoint's addresses (asyncio's tuple).
struct HostPort {
  std::string host;        ///< A numeric address or a name ("" to bind every interface).
  std::uint16_t port = 0;  ///< The port (0 to bind any free one).
};

/// Options of EventLoop::create_datagram_endpoint (asyncio's keyword arguments).
struct DatagramOptions {
  /// AF_INET or AF_INET6 to use only that family; needed when neither address is given.
  int family = AF_UNSPEC;
  /// SO_REUSEPORT: several endpoints share the local port; the kernel balances.
  bool reuse_port = false;
  /// SO_BROADCAST: allows sending to broadcast addresses.
  bool allow_broadcast = false;
  /// The longest datagram received whole (at most 256 KiB, asyncio's max_size);
  /// a longer one is dropped and reported with error_received(EMSGSIZE).
  std::size_t max_datagram_size = 256 * 1024;
};

/// Options of EventLoop::create_unix_datagram_endpoint.
struct UnixDatagramOptions {
  /// Remove the bound socket file when the endpoint closes, unless another
  /// file has replaced it meanwhile (as UnixServerOptions::cleanup_socket).
  bool cleanup_socket = true;
  /// As DatagramOptions::max_datagram_size (a Unix datagram may be as long as
  /// the sender's socket buffer allows).
  std::size_t max_datagram_size = 256 * 1024;
};

/// A datagram transport and its protocol, as asyncio's (transport, protocol).
template <class P = DatagramProtocol>
struct DatagramEndpoint {
  std::shared_ptr<DatagramTransport> transport;  ///< The endpoint's transport.
  std::shared_ptr<P> protocol;                   ///< The protocol the factory made for it.
};

namespace detail {

using DatagramProtocolFactory = std::function<std::shared_ptr<DatagramProtocol>()>;

/// How create_datagram_endpoint's untyped machinery reports to its typed Future.
struct DatagramCompletion {
  /// Completes the Future: an error, or the transport and protocol.
  InlineFunction<void(std::exception_ptr, std::shared_ptr<DatagramTransport>,
                      std::shared_ptr<DatagramProtocol>)>
      done;
  /// True once the caller cancelled the Future: no protocol is made then.
  InlineFunction<bool()> cancelled;
};

/// The machinery behind create_datagram_endpoint (src/datagram_endpoint.cpp).
TULIP_API void open_datagram_endpoint(EventLoop& loop, DatagramProtocolFactory factory,
                                      std::optional<HostPort> local_addr,
                                      std::optional<HostPort> remote_addr, DatagramOptions options,
                                      DatagramCompletion completion);

/// The machinery behind create_unix_datagram_endpoint (src/unix_datagram_endpoint.cpp).
TULIP_API void open_unix_datagram_endpoint(EventLoop& loop, DatagramProtocolFactory factory,
                                           std::optional<std::string> local_path,
                                           std::optional<std::string> remote_path,
                                           UnixDatagramOptions options,
                                           DatagramCompletion completion);

template <class Factory>
DatagramProtocolFactory erase_datagram_factory(Factory&& factory) {
  using P = typename std::invoke_result_t<Factory&>::element_type;
  static_assert(std::is_base_of_v<DatagramProtocol, P>,
                "the factory must return a (shared or unique) pointer to a class derived from "
                "tulip::DatagramProtocol");
  return [factory = std::forward<Factory>(factory)]() mutable -> std::shared_ptr<DatagramProtocol> {
    std::shared_ptr<P> protocol(factory());
    if (!protocol) throw std::invalid_argument("the protocol factory returned a null pointer");
    return protocol;
  };
}

/// The callbacks that complete create_datagram_endpoint's Future with its typed protocol.
template <class P>
DatagramCompletion complete_datagram(Future<DatagramEndpoint<P>> result) {
  DatagramCompletion completion;
  completion.done = [result](std::exception_ptr error, std::shared_ptr<DatagramTransport> transport,
                             std::shared_ptr<DatagramProtocol> protocol) mutable {
    if (result.done()) {
      // The caller cancelled; as for connections, do not leave the endpoint open.
      if (transport) transport->close();
      return;
    }
    if (error) {
      result.set_exception(error);
    } else {
      result.set_result(DatagramEndpoint<P>{std::move(transport),
                                            std::static_pointer_cast<P>(std::move(protocol))});
    }
  };
  completion.cancelled = [result] { return result.cancelled(); };
  return completion;
}

}  // namespace detail
}  // namespace tulip
