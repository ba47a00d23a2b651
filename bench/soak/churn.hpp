// The soak's churn: a steady stream of short connections beside the long-lived
// ones. Each connects (with TLS: a full handshake), sends one message, checks
// its echo, closes (with TLS: close_notify both ways) and waits for
// connection_lost; a new one starts at a fixed rate, at most `concurrency` in
// flight. Loop thread only.
#pragma once

#include <cstdint>
#include <string>

#include "soak_protocols.hpp"
#include "tulip/connection_options.hpp"
#include "tulip/event_loop.hpp"

namespace tulip::soak {

class Churn {
 public:
  /// `events` and `loop` must outlive every connection started (wait for
  /// idle() before destroying this). Connection ids start at `first_id`, so
  /// that their byte streams differ from the long-lived connections'.
  Churn(EventLoop& loop, SoakEvents& events, ConnectOptions connect, std::uint16_t port,
        double per_second, int concurrency, std::size_t message_size, std::uint32_t first_id);

  /// Starts the connections due since the last tick; called on every tick of
  /// the run while it lasts.
  void tick(double now);
  /// True when no connection is in flight.
  bool idle() const { return in_flight_ == 0; }

  std::uint64_t completed() const { return completed_; }
  std::uint64_t failed() const { return failed_; }
  int in_flight() const { return in_flight_; }
  /// Connections not started because `concurrency` were already in flight.
  std::uint64_t skipped() const { return skipped_; }

  /// A started connection ended: `complete` when its whole echo came back.
  void finished(std::error_code cause, bool complete);

 private:
  void launch();

  EventLoop& loop_;
  SoakEvents& events_;
  ConnectOptions connect_;
  std::uint16_t port_;
  double per_second_;
  int concurrency_;
  std::size_t message_size_;
  std::uint32_t next_id_;
  double credit_ = 0;
  double last_tick_ = 0;
  int in_flight_ = 0;
  std::uint64_t completed_ = 0;
  std::uint64_t failed_ = 0;
  std::uint64_t skipped_ = 0;
};

}  // namespace tulip::soak
