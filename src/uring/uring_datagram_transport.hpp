// UringDatagramTransport: a datagram endpoint (UDP or Unix) driven by
// io_uring completions.
//
// The behaviour is asyncio's _SelectorDatagramTransport, as on the epoll
// backend (selector_datagram_transport.hpp); only the mechanics differ:
//  * Receiving: one multishot recvmsg request into a provided buffer ring
//    of the endpoint's own. Each completion is one datagram with its sender,
//    so they come in the order the socket had them, however many arrive
//    between two iterations (the role recvmmsg plays on epoll). The ring's
//    buffers are the endpoint's receive size long (plus the header and the
//    sender the kernel writes before the bytes), so that a datagram longer
//    than max_datagram_size is cut short and flagged MSG_TRUNC: it is
//    reported (EMSGSIZE to error_received), never delivered, as on epoll.
//    The backend's shared ring could not do this: its buffers are 16 KiB,
//    and a longer datagram, legal up to the receive size, would be lost.
//    When the kernel ends the request (out of buffers, an error such as
//    ECONNREFUSED, which goes to error_received), it is armed again.
//  * Sending: sendto() sends at once when nothing is queued (a caller may
//    look at the peer right after it, without running the loop), except
//    inside a completion handler (datagram_received): those datagrams leave
//    together with one sendmmsg() when the handlers are done, before
//    anything else runs (epoll's transport does the same per batch). What
//    the kernel cannot take is queued behind one sendmsg request that waits
//    for room; when it completes, the queue goes with sendto() calls until
//    the kernel's queue is full again (then another request), in order. The
//    request's datagram is owned by the transport (an abort, which drops the
//    queue, never frees bytes the kernel still reads) and counts in
//    get_write_buffer_size until sent.
//  * Closing: the requests in flight are cancelled synchronously before the
//    socket is closed (after connection_lost, as on epoll), so that its port
//    or path is free when on_release runs; the transport keeps a reference to
//    itself while a request is in flight, and gives its buffer group back
//    once its receive has completed for the last time.
//
// State machine: open --close()--> closing (reading stopped, queue draining)
// --queue empty--> lost; open/closing --abort() or a protocol callback that
// threw--> lost; lost --connection_lost returned--> released.
//
// Thread-safety: loop thread only.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "flow_control.hpp"
#include "io_backend.hpp"
#include "tulip/datagram.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/exception_context.hpp"
#include "uring/uring_backend.hpp"

namespace tulip::detail {

class UringDatagramTransport final : public DatagramTransport,
                                     public LoopMember,
                                     private BatchSender {
 public:
  /// Takes ownership of `socket.fd` (claimed by the backend already) and sets
  /// up its receive buffers. Call start() next.
  UringDatagramTransport(UringBackend& backend, DatagramSocket socket);
  ~UringDatagramTransport() override;

  /// Registers the receive buffers and the transport with the loop and
  /// schedules connection_made, then reading, then `on_made`. If the kernel
  /// refuses the buffers, the socket is closed, nothing stays registered,
  /// and the error propagates.
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
  // What the receive buffers may take in all (as the epoll backend's batch).
  static constexpr std::size_t kReceiveBytes = 2 * 1024 * 1024;
  // Receive buffers at most (a power of two): datagrams taken per wait.
  static constexpr unsigned kMaxReceiveBuffers = 32;

  struct Pending {
    std::string data;
    std::optional<SocketAddress> to;  // nullopt: the connected peer
  };
  struct ReceiveRequest final : Completion {
    explicit ReceiveRequest(UringDatagramTransport& transport) : owner(transport) {}
    void complete(const io_uring_cqe& cqe) override { owner.on_received(cqe); }
    UringDatagramTransport& owner;
  };
  struct SendRequest final : Completion {
    explicit SendRequest(UringDatagramTransport& transport) : owner(transport) {}
    void complete(const io_uring_cqe& cqe) override { owner.on_sent(cqe); }
    UringDatagramTransport& owner;
  };

  void arm_receive();
  void on_received(const io_uring_cqe& cqe);
  // Hands the datagram in receive buffer `id` (`length` bytes written) to the protocol.
  void deliver(unsigned id, std::size_t length);
  void recycle(unsigned id) noexcept;
  // sendto()/send() of one datagram: bytes sent, or -errno.
  ssize_t send_one(std::string_view data, const std::optional<SocketAddress>& to) noexcept;
  // Sends the queue's front with a sendmsg request.
  void start_send();
  void on_sent(const io_uring_cqe& cqe);
  // Sends the queue with sendto() until the kernel's queue is full, then
  // leaves the rest to a sendmsg request.
  void send_queued();
  // Keeps a datagram sent from inside a completion handler for send_batch.
  void cork(std::string_view data, const std::optional<SocketAddress>& to);
  // The gathered datagrams, with sendmmsg(); what the kernel cannot take is queued.
  void send_batch() noexcept override;
  void request_started();
  void request_finished() noexcept;
  // The kernel refused a request: this endpoint cannot go on.
  void submission_failed();
  // Tells the protocol about an OS error of one datagram, from a fresh stack.
  void report_later(std::error_code error);
  void report_now(std::error_code error);
  void maybe_pause_protocol();
  void maybe_resume_protocol();
  void protocol_failed(const char* message);
  void force_close(std::error_code error);
  void schedule_connection_lost(std::error_code error);
  void call_connection_lost(std::error_code error);
  void release();
  // Cancels the requests, closes the socket and runs on_release_; once.
  void close_socket() noexcept;
  void release_buffer_group() noexcept;
  ExceptionContext context(const char* message) const;

  EventLoop& loop_;
  UringBackend& backend_;
  int fd_;
  std::shared_ptr<DatagramProtocol> protocol_;
  std::optional<SocketAddress> remote_;
  mutable SocketAddress sockname_;  // refreshed while open: the kernel binds on first send
  std::size_t slot_size_;           // the longest datagram delivered
  Callback on_release_;             // after the socket is closed

  // Receiving: the provided buffer ring (its own mapping, page-aligned) and
  // the buffers, each a recvmsg header, the sender, then slot_size_ bytes.
  io_uring_buf_ring* buffer_ring_ = nullptr;
  std::unique_ptr<char[]> buffers_;
  unsigned buffer_count_ = 0;
  std::size_t buffer_size_ = 0;
  int buffer_group_ = -1;  // registered with the kernel while >= 0
  msghdr receive_header_{};
  ReceiveRequest receive_{*this};
  bool receiving_ = false;

  // Sending. Datagrams sent while completion handlers run (an echo's
  // replies) are gathered and leave with one sendmmsg() once the handlers
  // are done, before anything else runs (UringBackend::send_after_handlers).
  struct Corked {
    std::size_t offset;  // in cork_bytes_
    std::size_t size;
    std::optional<SocketAddress> to;
  };
  std::vector<Corked> corked_;
  std::string cork_bytes_;
  std::deque<Pending> buffer_;  // waiting for the send in flight
  Pending in_flight_;           // the send request's datagram
  msghdr send_header_{};
  iovec send_vector_{};
  SendRequest send_{*this};
  bool sending_ = false;
  std::size_t buffered_bytes_ = 0;  // the queue and the datagram in flight
  WriteFlowControl flow_;

  std::shared_ptr<DatagramTransport> self_;  // while requests_ > 0
  int requests_ = 0;
  bool reading_started_ = false;  // connection_made has run
  bool closing_ = false;
  bool lost_ = false;
  bool released_ = false;
  std::size_t dropped_writes_ = 0;
};

}  // namespace tulip::detail
