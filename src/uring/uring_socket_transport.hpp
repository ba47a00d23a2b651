// UringSocketTransport: a stream transport driven by io_uring completions,
// on a connected socket (TCP or Unix) or on one end of a pipe.
//
// The life of the transport (protocol, buffer, flow control, closing,
// connection_lost) is StreamTransportBase's; this class moves the bytes:
//  * Reading: one multishot receive into the backend's provided buffer ring,
//    re-armed when the kernel ends it (no IORING_CQE_F_MORE: -ENOBUFS, or
//    any other reason) while reading is wanted. Each completion's bytes go to
//    data_received and the buffer goes back to the ring at once. Pausing
//    cancels the receive; bytes that were already on their way are kept and
//    handed over, from the ready queue, when reading resumes.
//    A BufferedProtocol is read differently: a poll request says the socket
//    is readable, and a recv() takes the bytes straight into its get_buffer()
//    memory (no copy, and the kernel never holds that memory).
//  * Writing: a write() made inside a completion handler (the echo's
//    data_received) goes to a send request, submitted with the loop's next
//    io_uring_enter, which comes before anything else runs (see
//    UringBackend::dispatch). Any other write() tries send() at once, as
//    asyncio (and the epoll backend) do, so that the bytes are on their way
//    when write() returns; what the kernel did not take goes to a send
//    request. One send is in flight at a time, which keeps the bytes in order. The bytes of that
//    send are moved out of the write buffer into a string this object owns, so that an abort, which
//    drops the write buffer, never frees memory the kernel is still reading. The write buffer size
//    that flow control and get_write_buffer_size() see counts the bytes in flight. close() waits
//    for them as for buffered bytes.
//    On TCP, a send request of at least the loop's zero-copy threshold
//    (EventLoopOptions::zero_copy_send_threshold, off by default) is a
//    zero-copy send (uring_zero_copy_send.cpp): its bytes move into a request
//    object of their own, which the kernel's notification frees, however
//    long after the send completed (and the transport closed) it comes. The
//    transport goes on as after a send once the request's first completion
//    came. It stops sending zero-copy when the kernel says it copied.
//
// Pipes (uring_pipe_transport.cpp), as on the epoll backend and as asyncio's
// _UnixReadPipeTransport and _UnixWritePipeTransport:
//  * a read end reads with read requests (IORING_OP_READ, one at a time) into
//    the same provided buffer ring: the ring holds no memory for a pipe whose
//    writer is quiet, and the bytes take the socket's path from there. A
//    BufferedProtocol's bytes are read() into its memory after a poll request,
//    as a socket's are recv()ed. A read that filled its ring buffer is followed
//    by read()s into a per-thread buffer until the pipe is empty (a pipe holds
//    64 KiB, a ring buffer 16 KiB: a bulk stream costs a quarter of the
//    completions), then the read request is armed again. At EOF it calls
//    eof_received and closes, whatever that returned; write() throws
//    RuntimeError.
//  * a write end writes with write requests (IORING_OP_WRITE), by the same
//    rules as sends (one in flight, write() trying write() at once outside
//    completion handlers); while one is in flight SIGPIPE is held back from
//    the loop's thread (uring_pipe_signal.hpp). Instead of a receive it keeps
//    a poll request on a FIFO or socket (watch_hang_up) to see its reader go:
//    then it closes, with EPIPE if bytes were still waiting, as a write request
//    failing with EPIPE does. write_eof() is close().
//
// Lifetime: while any request is in flight the transport keeps a reference
// to itself (self_), dropped by the last completion; releasing the transport
// cancels its requests, so that reference does not last.
//
// Thread-safety: loop thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "sendfile_support.hpp"
#include "stream_transport_base.hpp"
#include "tulip/socket_address.hpp"
#include "uring/uring_backend.hpp"

namespace tulip {
class Server;
}

namespace tulip::detail {

class UringSocketTransport final : public StreamTransportBase, public BufferedSendfileTarget {
 public:
  /// Takes ownership of the connected socket `socket.fd` (claimed by the
  /// backend already). Call start() next.
  UringSocketTransport(UringBackend& backend, StreamSocket socket);
  /// Takes ownership of the non-blocking pipe end `pipe.fd` (claimed by the
  /// backend already). Call start() next.
  UringSocketTransport(UringBackend& backend, PipeEnd pipe);
  ~UringSocketTransport() override;

