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
// The endpoint's life (closing, flow control, connection_lost, the registry,
// extra info) is DatagramTransportBase's (datagram_transport_base.hpp); this
// class receives and sends.
//
// Thread-safety: loop thread only.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "datagram_transport_base.hpp"
#include "io_backend.hpp"
#include "uring/uring_backend.hpp"

namespace tulip::detail {

class UringDatagramTransport final : public DatagramTransportBase, private BatchSender {
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

  // DatagramTransport
  void sendto(std::string_view data, const std::optional<SocketAddress>& address) override;

 private:
  // What the receive buffers may take in all (as the epoll backend's batch).
  static constexpr std::size_t kReceiveBytes = 2 * 1024 * 1024;
  // Receive buffers at most (a power of two): datagrams taken per wait.
  static constexpr unsigned kMaxReceiveBuffers = 32;

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

  // DatagramTransportBase
  void interest_changed() noexcept override;
  void send_corked() override { send_batch(); }
  void release_resources() noexcept override;

  void arm_receive();
  void on_received(const io_uring_cqe& cqe);
  // Hands the datagram in receive buffer `id` (`length` bytes written) to the protocol.
  void deliver(unsigned id, std::size_t length);
  void recycle(unsigned id) noexcept;
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
  // Cancels the requests, closes the socket and runs on_release; once.
  void close_socket() noexcept;
  void release_buffer_group() noexcept;

  UringBackend& backend_;
  std::size_t slot_size_;  // the longest datagram delivered

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
  bool receive_cancelled_ = false;  // closing: its cancel is asked for (once)

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
  // buffer_ (the base's) waits behind the send in flight.
  PendingDatagram in_flight_;  // the send request's datagram; counts in buffered_bytes_
  msghdr send_header_{};
  iovec send_vector_{};
  SendRequest send_{*this};
  bool sending_ = false;

  std::shared_ptr<DatagramTransport> self_;  // while requests_ > 0
  int requests_ = 0;
};

}  // namespace tulip::detail
