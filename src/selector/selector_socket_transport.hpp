// SelectorSocketTransport: a stream transport driven by readiness (epoll), on
// a connected socket (TCP or Unix) or on one end of a pipe.
//
// The life of the transport (protocol, buffer, flow control, closing,
// connection_lost) is StreamTransportBase's; this class moves the bytes on
// readiness: recv/send for a socket (MSG_NOSIGNAL), read/write for a pipe
// (pipe_ops.hpp, with SIGPIPE held back). The pipes follow asyncio's
// _UnixReadPipeTransport and _UnixWritePipeTransport:
//  * a read pipe cannot write (write() throws RuntimeError); at EOF it calls
//    eof_received and closes, whatever that returns;
//  * a write pipe reads nothing: it watches a pipe or socket for the reader
//    going away (hang-up) and then closes, with EPIPE if bytes were still
//    buffered; write_eof() is close() (a pipe has no other half to keep).
//
// loop.sendfile (selector_sendfile.cpp): while a file is being sent with the
// kernel's sendfile(2), reading is paused and write() refuses (asyncio's
// _sendfile_native); buffered bytes go first, then one sendfile call per
// writability event. close() or abort() in the middle ends the sendfile.
//
// Every event handler re-checks the state after each protocol callback, since
// the callback may have closed or aborted the transport.
//
// Thread-safety: loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>

#include "io_backend.hpp"
#include "selector/epoll_backend.hpp"
#include "sendfile_support.hpp"
#include "stream_transport_base.hpp"
#include "tulip/socket_address.hpp"

namespace tulip {
class Server;
}