  /// Registers with the loop and schedules connection_made, then reading, then `on_made`.
  void start(Callback on_made);

  // BaseTransport
  std::any get_extra_info(std::string_view name) const override;
  void close() override;

  // WriteTransport
  void set_write_buffer_limits(std::optional<std::size_t> high,
                               std::optional<std::size_t> low) override {
    flow_.set_limits(high, low);
    pause_protocol_if_needed();  // counting the bytes in flight
  }
  void write(std::string_view data) override;
  void write(std::string&& data) override;
  void writelines(std::span<const std::string_view> buffers) override;
  void write_eof() override;
  bool can_write_eof() const noexcept override { return kind_ != Kind::kReadPipe; }
  std::size_t get_write_buffer_size() const noexcept override {
    // Bytes of a send still in flight count until the kernel took them, unless
    // the connection is lost (they are dropped then, as the buffer is).
    return buffer_.size() + (lost_ ? 0 : sent_.size() - sent_offset_ + zero_copy_bytes_);
  }

  // BufferedSendfileTarget
  std::shared_ptr<StreamProtocol> owned_protocol() const noexcept override { return protocol_; }
  bool protocol_writing_paused() const noexcept override { return flow_.paused(); }

 private:
  enum class Kind : std::uint8_t { kSocket, kReadPipe, kWritePipe };

  // The two kinds of request a transport has in flight, at most one of each.
  struct ReceiveRequest final : Completion {
    explicit ReceiveRequest(UringSocketTransport& transport) : owner(transport) {}
    void complete(const io_uring_cqe& cqe) override { owner.on_received(cqe); }
    UringSocketTransport& owner;
  };
  struct SendRequest final : Completion {
    explicit SendRequest(UringSocketTransport& transport) : owner(transport) {}
    void complete(const io_uring_cqe& cqe) override { owner.on_sent(cqe); }
    UringSocketTransport& owner;
  };
  // A zero-copy send (uring_zero_copy_send.cpp): a heap object that owns the
  // bytes the kernel sends from until its notification (IORING_CQE_F_NOTIF)
  // says the kernel let go of them; it then deletes itself. Its first
  // completion goes to the transport, which is alive then (a request in
  // flight keeps it so); the notification may come after the transport has
  // gone, and reaches it only if it is still there.
  class ZeroCopySend final : public Completion {
   public:
    ZeroCopySend(UringSocketTransport& owner, std::string bytes, std::size_t offset)
        : owner_(&owner), bytes_(std::move(bytes)), offset_(offset) {}
    void complete(const io_uring_cqe& cqe) override;
    // The bytes this request sends.
    std::string_view unsent() const noexcept { return std::string_view(bytes_).substr(offset_); }

   private:
    UringSocketTransport* owner_;      // until the first completion
    std::weak_ptr<Transport> notify_;  // after it: told whether the kernel copied
    std::string bytes_;                // read by the kernel until the notification
    std::size_t offset_;               // where the request starts in bytes_
  };

  // StreamTransportBase
  void interest_changed() noexcept override { update_requests(); }
  void release_resources() noexcept override;
  std::string describe_endpoint() const override;
  Server* accepting_server() const noexcept override { return server_.get(); }

  bool wants_to_read() const noexcept {
    return reading_started_ && !reading_paused_ && !closing_ && !eof_received_ && !lost_ &&
           kind_ != Kind::kWritePipe;
  }
  // A write pipe's "receive" is the poll request that sees its reader go.
  bool watches_hang_up() const noexcept {
    return kind_ == Kind::kWritePipe && watch_hang_up_ && reading_started_ && !lost_;
  }
  // Brings the requests in flight in line with the state; a refusal of the
  // kernel ends this connection.
  void update_requests() noexcept;
  void arm_receive();
  void start_send();
  // The transport keeps itself alive while a request is in flight.
  void request_started();
  void request_finished() noexcept;

