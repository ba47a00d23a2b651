// StreamReader, StreamReaderProtocol, StreamWriter, open_connection and
// start_server (streams.hpp), after asyncio's streams.py (3.12).
#include "tulip/streams.hpp"

#include "tulip/sleep.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace tulip {
namespace {

// Compact the reader's buffer once the consumed prefix is this large and at
// least half of it: reads then cost amortised O(bytes), not O(buffer).
constexpr std::size_t kCompactThreshold = 4096;

std::exception_ptr connection_error(std::error_code error) {
  return std::make_exception_ptr(ConnectionError(error, "Connection lost: " + error.message()));
}

}  // namespace

IncompleteReadError::IncompleteReadError(std::string partial, std::optional<std::size_t> expected)
    : std::runtime_error(std::to_string(partial.size()) + " bytes read on a total of " +
                         (expected ? std::to_string(*expected) : std::string("undefined")) +
                         " expected bytes"),
      partial_(std::move(partial)),
      expected_(expected) {}

// ---- StreamReader -------------------------------------------------------------

StreamReader::StreamReader(std::size_t limit) : limit_(limit) {
  if (limit == 0) throw std::invalid_argument("Limit cannot be <= 0");
}

void StreamReader::feed_data(std::string_view data) {
  if (data.empty()) return;
  if (std::span<char> direct = receive_buffer(); !direct.empty()) {
    // A read_into() waits and nothing is buffered: the bytes go straight into
    // its buffer, one copy instead of two. What does not fit is buffered.
    std::size_t n = std::min(direct.size(), data.size());
    std::memcpy(direct.data(), data.data(), n);
    feed_received(n);
    data.remove_prefix(n);
    if (data.empty()) return;
  }
  buffer_.append(data);
  wakeup_waiter();
  // Stop reading while far more than the limit waits: the application is slow.
  if (transport_ != nullptr && !paused_ && buffered() > 2 * limit_) {
    transport_->pause_reading();
    paused_ = true;
  }
}

std::span<char> StreamReader::receive_buffer() const noexcept {
  if (waiter_ == nullptr || buffered() != 0 || eof_ || exception_) return {};
  return waiter_->delivery_buffer();
}

void StreamReader::feed_received(std::size_t n) {
  if (n > 0) waiter_->delivered(n);
}

void StreamReader::feed_eof() {
  eof_ = true;
  wakeup_waiter();
}

void StreamReader::set_exception(std::exception_ptr error) {
  exception_ = error;
  wakeup_waiter(std::move(error));
}

void StreamReader::wakeup_waiter(std::exception_ptr error) {
  if (waiter_ != nullptr) waiter_->wake(std::move(error));
}

void StreamReader::maybe_resume_transport() {
  if (paused_ && buffered() <= limit_) {
    paused_ = false;
    if (transport_ != nullptr) transport_->resume_reading();
  }
}

std::string StreamReader::take(std::size_t n) {
  n = std::min(n, buffered());
  std::string data(buffer_, start_, n);
  consume(n);
  return data;
}

void StreamReader::consume(std::size_t n) {
  start_ += n;
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  } else if (start_ >= kCompactThreshold && start_ * 2 >= buffer_.size()) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  maybe_resume_transport();
}

StreamReader::DataWaiter StreamReader::wait_for_data(const char* function,
                                                     std::span<char> destination) {
  // Only one reader at a time: a second one would steal the first one's data.
  if (waiter_ != nullptr) {
    throw RuntimeError(std::string(function) +
                       "() called while another coroutine is already waiting for incoming data");
  }
  if (paused_) {
    paused_ = false;
    if (transport_ != nullptr) transport_->resume_reading();
  }
  return DataWaiter(*this, destination);
}

void StreamReader::unread(std::string_view data) noexcept {
  // Rare (a read cancelled just as its bytes came): rebuilding is fine. The
  // bytes were already counted against the limit once, so no pause check.
  try {
    buffer_.replace(0, start_, data);
    start_ = 0;
  } catch (...) {
    // Out of memory: the bytes are lost, as they would be on any allocation
    // failure in feed_data.
  }
}

