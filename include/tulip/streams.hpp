// Streams: reading and writing a connection from coroutines (asyncio's streams.py).
//
//   auto [reader, writer] = co_await tulip::open_connection(loop, "127.0.0.1", 8888);
//   writer->write("hello\n");
//   co_await writer->drain();
//   std::string line = co_await reader->readline();
//   writer->close();
//   co_await writer->wait_closed();
//
//   auto server = co_await tulip::start_server(loop, handle_client, "127.0.0.1", 0);
//
// open_unix_connection / start_unix_server are the same over a Unix stream
// socket (asyncio's, same names).
//
// They sit on the ordinary Transport/Protocol layer, as asyncio's do: a
// StreamReaderProtocol feeds a StreamReader and tells the StreamWriter about
// flow control; the transport knows nothing about coroutines.
//
// StreamReader buffers what arrives (pausing the transport's reading when more
// than 2 * limit bytes wait, resuming below limit) and hands it out:
// read(n) (n < 0: until EOF), readline(), readexactly(n) (IncompleteReadError
// with the partial bytes at EOF), readuntil(separator) (LimitOverrunError when
// no separator comes within `limit` bytes, default 64 KiB). Only one coroutine
// may wait on a reader at a time (RuntimeError otherwise). Once the connection
// is lost with an error, every read throws it (ConnectionError).
//
// StreamWriter::write / writelines copy into the transport (see transport.hpp);
// drain() waits while the transport's write buffer is over its high-water mark
// and throws the connection's error once the connection is lost (asyncio's
// behaviour: a lost connection without an error gives ConnectionError
// "Connection lost"). close() closes the transport; wait_closed() waits for
// connection_lost. A StreamWriter destroyed while its transport is open closes
// it (asyncio 3.12 does so in __del__, with a warning).
//
// Ownership: open_connection gives shared_ptrs; the reader and writer keep each
// other's shared state alive, not the connection: the loop keeps the
// transport until it is lost. Member coroutines (read..., drain, wait_closed)
// use `this`: keep the reader / writer alive while awaiting them.
//
// Differences from asyncio: readline() throws LimitOverrunError (asyncio turns
// it into ValueError) after the same clean-up; readuntil takes one separator.
// A tulip extension: read_into(buffer) is read(n) into the caller's memory,
// so a read -> write -> drain loop allocates nothing per message, and bytes
// that arrive while it waits are received straight into that memory.
//
// Thread-safety: loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "tulip/connection.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/export.hpp"
#include "tulip/future.hpp"
#include "tulip/protocol.hpp"
#include "tulip/server.hpp"
#include "tulip/task.hpp"
#include "tulip/transport.hpp"

namespace tulip {

/// asyncio's _DEFAULT_LIMIT: 64 KiB.
inline constexpr std::size_t kDefaultStreamLimit = 64 * 1024;

/// EOF before the expected bytes arrived (asyncio.IncompleteReadError).
class TULIP_API IncompleteReadError : public std::runtime_error {
 public:
  /// `partial`: the bytes read before EOF; `expected`: how many were wanted.
  IncompleteReadError(std::string partial, std::optional<std::size_t> expected);
  /// What was read before EOF.
  const std::string& partial() const noexcept { return partial_; }
  /// How many bytes were expected; nullopt for readuntil.
  std::optional<std::size_t> expected() const noexcept { return expected_; }

 private:
  std::string partial_;
  std::optional<std::size_t> expected_;
};

/// No separator within the limit (asyncio.LimitOverrunError).
class TULIP_API LimitOverrunError : public std::runtime_error {
 public:
  /// `consumed`: how many bytes may be dropped before retrying.
  LimitOverrunError(const std::string& message, std::size_t consumed)
      : std::runtime_error(message), consumed_(consumed) {}
  /// How many bytes may be consumed before retrying.
  std::size_t consumed() const noexcept { return consumed_; }

