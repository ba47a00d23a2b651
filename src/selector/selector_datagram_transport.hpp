// SelectorDatagramTransport: a UDP endpoint driven by readiness (epoll).
//
// asyncio's _SelectorDatagramTransport: each readiness event receives the
// waiting datagrams (a bounded number, so one busy socket cannot starve the
// loop) and hands each to datagram_received with its sender; sendto() tries
// the socket at once and buffers whole datagrams the kernel cannot take yet,
// flushing them in order on writability, with the shared high/low water marks.
//
// Batching: the datagrams of an event arrive with one recvmmsg() (a datagram
// cut short by its slot is still reported, per datagram, by MSG_TRUNC), and
// when more than one came, what the protocol sends while it handles them (an
// echo's replies) leaves with one sendmmsg() once the batch is delivered, or
// sooner if the batch of replies is full or the endpoint is closed. Buffered datagrams are flushed
// with sendmmsg() too. To the protocol this is invisible: such a sendto()
// returns as if it had sent; its errors reach error_received on a later
// iteration as always, and pause_writing comes when the flush finds the
// kernel's queue full.
//
// Errors of one datagram (ECONNREFUSED from ICMP on a connected endpoint, a
// datagram too long for the receive size) go to error_received; the endpoint
// goes on.
//
// State machine: open --close()--> closing (reading stopped, buffer draining)
// --buffer empty--> lost; open/closing --abort() or a protocol callback that
// threw--> lost; lost --connection_lost returned--> released. Every handler
// re-checks the state after each protocol callback.
//
// Thread-safety: loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include "flow_control.hpp"
#include "io_backend.hpp"
#include "selector/epoll_backend.hpp"
#include "tulip/datagram.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/exception_context.hpp"

namespace tulip::detail {

class SelectorDatagramTransport final : public DatagramTransport,
                                        public LoopMember,
                                        private IoWatcher {
 public:
  /// Takes ownership of `socket.fd`. Call start() next.
  SelectorDatagramTransport(EpollBackend& backend, DatagramSocket socket);
  ~SelectorDatagramTransport() override;

  /// Registers with the loop and schedules connection_made, then reading, then
  /// `on_made`. If the kernel refuses to watch the socket, the socket is
  /// closed, nothing stays registered, and the error propagates.
  void start(Callback on_made);

  // BaseTransport
  void close() override;
  bool is_closing() const noexcept override { return closing_; }
  std::any get_extra_info(std::string_view name) const override;
  EventLoop& get_loop() const noexcept override { return loop_; }

  // DatagramTransport
  void sendto(std::string_view data, const std::optional<SocketAddress>& address) override;
  void abort() override;
  void set_write_buffer_limits(std::optional<std::size_t> high,
                               std::optional<std::size_t> low) override;
  std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept override {
    return flow_.limits();
  }
  std::size_t get_write_buffer_size() const noexcept override { return buffered_bytes_; }
  void set_protocol(std::shared_ptr<DatagramProtocol> protocol) override;
  DatagramProtocol* get_datagram_protocol() const noexcept override { return protocol_.get(); }
  using DatagramTransport::set_protocol;

  /// The loop is closing: tell the protocol (connection_lost with
  /// ECONNABORTED) and release everything now.
  void shutdown_with_loop() noexcept override;

 private:
  // asyncio counts this much per buffered datagram on top of its bytes.
  static constexpr std::size_t kHeaderSize = 8;
  // Datagrams received per readiness event at most: level-triggered epoll
  // reports the rest on the next poll, after other sockets had their turn.
  static constexpr int kMaxReadsPerEvent = 32;
  // What the corked replies may keep allocated between batches.
  static constexpr std::size_t kKeptCorkBytes = 64 * 1024;

  struct Pending {
    std::string data;
    std::optional<SocketAddress> to;  // nullopt: the connected peer
  };

  void on_io_event(std::uint32_t events) override;
  void on_readable();
  void on_writable();
  // sendto()/send() of one datagram: bytes sent, or -errno.
  ssize_t send_one(std::string_view data, const std::optional<SocketAddress>& to) noexcept;
  // Queues a datagram for the sendmmsg() after the batch being delivered.
  void cork(std::string_view data, const std::optional<SocketAddress>& to);
  // Sends the queued datagrams; what the kernel cannot take now is buffered.
  void flush_corked();
  // Fills send header `index` of the batch with `data` for `to`.
  void prepare_send(int index, const char* data, std::size_t size,
                    const std::optional<SocketAddress>& to) noexcept;
  // Tells the protocol about an OS error of one datagram, from a fresh stack.
  void report_later(std::error_code error);
  void report_now(std::error_code error);
  void update_interest() noexcept;
  void maybe_pause_protocol();
  void maybe_resume_protocol();
  void protocol_failed(const char* message);
  void force_close(std::error_code error);
  void schedule_connection_lost(std::error_code error);
  void call_connection_lost(std::error_code error);
  void release();
  // Closes the socket and runs on_release_; once.
  void close_socket() noexcept;
  ExceptionContext context(const char* message) const;

  EventLoop& loop_;
  EpollBackend& backend_;
  int fd_;
  std::shared_ptr<DatagramProtocol> protocol_;
  std::optional<SocketAddress> remote_;
  mutable SocketAddress sockname_;  // refreshed while open: the kernel binds on first send
  std::size_t max_size_;
  std::size_t slot_size_;  // per datagram received: max_size_, at most 64 KiB on UDP
  Callback on_release_;    // after the socket is closed

  std::deque<Pending> buffer_;
  std::size_t buffered_bytes_ = 0;
  // Replies queued while a batch is delivered: their headers are the
  // backend's batch's first corked_ send headers; the bytes that are not a
  // received datagram's are copied into cork_bytes_.
  int corked_ = 0;
  std::string cork_bytes_;
  bool delivering_ = false;  // on_readable is handing a batch to the protocol
  WriteFlowControl flow_;

  bool reading_started_ = false;  // connection_made has run
  bool closing_ = false;
  bool lost_ = false;
  bool released_ = false;
  std::uint32_t interest_ = 0;
  std::size_t dropped_writes_ = 0;
};

}  // namespace tulip::detail