Task<std::string> StreamReader::read(std::ptrdiff_t n) {
  if (exception_) std::rethrow_exception(exception_);
  if (n == 0) co_return std::string();
  if (n < 0) {
    // Until EOF, a limit-sized block at a time (so the transport is resumed).
    std::string all;
    for (;;) {
      std::string block = co_await read(static_cast<std::ptrdiff_t>(limit_));
      if (block.empty()) break;
      all += block;
    }
    co_return all;
  }
  if (buffered() == 0 && !eof_) co_await wait_for_data("read");
  co_return take(static_cast<std::size_t>(n));
}

Task<std::size_t> StreamReader::read_into(std::span<char> buffer) {
  if (exception_) std::rethrow_exception(exception_);
  if (buffer.empty()) co_return 0;
  if (buffered() == 0 && !eof_) {
    std::size_t delivered = co_await wait_for_data("read_into", buffer);
    if (delivered > 0) co_return delivered;
  }
  std::size_t n = std::min(buffer.size(), buffered());
  std::memcpy(buffer.data(), buffer_.data() + start_, n);
  consume(n);
  co_return n;
}

Task<std::string> StreamReader::readline() {
  try {
    co_return co_await readuntil("\n");
  } catch (const IncompleteReadError& e) {
    co_return e.partial();
  } catch (const LimitOverrunError& e) {
    // Drop the overlong line (up to and with its separator, if it is there),
    // as asyncio does, so the next readline starts on the next line.
    if (view().substr(e.consumed()).starts_with('\n')) {
      (void)take(e.consumed() + 1);
    } else {
      (void)take(buffered());
    }
    throw;
  }
}

Task<std::string> StreamReader::readuntil(std::string separator) {
  const std::size_t seplen = separator.size();
  if (seplen == 0) throw std::invalid_argument("Separator should be at least one-byte string");
  if (exception_) std::rethrow_exception(exception_);
  // Where to resume the search: bytes before it were searched already.
  std::size_t offset = 0;
  std::size_t isep = std::string_view::npos;
  for (;;) {
    std::size_t length = buffered();
    if (length >= offset + seplen) {
      isep = view().find(separator, offset);
      if (isep != std::string_view::npos) break;
      offset = length + 1 - seplen;
      if (offset > limit_) {
        throw LimitOverrunError("Separator is not found, and chunk exceed the limit", offset);
      }
    }
    if (eof_) throw IncompleteReadError(take(buffered()), std::nullopt);
    co_await wait_for_data("readuntil");
  }
  if (isep > limit_) {
    throw LimitOverrunError("Separator is found, but chunk is longer than limit", isep);
  }
  co_return take(isep + seplen);
}

Task<std::string> StreamReader::readexactly(std::size_t n) {
  if (exception_) std::rethrow_exception(exception_);
  if (n == 0) co_return std::string();
  while (buffered() < n) {
    if (eof_) throw IncompleteReadError(take(buffered()), n);
    co_await wait_for_data("readexactly");
  }
  co_return take(n);
}

// ---- StreamReaderProtocol ------------------------------------------------------