 private:
  std::size_t consumed_;
};

/// Buffers what a connection receives and hands it out to coroutines
/// (asyncio.StreamReader); see the file comment.
class TULIP_API StreamReader {
 public:
  /// `limit` bounds readuntil()/readline() and the buffer before reading pauses.
  /// std::invalid_argument if it is 0.
  explicit StreamReader(std::size_t limit = kDefaultStreamLimit);
  StreamReader(const StreamReader&) = delete;
  StreamReader& operator=(const StreamReader&) = delete;

  /// Up to `n` bytes (at least one unless at EOF: then ""). n < 0: everything
  /// until EOF. n == 0: "" at once.
  Task<std::string> read(std::ptrdiff_t n = -1);
  /// A tulip extension (asyncio's StreamReader has no readinto): read(n) for
  /// n = buffer.size(), copied into `buffer` instead of a new string. Returns
  /// how many bytes it copied: at least one, or 0 at EOF (or for an empty
  /// buffer). It allocates nothing, so a read -> write -> drain loop can reuse
  /// one buffer for every message. While it waits, bytes that arrive are
  /// copied straight into `buffer` (not through the reader's own buffer), so
  /// `buffer` must stay valid and untouched until the returned task is done,
  /// and must not be another pending read's. Errors as read().
  Task<std::size_t> read_into(std::span<char> buffer);
  /// One line, with its "\n"; at EOF the partial last line (maybe "").
  Task<std::string> readline();
  /// Exactly `n` bytes; IncompleteReadError if EOF comes first.
  Task<std::string> readexactly(std::size_t n);
  /// Up to and including `separator`; IncompleteReadError at EOF,
  /// LimitOverrunError past the limit (the data stays buffered).
  Task<std::string> readuntil(std::string separator = "\n");

  /// True when the peer finished sending and the buffer is empty.
  bool at_eof() const noexcept { return eof_ && buffered() == 0; }
  /// The error the connection was lost with, if any.
  std::exception_ptr exception() const noexcept { return exception_; }
  /// The limit given to the constructor.
  std::size_t limit() const noexcept { return limit_; }

  // ---- The protocol's side (asyncio's feed_data etc.) -----------------------------
  /// The transport to pause and resume reading on (borrowed; null: none).
  void set_transport(Transport* transport) noexcept { transport_ = transport; }
  /// Appends received bytes and wakes a waiting reader.
  void feed_data(std::string_view data);
  /// Records the end of the stream and wakes a waiting reader.
  void feed_eof();
  /// Makes every read, current and later, throw `error`.
  void set_exception(std::exception_ptr error);
  /// Where the next bytes may be received without a copy: the memory of a
  /// read_into() that waits while nothing is buffered; empty otherwise (then
  /// use feed_data). Valid until feed_received() or anything else happens to
  /// the reader.
  std::span<char> receive_buffer() const noexcept;
  /// `n` (> 0) bytes were received into receive_buffer(): the waiting
  /// read_into() gets them.
  void feed_received(std::size_t n);

 private:
  std::size_t buffered() const noexcept { return buffer_.size() - start_; }
  std::string_view view() const noexcept { return std::string_view(buffer_).substr(start_); }
  std::string take(std::size_t n);
  // Drops the first `n` buffered bytes (n <= buffered()).
  void consume(std::size_t n);
  // What a read waits on: see the class below.
  class DataWaiter;
  // Throws RuntimeError if another coroutine is waiting already.
  // `destination`: read_into's buffer, where arriving bytes may go directly.
  DataWaiter wait_for_data(const char* function, std::span<char> destination = {});
  // Puts bytes back at the front of the buffer (a read that did not take them).
  void unread(std::string_view data) noexcept;
  void wakeup_waiter(std::exception_ptr error = nullptr);
  void maybe_resume_transport();