namespace tulip::detail {

class SelectorSocketTransport final : public StreamTransportBase,
                                      public BufferedSendfileTarget,
                                      private IoWatcher {
 public:
  /// Takes ownership of the connected socket `socket.fd`. Call start() next.
  /// `socket.peer`: the peer's address when the caller already knows it (from
  /// accept() or connect()), which saves a getpeername(); empty: ask the socket.
  SelectorSocketTransport(EpollBackend& backend, StreamSocket socket);
  /// Takes ownership of the non-blocking pipe end `pipe.fd`. Call start() next.
  SelectorSocketTransport(EpollBackend& backend, PipeEnd pipe);
  ~SelectorSocketTransport() override;

  /// Registers with the loop and schedules connection_made, then reading, then
  /// `on_made` (which create_connection uses to complete its Future). If the
  /// kernel refuses to watch the descriptor, the transport is released
  /// (descriptor closed, nothing registered) and the error propagates.
  void start(Callback on_made);

  // BaseTransport
  std::any get_extra_info(std::string_view name) const override;

  // WriteTransport
  void write(std::string_view data) override;
  void write(std::string&& data) override;
  void writelines(std::span<const std::string_view> buffers) override;
  void write_eof() override;
  bool can_write_eof() const noexcept override { return kind_ != Kind::kReadPipe; }

  /// The loop is closing: a sendfile's Future stays pending, as every
  /// operation's does; then as for every stream transport.
  void shutdown_with_loop() noexcept override;

  /// True on a socket: only those send files with sendfile(2); a pipe's
  /// transport takes the buffered path.
  bool is_socket() const noexcept { return kind_ == Kind::kSocket; }

  /// Starts sending `job`'s file (IoBackend::start_sendfile); takes `job`.
  void start_sendfile(SendfileJob& job);

  /// The read path of a socket transport that watches for reads only (the
  /// backend's Route::kSocketReads): `watcher` is one of these transports,
  /// `buffer` the backend's read buffer. Called by the dispatch directly,
  /// without on_io_event's virtual call and event bits.
  static void on_socket_readable(IoWatcher& watcher, char* buffer);

  // BufferedSendfileTarget
  std::shared_ptr<StreamProtocol> owned_protocol() const noexcept override { return protocol_; }
  bool protocol_writing_paused() const noexcept override { return flow_.paused(); }

 private:
  enum class Kind : std::uint8_t { kSocket, kReadPipe, kWritePipe };

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

  // StreamTransportBase
  void interest_changed() noexcept override { update_interest(); }
  void release_resources() noexcept override;
  std::string describe_endpoint() const override;
  Server* accepting_server() const noexcept override { return server_; }
  // close() or a fatal end: a sendfile in progress ends, its caller learns how far it got.
  void on_closing(std::error_code reason) override;
  void keep_extra_info_after_close() noexcept override;
  // The socket's own address (getsockname() the first time; empty if that fails).
  const SocketAddress& local_address() const;

  void on_io_event(std::uint32_t events) override;
  void on_writable();
  void read_into_protocol();
  void read_into_buffered_protocol();
  void on_eof();
  // One sendfile(2) call of the file in progress (the write buffer is empty).
  void send_file_chunk();
  // Ends the sendfile in progress, restores reading, and queues `outcome` for
  // its caller. Does not close anything.
  void finish_sendfile(SendfileOutcome outcome);
  // The reader of a write pipe went away.
  void on_hang_up();
  // read_some() returned `result` <= 0: the EOF, or a failure.
  void read_ended(ssize_t result);
  // recv() failed with `error`: nothing to do for EAGAIN, else the connection ends.
  void read_failed(int error);

  // recv() or read(): bytes read, 0 at EOF, or -errno.
  ssize_t read_some(void* data, std::size_t size) noexcept;

  // Returns false if the transport must not send now (closed or lost), after
  // dealing with the dropped bytes. The common case is inline; every write
  // passes here.
  bool accept_write(std::size_t bytes) {
    if (bytes != 0 && !closing_ && !lost_ && !eof_requested_ && kind_ != Kind::kReadPipe &&
        !sendfile_) [[likely]]
      return true;
    return refuse_pipe_write(bytes);
  }
  bool refuse_pipe_write(std::size_t bytes);
  // write()'s fast path applies: bytes to send on an open socket with nothing
  // queued and no sendfile. The registration stands for the last two: the
  // transport watches for writability exactly while bytes are queued or a file
  // is being sent (watch_as_needed, after every change of either), except once
  // lost, which write_gate_open() excludes. Watching with nothing queued (a
  // resume_writing called while the buffer drains) only takes the slow path.
  bool direct_send_possible(std::size_t bytes) const noexcept {
    return bytes != 0 && (interest_ & kWritable) == 0 && kind_ == Kind::kSocket &&
           write_gate_open();
  }
  // Not closing (nor lost, nor released) and no write_eof(): the four flags
  // from closing_ on, tested with one load and one compare, as read_gate_open().
  bool write_gate_open() const noexcept {
    const StreamStateFlags& flags = *this;
    static_assert(
        offsetof(StreamStateFlags, lost_) == offsetof(StreamStateFlags, closing_) + 1 &&
        offsetof(StreamStateFlags, eof_requested_) == offsetof(StreamStateFlags, closing_) + 2 &&
        offsetof(StreamStateFlags, released_) == offsetof(StreamStateFlags, closing_) + 3);
    std::uint32_t word;
    std::memcpy(
        &word,
        reinterpret_cast<const unsigned char*>(&flags) + offsetof(StreamStateFlags, closing_),
        sizeof word);
    return word == 0;
  }
  // The direct send() took `sent` bytes of `data` (-1: failed, errno says
  // why): queue the rest, or end the connection on a fatal error. Out of line
  // so that write() keeps only what this call needs across the send().
  [[gnu::noinline, gnu::cold]] void finish_direct_write(std::string_view data, ssize_t sent);
  // write() off the fast path: checks, a send if nothing is queued, the rest
  // queued. Out of line, as finish_direct_write, for write()'s frame.
  [[gnu::noinline]] void write_queued(std::string_view data);
  // Sends directly when nothing is queued; returns how many bytes the kernel
  // took, or -1 after a fatal error.
  ssize_t send_now(const iovec* buffers, std::size_t count);
  void after_buffer_grew();
  // Sends the EOF once the buffer is empty: shutdown(SHUT_WR) on a socket.
  void send_eof();
  // Brings the registration in line with the state; returns whether it changed.
  // Throws if the kernel refuses (start() then fails as a whole).
  bool watch_as_needed();
  // The same, for every later change: a refusal ends this connection only.
  void update_interest() noexcept;

  // An OS error on the descriptor: the connection ends with it.
  void socket_failed(std::error_code error);

  // The small members share one 8-byte word (every byte counts per idle connection).
  EpollBackend& backend_;
  int fd_;
  std::uint32_t interest_ = 0;
  Kind kind_;
  bool watch_hang_up_ = false;  // a write pipe that can tell when its reader goes
  bool eof_sent_ = false;       // shutdown(SHUT_WR) done
  // The server that accepted this connection. A plain pointer: the server
  // lives while it has clients (its registry entry while open, its own
  // reference once closed), and forgets this one in release_resources.
  Server* server_ = nullptr;
  SocketAddress peername_;
  // Asked of the socket when first wanted (most connections never are): a
  // getsockname() and 48 bytes per connection saved. Kept before close
  // whenever someone could still ask (keep_extra_info_after_close), so it is
  // "still available after close" as asyncio's, which fills it at once.
  mutable std::unique_ptr<SocketAddress> sockname_;

  std::unique_ptr<NativeSendfile> sendfile_;  // a loop.sendfile in progress
};

}  // namespace tulip::detail
