// EchoServerProtocol: the protocol of tulip-echo-server, one per connection.
//
// Default mode: echo the first chunk received, then close (the asyncio docs'
// echo server). keep_open: echo every byte until the peer half-closes, with
// backpressure (reading pauses while the write buffer is over its high-water
// mark). Logs in the seed's format unless quiet. Kept apart from the tool's
// main so that tests can run it over tulip::testing::MemoryTransport.
// echo_server_streams.hpp is the same server written on the streams API.
//
// Thread-safety: the loop's thread only, like every protocol.
#pragma once

#include <string_view>
#include <system_error>

#include "connection_log.hpp"
#include "tulip/tulip.hpp"

namespace tulip::tools {

class EchoServerProtocol final : public Protocol {
 public:
  EchoServerProtocol(bool keep_open, bool quiet)
      : keep_open_(keep_open), just_echo_(keep_open && quiet), log_(quiet) {}

  void connection_made(Transport& transport) override {
    transport_ = &transport;
    log_.connection_made(transport);
  }

  void data_received(std::string_view data) override {
    // The benchmarked mode (--keep-open --quiet) decided once, at construction:
    // one test instead of four on every read.
    if (just_echo_) {
      transport_->write(data);
      return;
    }
    log_and_echo(data);
  }

  // Backpressure: a peer that does not read makes our write buffer grow; stop
  // reading from it until the buffer drains, so memory stays bounded.
  void pause_writing() override { transport_->pause_reading(); }
  void resume_writing() override { transport_->resume_reading(); }

  bool eof_received() override {
    log_.peer_finished();
    return false;  // the transport closes itself once everything echoed is sent
  }

  void connection_lost(std::error_code error) override {
    log_.connection_lost(*transport_, error);
    transport_ = nullptr;
  }

 private:
  // data_received in every other mode; apart, so the mode above needs no frame.
  [[gnu::noinline]] void log_and_echo(std::string_view data) {
    log_.received(data);
    transport_->write(data);
    log_.sent(data);
    if (!keep_open_) {
      log_.closing();
      transport_->close();
    }
  }

  const bool keep_open_;
  const bool just_echo_;  // keep_open_ and quiet: nothing to do but write
  const ConnectionLog log_;
  Transport* transport_ = nullptr;  // valid from connection_made until connection_lost
};

}  // namespace tulip::tools