  std::size_t limit_;
  std::string buffer_;
  std::size_t start_ = 0;  // consumed bytes at the front of buffer_
  bool eof_ = false;
  bool paused_ = false;
  std::exception_ptr exception_;
  Transport* transport_ = nullptr;  // valid from connection_made to connection_lost
  DataWaiter* waiter_ = nullptr;    // the waiting read's, in its coroutine frame
};

/// @cond INTERNAL
// Suspends the task of a read until the reader has news for it (data, EOF, an
// error) or the task is cancelled. It lives in the waiting coroutine's frame
// and the reader points at it, so waiting allocates nothing (a Future would
// allocate its shared state and its callback list on every wait). Like a
// Future, it wakes the task at most once, through the loop's ready queue;
// destroyed while waiting (its frame destroyed), it unregisters itself.
//
// A read_into() waits with its destination: bytes that arrive while nothing
// is buffered go straight there (received into it, or copied from
// feed_data), not through the reader's buffer. If the task then does not
// take them (it is cancelled, or its frame is destroyed), they go back to the
// front of the reader's buffer: nothing that arrived is lost.
class StreamReader::DataWaiter : detail::TaskWaiter {
 public:
  DataWaiter(StreamReader& reader, std::span<char> destination) noexcept
      : reader_(reader), destination_(destination) {
    cancel = &DataWaiter::cancel_wait;
  }
  DataWaiter(const DataWaiter&) = delete;
  DataWaiter& operator=(const DataWaiter&) = delete;
  ~DataWaiter() {
    if (reader_.waiter_ == this) reader_.waiter_ = nullptr;
    give_back();
  }

  bool await_ready() const noexcept { return false; }

  template <class P>
  void await_suspend(std::coroutine_handle<P> frame) {
    driver_ = detail::driver_of(frame);
    reader_.waiter_ = this;
    driver_->suspend(frame, this);
  }

  // How many bytes were delivered into the destination (0: none, look in
  // the reader's buffer).
  std::size_t await_resume() {
    reader_.waiter_ = nullptr;
    try {
      driver_->throw_if_must_cancel();
      if (cancelled_) throw CancelledError(message_);
    } catch (...) {
      give_back();
      throw;
    }
    if (error_) std::rethrow_exception(error_);
    return std::exchange(delivered_, 0);
  }

  // The reader has news: the task goes on in the next step, with `error`
  // thrown if there is one. Only the first news counts, as for a Future.
  void wake(std::exception_ptr error) {
    if (woken_) return;
    woken_ = true;
    error_ = std::move(error);
    post_step();
  }

  // Where arriving bytes may go: a read_into()'s buffer while it has not
  // been woken; empty otherwise.
  std::span<char> delivery_buffer() const noexcept {
    return woken_ ? std::span<char>() : destination_;
  }

  // `n` bytes were put into delivery_buffer(): wakes the task, which returns
  // them.
  void delivered(std::size_t n) {
    delivered_ = n;
    woken_ = true;
    post_step();
  }

 private:
  static bool cancel_wait(detail::TaskWaiter* waiter, const std::string& message) {
    auto* self = static_cast<DataWaiter*>(waiter);
    if (self->woken_) return false;  // the step is queued: it throws the cancel
    self->woken_ = true;
    self->cancelled_ = true;
    self->message_ = message;
    self->post_step();
    return true;
  }

  void post_step() {
    driver_->loop().call_soon([driver = detail::TaskRef(driver_)] { driver->step(); });
  }

  // Delivered bytes the task will not take return to the reader.
  void give_back() noexcept {
    if (delivered_ == 0) return;
    reader_.unread(std::string_view(destination_.data(), std::exchange(delivered_, 0)));
  }