namespace detail {

StreamReaderProtocol::StreamReaderProtocol(EventLoop& loop, std::shared_ptr<StreamReader> reader,
                                           OnConnected on_connected)
    : loop_(loop),
      reader_(std::move(reader)),
      on_connected_(std::move(on_connected)),
      closed_(loop.create_future<void>()) {}

void StreamReaderProtocol::connection_made(Transport& transport) {
  reader_->set_transport(&transport);
  over_ssl_ = transport.get_extra_info("sslcontext").has_value();
  if (on_connected_) {
    on_connected_(transport.shared(), shared_from_this());
  }
}

namespace {

// Where bytes are received when no read_into() waits for them: as large as a
// transport's reads. Per thread, as the loop's own read buffer is per loop:
// it only holds bytes between get_buffer() and buffer_updated().
constexpr std::size_t kScratchSize = 256 * 1024;

std::span<std::byte> scratch_buffer() {
  thread_local std::unique_ptr<std::byte[]> scratch;
  if (!scratch) scratch.reset(new std::byte[kScratchSize]);
  return {scratch.get(), kScratchSize};
}

}  // namespace

std::span<std::byte> StreamReaderProtocol::get_buffer(std::size_t size_hint) {
  std::span<char> direct = reader_->receive_buffer();
  receiving_directly_ = !direct.empty();
  if (receiving_directly_) return std::as_writable_bytes(direct);
  return scratch_buffer().first(std::clamp<std::size_t>(size_hint, 1, kScratchSize));
}

void StreamReaderProtocol::buffer_updated(std::size_t bytes) {
  if (receiving_directly_) {
    reader_->feed_received(bytes);
  } else {
    reader_->feed_data(
        std::string_view(reinterpret_cast<const char*>(scratch_buffer().data()), bytes));
  }
}

bool StreamReaderProtocol::eof_received() {
  reader_->feed_eof();
  // Keep the transport open for writing: the application closes it. A TLS
  // transport cannot stay half-open, so asyncio lets it close.
  return !over_ssl_;
}

void StreamReaderProtocol::connection_lost(std::error_code error) {
  connection_lost_ = true;
  reader_->set_transport(nullptr);
  if (error) {
    lost_error_ = connection_error(error);
    reader_->set_exception(lost_error_);
  } else {
    reader_->feed_eof();
  }
  if (!closed_.done()) {
    if (lost_error_) {
      closed_.set_exception(lost_error_);
      // Counted as retrieved: nobody has to call wait_closed() (asyncio does the same).
      (void)closed_.exception();
    } else {
      closed_.set_result();
    }
  }
  // Wake every drain(); they see the loss.
  paused_ = false;
  for (Future<void>& waiter : drain_waiters_) {
    if (waiter.done()) continue;
    if (lost_error_) {
      waiter.set_exception(lost_error_);
    } else {
      waiter.set_result();
    }
  }
  drain_waiters_.clear();
}

void StreamReaderProtocol::pause_writing() { paused_ = true; }

void StreamReaderProtocol::resume_writing() {
  paused_ = false;
  for (Future<void>& waiter : drain_waiters_) {
    if (!waiter.done()) waiter.set_result();
  }
  drain_waiters_.clear();
}

Task<void> StreamReaderProtocol::drain_helper() {
  if (connection_lost_) {
    if (lost_error_) std::rethrow_exception(lost_error_);
    throw ConnectionError(std::make_error_code(std::errc::connection_reset), "Connection lost");
  }
  if (!paused_) co_return;
  Future<void> waiter = loop_.create_future<void>();
  drain_waiters_.push_back(waiter);
  try {
    co_await waiter;
  } catch (...) {
    auto it = std::find(drain_waiters_.begin(), drain_waiters_.end(), waiter);
    if (it != drain_waiters_.end()) drain_waiters_.erase(it);
    throw;
  }
}

}  // namespace detail

// ---- StreamWriter ----------------------------------------------------------------

StreamWriter::StreamWriter(std::shared_ptr<Transport> transport,
                           std::shared_ptr<detail::StreamReaderProtocol> protocol,
                           std::shared_ptr<StreamReader> reader)
    : transport_(std::move(transport)),
      protocol_(std::move(protocol)),
      reader_(std::move(reader)) {}

StreamWriter::~StreamWriter() {
  if (transport_ && !transport_->is_closing() && !transport_->get_loop().is_closed()) {
    transport_->close();
  }
}

Task<void> StreamWriter::drain() {
  if (reader_) {
    if (std::exception_ptr error = reader_->exception()) std::rethrow_exception(error);
  }
  if (transport_->is_closing()) {
    // Let connection_lost run, so a write/drain loop on a closing connection
    // sees the error instead of spinning.
    co_await sleep(0);
  }
  // Nothing to wait for (the common case of a write/drain loop): no frame
  // for drain_helper.
  if (protocol_->drained()) co_return;
  co_await protocol_->drain_helper();
}

