// Connector: one create_connection attempt, from resolution to connection_made.
//
// Steps: resolve the host (numeric hosts are parsed; a Unix socket path needs
// nothing), then try each address in turn: socket, options, optional bind,
// connect through the backend. The first address that connects gets a
// transport from the backend; if all fail, the error names each address and
// cause. A timeout option bounds the whole attempt. With Happy Eyeballs
// (happy_eyeballs_delay) several attempts may be in flight: the next one
// starts when the delay passes or an attempt fails, the first to connect wins
// and the others are closed. The Connector is backend-neutral: how a connect
// is waited for is the backend's business.
//
// Cancelling the caller's Future stops the attempt: cancel() closes the socket
// at once, and before the factory would run the attempt checks the Future
// itself, so no protocol is ever made for a cancelled attempt.
//
// The loop's registry keeps the Connector alive until it finishes or the loop
// closes (shutdown_with_loop()).
//
// ConnectAttempt is what the Connector and the shorter path for numeric
// hosts (direct_connect.hpp) share: the end of an attempt, from the connected
// socket to the caller's Future, and the ways it stops.
//
// Thread-safety: loop thread only (resolution runs on the Resolver's threads).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io_backend.hpp"
#include "resolver.hpp"
#include "tulip/connection.hpp"
#include "tulip/handle.hpp"
#include "tulip/socket_address.hpp"

namespace tulip::detail {

/// What every create_connection attempt shares once its socket connected,
/// written once for the Connector and DirectConnect: the check that the
/// caller did not give up, the protocol from the factory, the transport from
/// the backend, the completion after connection_made, and the ways an attempt
/// ends (fail, cancel, the loop closing). The loop's registry keeps the
/// attempt alive until it finishes; the attempt leaves it in finish().
class ConnectAttempt : public std::enable_shared_from_this<ConnectAttempt>,
                       public CancellableOperation,
                       public LoopMember {
 public:
  /// The caller gave up (cancelled its Future): stop without reporting.
  void cancel() noexcept override;
  /// The loop is closing: stop everything without reporting.
  void shutdown_with_loop() noexcept override { cancel(); }

 protected:
  ConnectAttempt(EventLoop& loop, ProtocolFactory&& factory, ConnectCompletion&& completion);
  ~ConnectAttempt() = default;

  /// True once the caller cancelled its Future (the cancellation's own
  /// callback may not have run yet): no protocol may be made any more.
  bool caller_gave_up() { return completion_.cancelled && completion_.cancelled(); }
  /// fd_ connected to `peer`: unless the caller gave up, makes the protocol
  /// and the transport (which owns fd_ from then on) and completes the
  /// caller's Future once connection_made has run; fails the attempt if the
  /// factory throws or the backend refuses the socket.
  void connected(const SocketAddress& peer);
  /// Ends the attempt with `error` for the caller (once; later calls do nothing).
  void fail(std::exception_ptr error);
  /// Closes what is open and leaves the registry, which may drop the last
  /// reference: callers hold shared_from_this() across it.
  void finish();

  /// Closes every socket the attempt still owns (fd_ and any in flight).
  virtual void close_socket() noexcept = 0;
  /// The attempt ended (connected, failed or cancelled): stop its timers.
  virtual void on_finished() noexcept {}

  EventLoop& loop_;
  IoBackend& backend_;
  ProtocolFactory factory_;
  ConnectCompletion completion_;
  int fd_ = -1;  // the connected socket, until the transport takes it
  bool finished_ = false;

 private:
  std::shared_ptr<Transport> made_;  // from connect until its connection_made has run
};

class Connector final : public ConnectAttempt {
 public:
  Connector(EventLoop& loop, ProtocolFactory factory, std::string host, std::uint16_t port,
            ConnectOptions options, ConnectCompletion completion);
  /// An attempt on a known address (a Unix socket path): nothing to resolve.
  /// `target` names it in messages.
  Connector(EventLoop& loop, ProtocolFactory factory, SocketAddress address, std::string target,
            ConnectOptions options, ConnectCompletion completion);

  void start();

 private:
  // One connect() in flight.
  struct Attempt {
    SocketAddress address;
    int fd = -1;
    std::unique_ptr<PendingConnect> pending;
  };

  std::shared_ptr<Connector> shared_self() {
    return std::static_pointer_cast<Connector>(shared_from_this());
  }
  void on_resolved(ResolveResult result);
  void try_next_address();
  void fail_if_exhausted();
  void on_connect_done(Attempt* attempt, std::error_code error);
  void close_attempt(Attempt& attempt) noexcept;
  void on_timeout();
  void record_failure(const SocketAddress& address, std::error_code error);

  // ConnectAttempt
  void close_socket() noexcept override;
  void on_finished() noexcept override { timeout_.cancel(); }

  std::string host_;
  std::uint16_t port_;
  ConnectOptions options_;
  std::vector<SocketAddress> addresses_;
  std::optional<SocketAddress> known_;  // set: skip resolution
  std::size_t next_ = 0;
  std::vector<std::string> failures_;
  std::error_code last_error_;
  SocketAddress current_;
  std::vector<std::unique_ptr<Attempt>> attempts_;  // in flight
  TimerHandle stagger_;                             // Happy Eyeballs: starts the next attempt
  TimerHandle timeout_;
};

}  // namespace tulip::detail