  StreamReader& reader_;
  std::span<char> destination_;
  detail::TaskBase* driver_ = nullptr;
  std::size_t delivered_ = 0;
  bool woken_ = false;
  bool cancelled_ = false;
  std::exception_ptr error_;
  std::string message_;
};
/// @endcond

namespace detail {

/// Connects a transport to a StreamReader and to write flow control
/// (asyncio's StreamReaderProtocol + FlowControlMixin).
///
/// Unlike asyncio's, it is a BufferedProtocol, so that a read_into() that
/// waits gets the bytes with no copy at all: get_buffer() hands out its
/// memory (StreamReader::receive_buffer()). Otherwise the bytes land in a
/// per-thread scratch buffer and are fed to the reader, which copies them, as
/// data_received would. Both rely on what tulip's transports do with a
/// BufferedProtocol (and with the loop's own read buffer): get_buffer(), the
/// receive and buffer_updated() happen in one call, with nothing in between.
class TULIP_API StreamReaderProtocol final
    : public BufferedProtocol,
      public std::enable_shared_from_this<StreamReaderProtocol> {
 public:
  /// Server side: called from connection_made with the transport and this protocol.
  using OnConnected =
      std::function<void(std::shared_ptr<Transport>, std::shared_ptr<StreamReaderProtocol>)>;

  StreamReaderProtocol(EventLoop& loop, std::shared_ptr<StreamReader> reader,
                       OnConnected on_connected = {});

  void connection_made(Transport& transport) override;
  std::span<std::byte> get_buffer(std::size_t size_hint) override;
  void buffer_updated(std::size_t bytes) override;
  bool eof_received() override;
  void connection_lost(std::error_code error) override;
  void pause_writing() override;
  void resume_writing() override;

  /// Waits while writing is paused; throws once the connection is lost.
  Task<void> drain_helper();
  /// True when drain_helper() would return at once: writing is not paused and
  /// the connection is not lost.
  bool drained() const noexcept { return !paused_ && !connection_lost_; }
  Future<void> closed() const { return closed_; }
  bool connection_lost_seen() const noexcept { return connection_lost_; }

 private:
  EventLoop& loop_;
  std::shared_ptr<StreamReader> reader_;
  OnConnected on_connected_;
  bool receiving_directly_ = false;  // the last get_buffer() was the reader's receive_buffer()
  bool paused_ = false;
  bool connection_lost_ = false;
  bool over_ssl_ = false;  // TLS has no half-close: EOF closes (asyncio's _over_ssl)
  std::exception_ptr lost_error_;
  std::deque<Future<void>> drain_waiters_;
  Future<void> closed_;
};

}  // namespace detail

/// Writes to a connection from coroutines (asyncio.StreamWriter); see the file comment.
class TULIP_API StreamWriter {
 public:
  /// Made by open_connection and start_server.
  StreamWriter(std::shared_ptr<Transport> transport,
               std::shared_ptr<detail::StreamReaderProtocol> protocol,
               std::shared_ptr<StreamReader> reader);
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;
  /// Closes the transport if it is still open.
  ~StreamWriter();

  /// Transport::write: copied (or moved) into the transport, never blocks.
  void write(std::string_view data) { transport_->write(data); }
  /// Transport::write, moving the string.
  void write(std::string&& data) { transport_->write(std::move(data)); }
  /// Transport::write of a C string.
  void write(const char* data) { transport_->write(std::string_view(data)); }
  /// Transport::writelines: every buffer, in order.
  void writelines(std::span<const std::string_view> buffers) { transport_->writelines(buffers); }
  /// Transport::writelines.
  void writelines(std::initializer_list<std::string_view> buffers) {
    transport_->writelines(buffers);
  }
  /// Transport::write_eof: half-close once the buffer is sent.
  void write_eof() { transport_->write_eof(); }
  /// True for TCP.
  bool can_write_eof() const noexcept { return transport_->can_write_eof(); }
  /// Closes the transport (buffered bytes are still sent).
  void close() { transport_->close(); }
  /// True once close() was called or the connection was lost.
  bool is_closing() const noexcept { return transport_->is_closing(); }

  /// Waits until it is fine to write again (see the header comment).
  Task<void> drain();
  /// Waits until the connection is lost; throws its error, if any.
  Task<void> wait_closed();

  /// Transport::get_extra_info ("peername", "sockname", "socket").
  std::any get_extra_info(std::string_view name) const { return transport_->get_extra_info(name); }
  /// Typed Transport::get_extra_info.
  template <class T>
  std::optional<T> get_extra_info(std::string_view name) const {
    return transport_->get_extra_info<T>(name);
  }
  /// The transport (asyncio's writer.transport).
  const std::shared_ptr<Transport>& transport() const noexcept { return transport_; }

