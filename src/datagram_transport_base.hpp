// DatagramTransportBase: the life of a datagram transport, whatever the
// backend. Not API.
//
// What every datagram transport (UDP or Unix; readiness- or completion-driven)
// shares, written once: the protocol it owns and how it is replaced, the
// queue of datagrams the kernel could not take yet and asyncio's flow-control
// marks over it, closing, aborting, the one connection_lost on a fresh stack,
// the loop's registry entry, get_extra_info, the address checks of sendto(),
// error_received for one datagram's error, and reporting what a protocol
// callback throws. The backend keeps only how datagrams are received and how
// one is sent; its per-datagram path calls nothing virtual of this class.
//
// State machine (asyncio's _SelectorDatagramTransport):
//
//   open --close()--> closing (reading stopped, queued datagrams still sent)
//        --queue empty--> lost (connection_lost scheduled)
//   open/closing --abort() or a protocol callback that threw--> lost (queue dropped)
//   lost --connection_lost returned--> released (socket closed, protocol and
//        registry entry dropped; the object dies with its last shared_ptr)
//
// A backend's transport derives from this and supplies the I/O: bring the
// receiving (and the watching for room) in line with the state
// (interest_changed), send what it gathered while handing datagrams to the
// protocol (send_corked), and let the socket go (release_resources). Every
// handler of the backend re-checks the state after each protocol callback,
// since the callback may have closed or aborted the transport.
//
// Thread-safety: loop thread only.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <any>
#include <cerrno>
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "flow_control.hpp"
#include "io_backend.hpp"
#include "socket_ops.hpp"
#include "tulip/datagram.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/exception_context.hpp"

namespace tulip::detail {

class DatagramTransportBase : public DatagramTransport, public LoopMember {
 public:
  // BaseTransport
  void close() override;
  bool is_closing() const noexcept override { return closing_; }
  std::any get_extra_info(std::string_view name) const override;
  EventLoop& get_loop() const noexcept override { return loop_; }

  // DatagramTransport (sendto is the backend's)
  void abort() override { force_close({}); }
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
  /// ECONNABORTED) if connection_made has run, and release everything now.
  void shutdown_with_loop() noexcept override;

 protected:
  /// A datagram the kernel could not take yet, in the order sendto() got it.
  struct PendingDatagram {
    std::string data;
    std::optional<SocketAddress> to;  // nullopt: the connected peer
  };
  // asyncio counts this much per buffered datagram on top of its bytes.
  static constexpr std::size_t kHeaderSize = 8;

  /// Takes ownership of `socket.fd`, its protocol, remote address and
  /// on_release.
  DatagramTransportBase(EventLoop& loop, DatagramSocket& socket);
  ~DatagramTransportBase() = default;

  // ---- What the backend supplies ---------------------------------------------------

  /// The state changed (reading started, closing, lost, the queue grew or
  /// emptied): bring the I/O in line. Must not throw: a refusal of the kernel
  /// ends this endpoint (force_close).
  virtual void interest_changed() noexcept = 0;
  /// Sends the datagrams the protocol sent while a batch was handed to it
  /// (they were accepted, so they go before the end); what the kernel cannot
  /// take joins the queue.
  virtual void send_corked() = 0;
  /// Stops all I/O, drops what is still gathered for sending, closes the
  /// socket (then runs on_release, run_on_release); called once, from release().
  virtual void release_resources() noexcept = 0;

  // ---- For the backend -----------------------------------------------------------------

  /// Joins the loop's registry and schedules connection_made (never run
  /// inside this call); after it, reading starts (interest_changed: the
  /// protocol may have closed meanwhile), then `on_made` runs. Call once,
  /// when the backend is ready to receive.
  void begin(Callback on_made);

