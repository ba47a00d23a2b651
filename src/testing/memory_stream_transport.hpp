// MemoryStreamTransport: the transport behind tulip::testing::MemoryTransport.
// Not API.
//
// It mirrors SelectorSocketTransport's state machine (src/selector/) with the
// kernel replaced by two in-memory queues: `inbound_` (fragments the peer fed,
// each one read) and `peer_received_` (bytes the peer accepted), the peer's
// window standing in for the socket buffer. Where the socket transport waits
// for readiness, this one schedules a pump with call_soon: one read per
// iteration, and a drain of the write buffer on the iteration after the
// window opens.
//
//   open --close()--> closing (reading stopped, buffer draining)
//        --buffer empty--> lost (connection_lost scheduled)
//   open/closing --abort(), reset() or a callback that threw--> lost (buffer dropped)
//   lost --connection_lost returned--> released (protocol and registry entry dropped)
//
// Every step re-checks the state after each protocol callback, since the
// callback may have closed, aborted, paused or replaced the protocol.
//
// Thread-safety: loop thread only.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include "flow_control.hpp"
#include "io_backend.hpp"
#include "sendfile_support.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/exception_context.hpp"
#include "tulip/protocol.hpp"
#include "tulip/socket_address.hpp"
#include "tulip/testing/memory_transport.hpp"
#include "tulip/transport.hpp"
#include "write_buffer.hpp"

namespace tulip::testing::detail {

class MemoryStreamTransport final : public Transport,
                                    public tulip::detail::LoopMember,
                                    public tulip::detail::BufferedSendfileTarget {
 public:
  MemoryStreamTransport(EventLoop& loop, MemoryTransportOptions options);

  /// Joins the loop's registry and schedules connection_made.
  void start(std::shared_ptr<StreamProtocol> protocol);

  // ---- Transport ---------------------------------------------------------------
  void close() override;
  bool is_closing() const noexcept override { return closing_; }
  std::any get_extra_info(std::string_view name) const override;
  void set_protocol(std::shared_ptr<StreamProtocol> protocol) override;
  StreamProtocol* get_protocol() const noexcept override { return protocol_.get(); }
  EventLoop& get_loop() const noexcept override { return loop_; }

  void pause_reading() override;
  void resume_reading() override;
  bool is_reading() const noexcept override { return !closing_ && !reading_paused_; }

  void write(std::string_view data) override;
  void write(std::string&& data) override;
  void writelines(std::span<const std::string_view> buffers) override;
  void write_eof() override;
  bool can_write_eof() const noexcept override { return true; }
  void abort() override;

  void set_write_buffer_limits(std::optional<std::size_t> high,
                               std::optional<std::size_t> low) override;
  std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept override {
    return flow_.limits();
  }
  std::size_t get_write_buffer_size() const noexcept override { return buffer_.size(); }

  void shutdown_with_loop() noexcept override;

  // loop.sendfile's buffered path works on this transport too.
  std::shared_ptr<StreamProtocol> owned_protocol() const noexcept override { return protocol_; }
  bool protocol_writing_paused() const noexcept override { return flow_.paused(); }

  // ---- The peer's side (MemoryPeer) -----------------------------------------------
  void peer_feed(std::string_view bytes);
  void peer_feed_eof();
  void peer_reset(std::error_code error);
  const std::string& peer_received() const noexcept { return peer_received_; }
  std::string peer_take();
  bool peer_eof_seen() const noexcept { return eof_sent_; }
  void peer_set_window(std::optional<std::size_t> bytes);
  void peer_set_accepting(bool accepting);
  std::size_t unread_size() const noexcept;
  std::size_t dropped_writes() const noexcept { return dropped_writes_; }
  bool released() const noexcept { return released_; }

 private:
  // ---- Reading ----
  bool can_read() const noexcept {
    return reading_started_ && !closing_ && !reading_paused_ && !eof_received_;
  }
  void schedule_read();
  void read_once();
  void read_into_protocol();
  void read_into_buffered_protocol();
  void on_eof();

  // ---- Writing ----
  bool accept_write(std::size_t bytes);
  // How many more bytes the peer accepts now.
  std::size_t peer_space() const noexcept;
  // Hands the peer what fits of `data`; returns how much it took.
  std::size_t deliver(std::string_view data);
  void after_buffer_grew();
  void schedule_drain();
  void drain();
  void maybe_pause_protocol();
  void maybe_resume_protocol();

  // ---- Closing and errors ----
  void force_close(std::error_code error);
  void schedule_connection_lost(std::error_code error);
  void call_connection_lost(std::error_code error);
  void release();
  ExceptionContext context(const char* message) const;
  void report_current_exception(const char* message) noexcept;
  void protocol_failed(const char* message);

  EventLoop& loop_;
  std::shared_ptr<StreamProtocol> protocol_;
  Protocol* data_protocol_ = nullptr;
  BufferedProtocol* buffered_protocol_ = nullptr;
  SocketAddress peername_;
  SocketAddress sockname_;

  // The peer's side.
  std::deque<std::string> inbound_;  // fragments fed and not yet read (front partly read)
  std::size_t inbound_offset_ = 0;   // bytes of inbound_.front() already read
  bool peer_eof_ = false;            // feed_eof(): EOF after the fragments
  bool peer_reset_ = false;          // reset(): the peer sends nothing more
  std::string peer_received_;        // what the peer accepted and the test has not taken
  std::optional<std::size_t> peer_window_;
  bool peer_accepting_ = true;

  tulip::detail::WriteBuffer buffer_;
  tulip::detail::WriteFlowControl flow_;

  bool read_scheduled_ = false;
  bool drain_scheduled_ = false;
  bool reading_started_ = false;  // connection_made has run
  bool reading_paused_ = false;
  bool eof_received_ = false;
  bool closing_ = false;        // close(), abort(), reset or loss
  bool lost_ = false;           // connection_lost scheduled (or done)
  bool eof_requested_ = false;  // write_eof() called
  bool eof_sent_ = false;       // the peer would read EOF
  bool released_ = false;
  std::size_t dropped_writes_ = 0;
};

}  // namespace tulip::testing::detail