 private:
  std::shared_ptr<Transport> transport_;
  std::shared_ptr<detail::StreamReaderProtocol> protocol_;
  std::shared_ptr<StreamReader> reader_;
};

/// What open_connection gives.
struct StreamPair {
  /// The connection's reader.
  std::shared_ptr<StreamReader> reader;
  /// The connection's writer.
  std::shared_ptr<StreamWriter> writer;
};

/// Connects to host:port (loop.create_connection) and wraps the connection in
/// a reader and a writer. Errors as create_connection.
TULIP_API Task<StreamPair> open_connection(EventLoop& loop, std::string host, std::uint16_t port,
                                           ConnectOptions options = {},
                                           std::size_t limit = kDefaultStreamLimit);

/// Connects to the Unix stream socket at `path` (loop.create_unix_connection)
/// and wraps the connection in a reader and a writer
/// (asyncio.open_unix_connection). Errors as create_unix_connection.
TULIP_API Task<StreamPair> open_unix_connection(EventLoop& loop, std::string path,
                                                UnixConnectOptions options = {},
                                                std::size_t limit = kDefaultStreamLimit);

namespace detail {
using ClientCallback =
    std::function<Task<void>(std::shared_ptr<StreamReader>, std::shared_ptr<StreamWriter>)>;
TULIP_API Task<std::shared_ptr<Server>> start_server(EventLoop& loop, ClientCallback callback,
                                                     std::string host, std::uint16_t port,
                                                     ServerOptions options, std::size_t limit);
TULIP_API Task<std::shared_ptr<Server>> start_unix_server(EventLoop& loop, ClientCallback callback,
                                                          std::string path,
                                                          UnixServerOptions options,
                                                          std::size_t limit);

// The client's task holds the callable through this frame, so the callable
// (and what a lambda captured) lives as long as any client task.
template <class F>
Task<void> keep_alive_call(std::shared_ptr<F> callable, std::shared_ptr<StreamReader> reader,
                           std::shared_ptr<StreamWriter> writer) {
  co_await (*callable)(std::move(reader), std::move(writer));
}

// Wraps `client_connected` (a coroutine function, or a plain function) into a
// ClientCallback that keeps the callable alive for as long as any client task.
template <class F>
ClientCallback make_client_callback(F client_connected) {
  auto shared = std::make_shared<F>(std::move(client_connected));
  using Result =
      std::invoke_result_t<F&, std::shared_ptr<StreamReader>, std::shared_ptr<StreamWriter>>;
  if constexpr (std::is_same_v<Result, Task<void>>) {
    return [shared](std::shared_ptr<StreamReader> reader, std::shared_ptr<StreamWriter> writer) {
      return keep_alive_call(shared, std::move(reader), std::move(writer));
    };
  } else {
    return [shared](std::shared_ptr<StreamReader> reader,
                    std::shared_ptr<StreamWriter> writer) -> Task<void> {
      (*shared)(std::move(reader), std::move(writer));
      return Task<void>();
    };
  }
}
}  // namespace detail

/// Serves host:port (loop.create_server): for each client, runs
/// `client_connected(reader, writer)` as a task. The callback returns a
/// Task<void> (a coroutine) or nothing; the server keeps the callable, and
/// each client's task keeps it alive too, so a capturing lambda is safe. If a
/// client task fails, the error goes to the exception handler and that
/// connection is closed.
template <class F>
Task<std::shared_ptr<Server>> start_server(EventLoop& loop, F client_connected, std::string host,
                                           std::uint16_t port, ServerOptions options = {},
                                           std::size_t limit = kDefaultStreamLimit) {
  return detail::start_server(loop, detail::make_client_callback(std::move(client_connected)),
                              std::move(host), port, std::move(options), limit);
}

/// Serves the Unix stream socket at `path` (loop.create_unix_server), running
/// `client_connected(reader, writer)` for each client as start_server does
/// (asyncio.start_unix_server). The socket file is handled as
/// create_unix_server handles it.
template <class F>
Task<std::shared_ptr<Server>> start_unix_server(EventLoop& loop, F client_connected,
                                                std::string path, UnixServerOptions options = {},
                                                std::size_t limit = kDefaultStreamLimit) {
  return detail::start_unix_server(loop, detail::make_client_callback(std::move(client_connected)),
                                   std::move(path), std::move(options), limit);
}

}  // namespace tulip
