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
// The endpoint's life (closing, flow control, connection_lost, the registry,
// extra info) is DatagramTransportBase's (datagram_transport_base.hpp); this
// class receives and sends.
//
// Thread-safety: loop thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "datagram_transport_base.hpp"
#include "io_backend.hpp"
#include "selector/epoll_backend.hpp"

namespace tulip::detail {

class SelectorDatagramTransport final : public DatagramTransportBase, private IoWatcher {
 public:
  /// Takes ownership of `socket.fd`. Call start() next.
  SelectorDatagramTransport(EpollBackend& backend, DatagramSocket socket);
  ~SelectorDatagramTransport() override;

  /// Registers with the loop and schedules connection_made, then reading, then
  /// `on_made`. If the kernel refuses to watch the socket, the socket is
  /// closed, nothing stays registered, and the error propagates.
  void start(Callback on_made);

  // DatagramTransport
  void sendto(std::string_view data, const std::optional<SocketAddress>& address) override;

 private:
  // Datagrams received per readiness event at most: level-triggered epoll
  // reports the rest on the next poll, after other sockets had their turn.
  static constexpr int kMaxReadsPerEvent = 32;
  // What the corked replies may keep allocated between batches.
  static constexpr std::size_t kKeptCorkBytes = 64 * 1024;

  // DatagramTransportBase
  void interest_changed() noexcept override;
  void send_corked() override { flush_corked(); }
  void release_resources() noexcept override;

  void on_io_event(std::uint32_t events) override;
  void on_readable();
  void on_writable();
  // Queues a datagram for the sendmmsg() after the batch being delivered.
  void cork(std::string_view data, const std::optional<SocketAddress>& to);
  // Sends the queued datagrams; what the kernel cannot take now is buffered.
  void flush_corked();
  // Fills send header `index` of the batch with `data` for `to`.
  void prepare_send(int index, const char* data, std::size_t size,
                    const std::optional<SocketAddress>& to) noexcept;
  // Closes the socket and runs on_release; once.
  void close_socket() noexcept;

  EpollBackend& backend_;
  std::size_t max_size_;
  std::size_t slot_size_;  // per datagram received: max_size_, at most 64 KiB on UDP

  // Replies queued while a batch is delivered: their headers are the
  // backend's batch's first corked_ send headers; the bytes that are not a
  // received datagram's are copied into cork_bytes_.
  int corked_ = 0;
  std::string cork_bytes_;
  bool delivering_ = false;  // on_readable is handing a batch to the protocol
  std::uint32_t interest_ = 0;
};

}  // namespace tulip::detail