  /// sendto()'s checks before anything is sent: throws std::invalid_argument
  /// for an address a connected endpoint cannot send to, or none where one is
  /// needed; false (the datagram dropped, with a warning once) after close.
  bool accepts_datagram(std::size_t size, const std::optional<SocketAddress>& address) {
    if (remote_) {
      if (address && !(*address == *remote_)) [[unlikely]]
        throw_invalid_address();
    } else if (!address) [[unlikely]] {
      throw_no_address();
    }
    if (closing_ || lost_) [[unlikely]] {
      drop_after_close(size);
      return false;
    }
    return true;
  }

  /// sendto()/send() of one datagram now: bytes sent, or -errno.
  ssize_t send_one(std::string_view data, const std::optional<SocketAddress>& to) noexcept {
    for (;;) {
      ssize_t n = to && !remote_ ? ::sendto(fd_, data.data(), data.size(), MSG_NOSIGNAL, to->data(),
                                            to->size())
                                 : ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n >= 0) return n;
      if (errno != EINTR) return -errno;
    }
  }

  /// sendto() when nothing waits: sends `data` now. True when that is done
  /// with (sent, or its error reported from a fresh stack); false when the
  /// kernel's queue is full and the datagram must wait.
  bool try_send_now(std::string_view data, const std::optional<SocketAddress>& to) {
    ssize_t n = send_one(data, to);
    if (n >= 0) return true;
    int error = static_cast<int>(-n);
    if (would_block(error)) return false;
    report_later(errno_code(error));
    return true;
  }

  /// Puts a datagram at the back of the queue (a copy), counted in the buffer size.
  void queue_datagram(std::string data, std::optional<SocketAddress> to) {
    buffered_bytes_ += data.size() + kHeaderSize;
    buffer_.push_back({std::move(data), std::move(to)});
  }
  /// The queue's front was sent, or dropped for its own error.
  void pop_sent() noexcept {
    buffered_bytes_ -= buffer_.front().data.size() + kHeaderSize;
    buffer_.pop_front();
  }

  /// Calls pause_writing / resume_writing when the buffer crossed a mark.
  void maybe_pause_protocol();
  void maybe_resume_protocol();

  /// Tells the protocol about an OS error of one datagram (error_received),
  /// now or from a fresh stack (report_later: not inside sendto(), where a
  /// protocol that sends again from error_received would recurse for as long
  /// as the error lasts). The endpoint goes on.
  void report_now(std::error_code error);
  void report_later(std::error_code error);

  /// A protocol callback threw: report it and close this endpoint only.
  void protocol_failed(const char* message);
  /// Sends what was gathered, drops the queue, schedules connection_lost(error).
  void force_close(std::error_code error);
  /// Marks the transport lost and schedules connection_lost(error) on a fresh stack.
  void schedule_connection_lost(std::error_code error);
  /// Runs on_release (the socket is closed: a Unix endpoint removes its file); once.
  void run_on_release() noexcept;
  ExceptionContext context(const char* message) const;

  EventLoop& loop_;
  int fd_;
  std::shared_ptr<DatagramProtocol> protocol_;
  std::optional<SocketAddress> remote_;
  mutable SocketAddress sockname_;  // refreshed while open: the kernel binds on first send

  // Datagrams the kernel could not take yet, and the bytes get_write_buffer_size
  // reports: theirs, and a backend's datagram in flight. Every datagram counts
  // at least its header, so zero bytes means nothing is left to send.
  std::deque<PendingDatagram> buffer_;
  std::size_t buffered_bytes_ = 0;
  WriteFlowControl flow_;

  bool reading_started_ = false;  // connection_made has run
  bool closing_ = false;          // close(), abort() or loss
  bool lost_ = false;             // connection_lost scheduled (or done); implies closing_
  bool released_ = false;

 private:
  [[noreturn]] void throw_invalid_address() const;
  [[noreturn]] static void throw_no_address();
  void drop_after_close(std::size_t size);
  void call_connection_lost(std::error_code error);
  void release();

  Callback on_release_;  // after the socket is closed
  std::size_t dropped_writes_ = 0;
};

}  // namespace tulip::detail
