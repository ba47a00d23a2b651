// MemoryTransport: a transport with no socket, for testing your own protocols.
//
// MemoryTransport::connect(loop, protocol) connects a protocol under test to a
// scripted peer held in memory. The protocol sees an ordinary tulip::Transport;
// the test drives the other end through the returned MemoryConnection (a
// MemoryPeer): it feeds bytes in fragments of its choosing, an EOF or a reset,
// reads what the protocol wrote, and opens or closes the peer's receive window
// so that the protocol's writes buffer and pause_writing / resume_writing come
// at asyncio's water marks.
//
// Every callback runs through the real loop, in the order and under the
// lifetime rules of a socket transport (see transport.hpp and protocol.hpp):
//
//  * connection_made runs from the ready queue (call_soon), never inside
//    connect(); reading starts only after it has returned.
//  * Nothing the peer does reaches the protocol inside the peer's call: each
//    fed fragment is one read, delivered on a later iteration of the loop, one
//    read per iteration (a fragment over 256 KiB, or larger than a
//    BufferedProtocol's buffer, takes several). pause_reading() stops delivery
//    between reads; eof_received comes after the last fragment, and its return
//    value decides whether the transport closes.
//  * The protocol's writes reach the peer at once while its window has room;
//    the rest is buffered, pause_writing() is called inside write() when the
//    buffer goes over the high-water mark, and the buffer drains (with
//    resume_writing() at the low-water mark) on the iteration after the window
//    opens again.
//  * close() flushes the buffer, then connection_lost(no error); abort() drops
//    it; reset() (the peer's RST) drops both directions and connection_lost
//    carries the error. connection_lost runs exactly once, on a fresh stack;
//    then the transport releases its protocol. Closing the loop aborts a live
//    MemoryTransport like any other (connection_lost(ECONNABORTED)).
//
// So tests are deterministic: nothing depends on the kernel's buffer sizes or
// on timing, only on how many loop iterations run. run_until_idle() runs the
// loop until nothing is left to do; run_one_iteration() runs exactly one step.
//
// Link with tulip::testing (CMake) or tulip-testing (pkg-config).
//
// Thread-safety: the loop's thread only, like every transport.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include "tulip/event_loop.hpp"
#include "tulip/export.hpp"
#include "tulip/protocol.hpp"
#include "tulip/socket_address.hpp"
#include "tulip/transport.hpp"

namespace tulip::testing {

namespace detail {
class MemoryStreamTransport;
}

/// How a MemoryTransport presents itself and what its peer accepts at first.
struct MemoryTransportOptions {
  /// get_extra_info("peername"); default 127.0.0.1:40000.
  SocketAddress peername = *SocketAddress::parse("127.0.0.1", 40000);
  /// get_extra_info("sockname"); default 127.0.0.1:50000.
  SocketAddress sockname = *SocketAddress::parse("127.0.0.1", 50000);
  /// How many written bytes the peer holds unread before it stops accepting
  /// more (a socket's buffer space); nullopt: no limit.
  std::optional<std::size_t> peer_window;
};

/// The test's end of a MemoryTransport: the scripted peer.
///
/// Copies share one connection. A MemoryPeer keeps the transport object alive
/// (not the connection: connection_lost still ends it), so it stays usable
/// after the connection is gone: feed() then does nothing, written() still
/// returns what arrived. Every method is for the loop's thread and never calls
/// the protocol itself.
class TULIP_API MemoryPeer {
 public:
  /// Queues `bytes` (empty: nothing) as one fragment: one read of the protocol,
  /// on a later iteration. Throws std::logic_error after feed_eof(). Does
  /// nothing once the transport is closing or after reset() (the bytes would be lost).
  void feed(std::string_view bytes);
  /// Queues `bytes` cut into fragments of `fragment_size` bytes (the last may
  /// be shorter): one read each. Throws std::invalid_argument for size 0.
  void feed(std::string_view bytes, std::size_t fragment_size);
  /// The peer finishes sending: after the fragments already fed, the protocol's
  /// eof_received() runs. Idempotent.
  void feed_eof();
  /// The peer resets the connection (a RST): on the next iteration the
  /// transport drops the fragments not yet read and its write buffer, and
  /// connection_lost(`error`) follows. Does nothing once the transport is closing
  /// or after an earlier reset().
  void reset(std::error_code error = std::make_error_code(std::errc::connection_reset));

