// Connector: one create_connection attempt, from resolution to connection_made.
//
// Steps: resolve the host (skipped for numeric hosts), then try each address in
// turn: socket, options, optional bind, non-blocking connect, wait for
// writability, check SO_ERROR. The first address that connects gets a
// transport; if all fail, the error names each address and cause. A timeout
// option bounds the whole attempt.
//
// The loop's registry keeps the Connector alive until it finishes or the loop
// closes (abandon()).
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

class Connector final : public std::enable_shared_from_this<Connector>, private IoWatcher {
 public:
  Connector(EventLoop& loop, ProtocolFactory factory, std::string host, std::uint16_t port,
            ConnectOptions options, ConnectCallback done);

  void start();
  /// The loop is closing: stop everything without reporting.
  void abandon();

 private:
  void on_resolved(ResolveResult result);
  void try_next_address();
  void on_io_event(std::uint32_t events) override;
  void on_connected();
  void record_failure(const SocketAddress& address, std::error_code error);
  void fail(std::exception_ptr error);
  void finish();
  void close_socket();

  EventLoop& loop_;
  ProtocolFactory factory_;
  std::string host_;
  std::uint16_t port_;
  ConnectOptions options_;
  ConnectCallback done_;
  std::vector<SocketAddress> addresses_;
  std::size_t next_ = 0;
  std::vector<std::string> failures_;
  std::error_code last_error_;
  SocketAddress current_;
  int fd_ = -1;
  TimerHandle timeout_;
  bool finished_ = false;
};

}  // namespace tulip::detail
