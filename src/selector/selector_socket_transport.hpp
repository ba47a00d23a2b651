// SelectorSocketTransport: a stream transport (TCP or Unix) driven by readiness (epoll).
//
// State machine (asyncio's _SelectorSocketTransport):
//
//   open --close()--> closing (reading stopped, buffer draining)
//        --buffer empty--> lost (connection_lost scheduled)
//   open/closing --abort() or fatal error--> lost (buffer dropped)
//   lost --connection_lost returned--> released (fd closed, protocol and
//        registry entry dropped; the object dies with its last shared_ptr)
//
// Every event handler re-checks the state after each protocol callback, since
// the callback may have closed or aborted the transport.
//
// loop.sendfile (selector_sendfile.cpp): while a file is being sent with the
// kernel's sendfile(2), reading is paused and write() refuses (asyncio's
// _sendfile_native); buffered bytes go first, then one sendfile call per
// writability event. close() or abort() in the middle ends the sendfile.
//
// Thread-safety: loop thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <system_error>

#include "flow_control.hpp"
#include "io_backend.hpp"
#include "selector/epoll_backend.hpp"
#include "sendfile_support.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/exception_context.hpp"
#include "tulip/protocol.hpp"
#include "tulip/socket_address.hpp"
#include "tulip/transport.hpp"
#include "write_buffer.hpp"

namespace tulip {
class Server;
}

namespace tulip::detail {

class SelectorSocketTransport final : public Transport,
                                      public LoopMember,
                                      public BufferedSendfileTarget,
                                      private IoWatcher {
 public:
  /// Takes ownership of the connected socket `socket.fd`. Call start() next.
  /// `socket.peer`: the peer's address when the caller already knows it (from
  /// accept() or connect()), which saves a getpeername(); empty: ask the socket.
  SelectorSocketTransport(EpollBackend& backend, StreamSocket socket);
  ~SelectorSocketTransport() override;

  /// Registers with the loop and schedules connection_made, then reading, then
  /// `on_made` (which create_connection uses to complete its Future). If the
  /// kernel refuses to watch the socket, the transport is released (socket
  /// closed, nothing registered) and the error propagates.
  void start(Callback on_made);

  // Transport
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

  /// The loop is closing with this transport still open: tell the protocol
  /// (connection_lost with ECONNABORTED) and release everything now.
  void shutdown_with_loop() noexcept override;

  /// Starts sending `job`'s file (IoBackend::start_sendfile); takes `job`.
  void start_sendfile(SendfileJob& job);

  // BufferedSendfileTarget
  std::shared_ptr<StreamProtocol> owned_protocol() const noexcept override { return protocol_; }
  bool protocol_writing_paused() const noexcept override { return flow_.paused(); }

 private:
  // A file being sent with sendfile(2).
  struct NativeSendfile {
    int file_fd;
    std::uint64_t offset;
    std::size_t count;  // 0: to the end of the file
    std::size_t sent = 0;
    bool resume_reading = false;  // reading was on when it started
    InlineFunction<void(SendfileOutcome)> done;
    InlineFunction<bool()> cancelled;
  };

  void on_io_event(std::uint32_t events) override;
  void on_readable();
  void on_writable();
  void read_into_protocol();
  void read_into_buffered_protocol();
  void on_eof();
  // One sendfile(2) call of the file in progress (the write buffer is empty).
  void send_file_chunk();
  // Ends the sendfile in progress, restores reading, and queues `outcome` for
  // its caller. Does not close anything.
  void finish_sendfile(SendfileOutcome outcome);
  // recv() failed with `error`: nothing to do for EAGAIN, else the connection ends.
  void read_failed(int error);

  // Returns false if the transport must not send now (closed or lost), after
  // dealing with the dropped bytes. The common case is inline; every write
  // passes here.
  bool accept_write(std::size_t bytes) {
    if (bytes != 0 && !closing_ && !lost_ && !eof_requested_ && !sendfile_) [[likely]]
      return true;
    return refuse_write(bytes);
  }
  bool refuse_write(std::size_t bytes);
  // Sends directly when nothing is queued; returns how many bytes the kernel
  // took, or -1 after a fatal error.
  ssize_t send_now(const iovec* buffers, std::size_t count);
  void after_buffer_grew();
  // Brings the registration in line with the state; returns whether it changed.
  // Throws if the kernel refuses (start() then fails as a whole).
  bool watch_as_needed();
  // The same, for every later change: a refusal ends this connection only.
  void update_interest() noexcept;

  void maybe_pause_protocol();
  void maybe_resume_protocol();

  // Tells the exception handler about the exception being handled, with this
  // transport's context.
  void report_current_exception(const char* message) noexcept;
  // A protocol callback threw: report it and close this connection only.
  void protocol_failed(const char* message);
  // An OS error on the socket: report (unless it is an ordinary disconnect) and close.
  void socket_failed(std::error_code error, const char* message);
  // Drops the buffer, stops all I/O, schedules connection_lost(error).
  void force_close(std::error_code error);
  void schedule_connection_lost(std::error_code error);
  void call_connection_lost(std::error_code error);
  void release();
  ExceptionContext context(const char* message) const;

  EventLoop& loop_;
  EpollBackend& backend_;
  int fd_;
  std::shared_ptr<StreamProtocol> protocol_;
  Protocol* data_protocol_ = nullptr;              // protocol_ seen as a Protocol, if it is one
  BufferedProtocol* buffered_protocol_ = nullptr;  // or as a BufferedProtocol
  std::shared_ptr<Server> server_;
  SocketAddress peername_;
  SocketAddress sockname_;

  WriteBuffer buffer_;
  WriteFlowControl flow_;
  std::unique_ptr<NativeSendfile> sendfile_;  // a loop.sendfile in progress

  bool reading_started_ = false;  // connection_made has run
  bool reading_paused_ = false;
  bool eof_received_ = false;
  bool closing_ = false;        // close(), abort() or loss
  bool lost_ = false;           // connection_lost scheduled (or done)
  bool eof_requested_ = false;  // write_eof() called
  bool eof_sent_ = false;       // shutdown(SHUT_WR) done
  bool released_ = false;
  std::uint32_t interest_ = 0;
  std::size_t dropped_writes_ = 0;
};

}  // namespace tulip::detail
