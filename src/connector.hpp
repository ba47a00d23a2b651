// Connector: one create_connection attempt, from resolution to connection_made.
//
// Steps: resolve the host (numeric hosts are parsed), then try each address in
// turn: socket, options, optional bind, connect through the backend. The first
// address that connects gets a transport from the backend; if all fail, the
// error names each address and cause. A timeout option bounds the whole
// attempt. The Connector is backend-neutral: how a connect is waited for is
// the backend's business.
//
// Cancelling the caller's Future stops the attempt: cancel() closes the socket
// at once, and before the factory would run the attempt checks the Future
// itself, so no protocol is ever made for a cancelled attempt.
//
// The loop's registry keeps the Connector alive until it finishes or the loop
// closes (shutdown_with_loop()).
//
// Thread-safety: loop thread only (resolution runs on the Resolver's threads).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "io_backend.hpp"
#include "resolver.hpp"
#include "tulip/connection.hpp"
#include "tulip/handle.hpp"
#include "tulip/socket_address.hpp"

namespace tulip::detail {

class Connector final : public std::enable_shared_from_this<Connector>,
                        public CancellableOperation,
                        public LoopMember {
 public:
  Connector(EventLoop& loop, ProtocolFactory factory, std::string host, std::uint16_t port,
            ConnectOptions options, ConnectCompletion completion);

  void start();
  /// The caller gave up (cancelled its Future): stop without reporting.
  void cancel() noexcept override;
  /// The loop is closing: stop everything without reporting.
  void shutdown_with_loop() noexcept override { cancel(); }

 private:
  void on_resolved(ResolveResult result);
  void try_next_address();
  void on_connect_done(std::error_code error);
  void on_connected();
  void on_timeout();
  void record_failure(const SocketAddress& address, std::error_code error);
  void fail(std::exception_ptr error);
  void finish();
  void close_socket() noexcept;

  EventLoop& loop_;
  IoBackend& backend_;
  ProtocolFactory factory_;
  std::string host_;
  std::uint16_t port_;
  ConnectOptions options_;
  ConnectCompletion completion_;
  std::vector<SocketAddress> addresses_;
  std::size_t next_ = 0;
  std::vector<std::string> failures_;
  std::error_code last_error_;
  SocketAddress current_;
  int fd_ = -1;
  std::unique_ptr<PendingConnect> pending_;
  std::shared_ptr<Transport> made_;  // from connect until its connection_made has run
  TimerHandle timeout_;
  bool finished_ = false;
};

}  // namespace tulip::detail