  /// What the protocol wrote and the peer received, not yet taken.
  const std::string& written() const noexcept;
  /// Returns written() and empties it, which frees the peer's window: a
  /// blocked write buffer drains on the next iteration.
  std::string take_written();
  /// True once the peer would read EOF: the protocol's write_eof() or close()
  /// took effect after every buffered byte was delivered (not after abort()).
  bool peer_eof_seen() const noexcept;

  /// Sets how many unread bytes the peer holds before it stops accepting
  /// (nullopt: no limit). A wider window drains the buffer on the next iteration.
  void set_peer_window(std::optional<std::size_t> bytes);
  /// false: the peer accepts nothing (as a peer that stopped reading with a
  /// full socket buffer); true: it accepts again, up to its window.
  void set_peer_accepting(bool accepting);

  /// Bytes fed and not yet read by the protocol.
  std::size_t unread_size() const noexcept;
  /// Writes dropped because they came after close(), abort() or the loss.
  std::size_t dropped_writes() const noexcept;
  /// True once connection_lost has returned and the protocol was released.
  bool connection_lost() const noexcept;

  /// The transport the protocol sees.
  std::shared_ptr<Transport> transport() const;

 protected:
  /// @cond INTERNAL
  explicit MemoryPeer(std::shared_ptr<detail::MemoryStreamTransport> transport)
      : transport_(std::move(transport)) {}
  std::shared_ptr<detail::MemoryStreamTransport> transport_;
  friend class MemoryTransport;
  /// @endcond
};

/// What MemoryTransport::connect returns: the peer, plus the transport and the
/// protocol as create_connection's Connection has them.
template <class P>
class MemoryConnection : public MemoryPeer {
 public:
  /// The transport the protocol sees (the same as MemoryPeer::transport()).
  std::shared_ptr<Transport> transport;
  /// The protocol under test.
  std::shared_ptr<P> protocol;

 private:
  friend class MemoryTransport;
  MemoryConnection(MemoryPeer peer, std::shared_ptr<P> made)
      : MemoryPeer(std::move(peer)),
        transport(MemoryPeer::transport()),
        protocol(std::move(made)) {}
};

/// Makes in-memory connections (see the file comment).
class TULIP_API MemoryTransport {
 public:
  /// Connects `protocol` to a new scripted peer. The transport joins the loop
  /// at once; connection_made runs on the loop's next iteration, never inside
  /// this call. Throws RuntimeError if the loop is closed, std::invalid_argument
  /// for a null protocol.
  template <class P>
  static MemoryConnection<P> connect(EventLoop& loop, std::shared_ptr<P> protocol,
                                     MemoryTransportOptions options = {}) {
    static_assert(std::is_base_of_v<Protocol, P> || std::is_base_of_v<BufferedProtocol, P> ||
                      std::is_same_v<P, StreamProtocol>,
                  "MemoryTransport::connect needs a tulip::Protocol or tulip::BufferedProtocol");
    MemoryPeer peer = start(loop, protocol, std::move(options));
    return MemoryConnection<P>(std::move(peer), std::move(protocol));
  }

  /// The same with a protocol factory (any callable returning a shared_ptr or
  /// unique_ptr to a protocol), called once, inside this call.
  template <class Factory>
  requires std::is_invocable_v<Factory&>
  static auto connect(EventLoop& loop, Factory&& factory, MemoryTransportOptions options = {}) {
    using P = typename std::invoke_result_t<Factory&>::element_type;
    return connect(loop, std::shared_ptr<P>(factory()), std::move(options));
  }

 private:
  static MemoryPeer start(EventLoop& loop, std::shared_ptr<StreamProtocol> protocol,
                          MemoryTransportOptions options);
};

/// Runs `loop` one iteration at a time until no callback is ready (so every
/// fragment fed, every drain and every connection_lost that can happen has
/// happened), at most `max_iterations` times. Returns the iterations run.
/// Timers that are not yet due are left alone. Throws RuntimeError if the
/// work has not settled after `max_iterations` (a protocol that keeps
/// scheduling itself).
TULIP_API std::size_t run_until_idle(EventLoop& loop, std::size_t max_iterations = 100000);

/// Runs exactly one iteration of `loop` (polling without blocking).
TULIP_API void run_one_iteration(EventLoop& loop);

}  // namespace tulip::testing