Task<void> StreamWriter::wait_closed() { co_await protocol_->closed(); }

// ---- open_connection / start_server ------------------------------------------------

namespace {

// Wraps a made connection in a reader and a writer.
StreamPair make_stream_pair(std::shared_ptr<StreamReader> reader,
                            const std::shared_ptr<Transport>& transport,
                            std::shared_ptr<detail::StreamReaderProtocol> protocol) {
  auto writer = std::make_shared<StreamWriter>(transport, std::move(protocol), reader);
  return StreamPair{std::move(reader), std::move(writer)};
}

}  // namespace

Task<StreamPair> open_connection(EventLoop& loop, std::string host, std::uint16_t port,
                                 ConnectOptions options, std::size_t limit) {
  auto reader = std::make_shared<StreamReader>(limit);
  // Not written inline in the co_await expression: g++ 12 destroys a lambda
  // temporary with non-trivial captures twice there (see docs/coroutines.md).
  auto factory = [&loop, reader] {
    return std::make_shared<detail::StreamReaderProtocol>(loop, reader);
  };
  auto connecting =
      loop.create_connection(std::move(factory), std::move(host), port, std::move(options));
  auto connection = co_await connecting;
  co_return make_stream_pair(std::move(reader), connection.transport, connection.protocol);
}

Task<StreamPair> open_unix_connection(EventLoop& loop, std::string path, UnixConnectOptions options,
                                      std::size_t limit) {
  auto reader = std::make_shared<StreamReader>(limit);
  auto factory = [&loop, reader] {  // bound first: see open_connection
    return std::make_shared<detail::StreamReaderProtocol>(loop, reader);
  };
  auto connecting = loop.create_unix_connection(std::move(factory), std::move(path), options);
  auto connection = co_await connecting;
  co_return make_stream_pair(std::move(reader), connection.transport, connection.protocol);
}

namespace detail {
namespace {

// The protocol factory of a stream server: each connection gets a reader, a
// protocol and, once connection_made runs, a writer and a task running
// `callback(reader, writer)`.
auto stream_server_factory(EventLoop& loop, ClientCallback callback, std::size_t limit) {
  auto shared_callback = std::make_shared<ClientCallback>(std::move(callback));
  return [&loop, shared_callback, limit] {
    auto reader = std::make_shared<StreamReader>(limit);
    auto on_connected = [&loop, shared_callback, reader](
                            std::shared_ptr<Transport> transport,
                            std::shared_ptr<StreamReaderProtocol> protocol) {
      auto writer = std::make_shared<StreamWriter>(transport, std::move(protocol), reader);
      Task<void> client = (*shared_callback)(reader, std::move(writer));
      if (!client.valid()) return;
      client = loop.create_task(std::move(client));
      client.add_done_callback([transport](Task<void>& done) {
        if (done.cancelled()) return;
        if (std::exception_ptr error = done.exception()) {
          done.get_loop().call_exception_handler(
              {"Unhandled exception in client_connected_cb", error, transport.get()});
          transport->close();
        }
      });
    };
    return std::make_shared<StreamReaderProtocol>(loop, reader, std::move(on_connected));
  };
}

}  // namespace

Task<std::shared_ptr<Server>> start_server(EventLoop& loop, ClientCallback callback,
                                           std::string host, std::uint16_t port,
                                           ServerOptions options, std::size_t limit) {
  auto factory = stream_server_factory(loop, std::move(callback), limit);
  auto starting = loop.create_server(std::move(factory), std::move(host), port, std::move(options));
  co_return co_await starting;
}

Task<std::shared_ptr<Server>> start_unix_server(EventLoop& loop, ClientCallback callback,
                                                std::string path, UnixServerOptions options,
                                                std::size_t limit) {
  auto factory = stream_server_factory(loop, std::move(callback), limit);
  auto starting = loop.create_unix_server(std::move(factory), std::move(path), options);
  co_return co_await starting;
}

}  // namespace detail
}  // namespace tulip