  void on_received(const io_uring_cqe& cqe);
  // The poll request of a BufferedProtocol's transport completed: recv()
  // into its get_buffer() memory.
  void on_readable(const io_uring_cqe& cqe);
  // The reader of a write pipe went away (its poll request completed).
  void on_hang_up(const io_uring_cqe& cqe);
  void read_into_buffered_protocol();
  // A pipe's read filled a whole ring buffer, so more is likely waiting:
  // read() the rest at once, as epoll would after readiness.
  void read_pipe_burst();
  // Hands `data` to the protocol; what is left when reading was paused
  // meanwhile is kept in stash_.
  void deliver(std::string_view data);
  void deliver_to_buffered_protocol(std::string_view data);
  void deliver_stash();
  void on_eof();
  bool eof_waits_for_send() const noexcept;
  void on_sent(const io_uring_cqe& cqe);
  // What follows every send's completion: the next send, resume_writing, the
  // close or write_eof() that waited for it. May destroy this object.
  void after_send();
  // The request in flight for writing: the send (or pipe write) request, or
  // the zero-copy send.
  Completion* send_request() noexcept {
    return zero_copy_ != nullptr ? static_cast<Completion*>(zero_copy_) : &send_;
  }
  // The send request prepared and not yet submitted, which more bytes can join.
  bool send_unsubmitted() const noexcept {
    return sending_ && zero_copy_ == nullptr && backend_.submissions() == send_epoch_;
  }
  // ---- Zero-copy sends (uring_zero_copy_send.cpp) ----
  bool wants_zero_copy(std::size_t bytes) const noexcept {
    std::size_t threshold = backend_.zero_copy_threshold();
    return zero_copy_allowed_ && threshold != 0 && bytes >= threshold;
  }
  // Sends the rest of sent_ zero-copy: its bytes move into the request.
  void start_zero_copy_send();
  void on_zero_copy_sent(ZeroCopySend& request, const io_uring_cqe& cqe);
  // The kernel let go of a zero-copy send's bytes; `copied`: it had copied them.
  void on_zero_copy_released(bool copied) noexcept;
  // Prepares the request that writes `size` bytes at `data`: a send on a
  // socket, a write on a pipe.
  io_uring_sqe* prepare_write_request(const char* data, std::size_t size);
  void send_eof();
  // send() at once (as asyncio's write does); returns how many bytes the
  // kernel took, or -1 after a fatal error.
  ssize_t send_now(const iovec* buffers, std::size_t count);
  // Adds `data` to the send request if it is prepared and not yet submitted
  // (a second write() in one handler); false if it cannot.
  bool append_to_unsubmitted_send(std::string_view data);
  // Called after the buffer grew: sends if nothing is in flight, pauses the
  // protocol past the high-water mark (counting the bytes in flight).
  void after_buffer_grew();
  void pause_protocol_if_needed();
  void resume_protocol_if_needed();
  bool accept_write(std::size_t bytes) {
    if (bytes != 0 && !closing_ && !lost_ && !eof_requested_ && kind_ != Kind::kReadPipe) [[likely]]
      return true;
    return refuse_pipe_write(bytes);
  }
  bool refuse_pipe_write(std::size_t bytes);
  void socket_failed(std::error_code error) { force_close(error); }

  UringBackend& backend_;
  int fd_;
  Kind kind_ = Kind::kSocket;
  bool watch_hang_up_ = false;  // a write pipe that can tell when its reader goes
  std::shared_ptr<Server> server_;
  SocketAddress peername_;
  SocketAddress sockname_;
  ReceiveRequest receive_{*this};
  SendRequest send_{*this};
  std::shared_ptr<Transport> self_;  // while requests_ > 0
  int requests_ = 0;
  bool receiving_ = false;                        // the multishot receive is in flight
  bool receive_cancelled_ = false;                // and its cancellation was asked for
  bool receive_polls_ = false;                    // that request is a poll (BufferedProtocol)
  bool sending_ = false;                          // the send is in flight
  bool eof_sent_ = false;                         // shutdown(SHUT_WR) done
  bool stash_scheduled_ = false;                  // deliver_stash is in the ready queue
  bool stash_eof_ = false;                        // the peer's EOF arrived while reading was paused
  bool eof_after_send_ = false;                   // a 0-byte receive waits for the send (below)
  io_uring_sqe* send_entry_ = nullptr;            // the send's entry, while send_epoch_ is current
  std::uint64_t send_epoch_ = ~std::uint64_t{0};  // backend_.submissions() when prepared
  bool zero_copy_allowed_ = false;                // TCP, and the kernel has not copied (above)
  ZeroCopySend* zero_copy_ = nullptr;             // the zero-copy send before its first completion
  std::size_t zero_copy_bytes_ = 0;               // how many bytes it sends
  std::string sent_;                              // the bytes of the send in flight
  std::size_t sent_offset_ = 0;                   // how many of them the kernel took
  std::string stash_;                             // bytes received while reading was paused
};

}  // namespace tulip::detail
