// EchoServerProtocol: the protocol of tulip-echo-server, one per connection.
//
// Default mode: echo the first chunk received, then close (the asyncio docs'
// echo server). keep_open: echo every byte until the peer half-closes, with
// backpressure (reading pauses while the write buffer is over its high-water
// mark). Logs in the seed's format unless quiet. Kept apart from the tool's
// main so that tests can run it over tulip::testing::MemoryTransport.
//
// Thread-safety: the loop's thread only, like every protocol.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

#include "tool_support.hpp"
#include "tulip/tulip.hpp"

namespace tulip::tools {

class EchoServerProtocol final : public Protocol {
 public:
  EchoServerProtocol(bool keep_open, bool quiet) : keep_open_(keep_open), quiet_(quiet) {}

  void connection_made(Transport& transport) override {
    transport_ = &transport;
    if (!quiet_) log("connection from " + peer());
  }

  void data_received(std::string_view data) override {
    if (!quiet_) log_chunk("recv: ", data);
    transport_->write(data);
    if (!quiet_) log_chunk("sent: ", data);
    if (!keep_open_) {
      log("close the client socket");
      transport_->close();
    }
  }

  // Backpressure: a peer that does not read makes our write buffer grow; stop
  // reading from it until the buffer drains, so memory stays bounded.
  void pause_writing() override { transport_->pause_reading(); }
  void resume_writing() override { transport_->resume_reading(); }

  bool eof_received() override {
    log("the peer finished sending");
    return false;  // the transport closes itself once everything echoed is sent
  }

  void connection_lost(std::error_code error) override {
    if (!quiet_) {
      log("connection from " + peer() + " closed" + (error ? ": " + error.message() : ""));
    }
    transport_ = nullptr;
  }

 private:
  // Computed when logged rather than kept: with --quiet an idle connection then
  // costs the server no string.
  std::string peer() const {
    auto address = transport_->get_extra_info<SocketAddress>("peername");
    return address ? address->to_string() : std::string("None");
  }

  void log(const std::string& message) const {
    if (!quiet_) log_line(message);
  }

  // Out of line, so that the echo path itself builds no string (it is what the
  // benchmarks measure, with --quiet).
  [[gnu::noinline, gnu::cold]] void log_chunk(const char* what, std::string_view data) const {
    log_line(what + python_bytes_repr(data));
  }

  const bool keep_open_;
  const bool quiet_;
  Transport* transport_ = nullptr;  // valid from connection_made until connection_lost
};

}  // namespace tulip::tools
