// tulip::testing::MemoryTransport: the in-memory transport and its peer.
#include "tulip/testing/memory_transport.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "loop_access.hpp"
#include "loop_internals.hpp"
#include "testing/memory_stream_transport.hpp"
#include "tulip/errors.hpp"
#include "tulip/log.hpp"

namespace tulip::testing {
namespace detail {
namespace {

// One read hands the protocol at most this much, as a socket read does (asyncio's max_size).
constexpr std::size_t kMaxRead = 256 * 1024;

}  // namespace

MemoryStreamTransport::MemoryStreamTransport(EventLoop& loop, MemoryTransportOptions options)
    : loop_(loop),
      peername_(options.peername),
      sockname_(options.sockname),
      peer_window_(options.peer_window) {}

void MemoryStreamTransport::start(std::shared_ptr<StreamProtocol> protocol) {
  set_protocol(std::move(protocol));
  // The loop owns the transport until connection_lost has returned, exactly as
  // it owns a socket transport, so closing the loop ends this one too.
  tulip::detail::LoopAccess::internals(loop_).registry.transports.emplace(
      static_cast<tulip::detail::LoopMember*>(this),
      std::shared_ptr<tulip::detail::LoopMember>(shared(),
                                                 static_cast<tulip::detail::LoopMember*>(this)));
  // connection_made from the ready queue, never inside connect(); reading
  // starts only after it has returned.
  loop_.call_soon([self = shared()] {
    auto& transport = static_cast<MemoryStreamTransport&>(*self);
    if (!transport.protocol_ || transport.released_) return;
    try {
      transport.protocol_->connection_made(transport);
    } catch (...) {
      transport.protocol_failed("Exception in protocol.connection_made()");
    }
    transport.reading_started_ = true;
    transport.schedule_read();
  });
}

// ---- Protocol and extra info ---------------------------------------------------

void MemoryStreamTransport::set_protocol(std::shared_ptr<StreamProtocol> protocol) {
  if (!protocol) throw std::invalid_argument("set_protocol() needs a protocol, not null");
  if (dynamic_cast<Protocol*>(protocol.get()) == nullptr &&
      dynamic_cast<BufferedProtocol*>(protocol.get()) == nullptr) {
    throw std::invalid_argument(
        "set_protocol() needs a tulip::Protocol or tulip::BufferedProtocol; a class derived "
        "from StreamProtocol alone cannot receive data");
  }
  if (protocol_ && !released_) {
    // The old protocol may be the caller (an upgrade inside data_received):
    // it is released on the next iteration, after its callback has returned.
    loop_.call_soon([retired = std::move(protocol_)] {});
  }
  protocol_ = std::move(protocol);
  data_protocol_ = dynamic_cast<Protocol*>(protocol_.get());
  buffered_protocol_ =
      data_protocol_ != nullptr ? nullptr : dynamic_cast<BufferedProtocol*>(protocol_.get());
}

std::any MemoryStreamTransport::get_extra_info(std::string_view name) const {
  if (name == "peername") return peername_.empty() ? std::any{} : std::any(peername_);
  if (name == "sockname") return sockname_.empty() ? std::any{} : std::any(sockname_);
  if (name == "socket") return std::any(-1);  // there is no descriptor
  return {};
}

// ---- Reading -------------------------------------------------------------------

void MemoryStreamTransport::schedule_read() {
  if (read_scheduled_ || !can_read() || (inbound_.empty() && !peer_eof_)) return;
  read_scheduled_ = true;
  // One read per iteration, as one readiness event gives one recv(): a
  // pause_reading() in data_received stops the next fragment, not this one.
  loop_.call_soon([self = shared()] {
    auto& transport = static_cast<MemoryStreamTransport&>(*self);
    transport.read_scheduled_ = false;
    transport.read_once();
    transport.schedule_read();
  });
}

void MemoryStreamTransport::read_once() {
  if (!can_read() || (inbound_.empty() && !peer_eof_)) return;
  if (buffered_protocol_ != nullptr) {
    read_into_buffered_protocol();
  } else if (inbound_.empty()) {
    on_eof();
  } else {
    read_into_protocol();
  }
}

void MemoryStreamTransport::read_into_protocol() {
  // The bytes leave the queue before the protocol sees them: a callback that
  // feeds, resets or closes must not change what it is reading.
  std::string& front = inbound_.front();
  std::size_t available = front.size() - inbound_offset_;
  std::string chunk;
  if (inbound_offset_ == 0 && available <= kMaxRead) {
    chunk = std::move(front);
    inbound_.pop_front();
  } else {
    std::size_t n = std::min(available, kMaxRead);
    chunk = front.substr(inbound_offset_, n);
    inbound_offset_ += n;
    if (inbound_offset_ == front.size()) {
      inbound_.pop_front();
      inbound_offset_ = 0;
    }
  }
  if (data_protocol_ == nullptr) return;
  try {
    data_protocol_->data_received(chunk);
  } catch (...) {
    protocol_failed("Fatal error: protocol.data_received() call failed.");
  }
}

void MemoryStreamTransport::read_into_buffered_protocol() {
  BufferedProtocol* target = buffered_protocol_;
  std::span<std::byte> buffer;
  try {
    // The socket transport asks for its read size too, EOF or not.
    buffer = target->get_buffer(kMaxRead);
  } catch (...) {
    protocol_failed("Fatal error: protocol.get_buffer() call failed.");
    return;
  }
  // get_buffer may have closed, paused or replaced the protocol: then nothing
  // is read into this buffer (the socket transport's rule).
  if (closing_ || reading_paused_ || target != buffered_protocol_) return;
  if (buffer.empty()) {
    loop_.call_exception_handler(context("Fatal error: get_buffer() returned an empty buffer"));
    force_close(make_error_code(Error::kEmptyBuffer));
    return;
  }
  if (inbound_.empty()) {
    on_eof();
    return;
  }
  std::string& front = inbound_.front();
  std::size_t n = std::min({buffer.size(), front.size() - inbound_offset_, kMaxRead});
  std::memcpy(buffer.data(), front.data() + inbound_offset_, n);
  inbound_offset_ += n;
  if (inbound_offset_ == front.size()) {
    inbound_.pop_front();
    inbound_offset_ = 0;
  }
  try {
    target->buffer_updated(n);
  } catch (...) {
    protocol_failed("Fatal error: protocol.buffer_updated() call failed.");
  }
}

void MemoryStreamTransport::on_eof() {
  eof_received_ = true;
  bool keep_open = false;
  try {
    keep_open = protocol_ && protocol_->eof_received();
  } catch (...) {
    protocol_failed("Fatal error: protocol.eof_received() call failed.");
    return;
  }
  if (!keep_open) close();
}

void MemoryStreamTransport::pause_reading() {
  if (closing_ || reading_paused_) return;
  reading_paused_ = true;
}

void MemoryStreamTransport::resume_reading() {
  if (closing_ || !reading_paused_) return;
  reading_paused_ = false;
  schedule_read();
}

// ---- Writing -------------------------------------------------------------------

bool MemoryStreamTransport::accept_write(std::size_t bytes) {
  if (bytes == 0) return false;
  if (eof_requested_) throw RuntimeError("Cannot call write() after write_eof()");
  if (closing_ || lost_) {
    // One warning at the first dropped write, as the socket transport does.
    if (dropped_writes_++ == 0) {
      log(LogLevel::kWarning, "write() after the transport was closed: " + std::to_string(bytes) +
                                  " bytes dropped (peer " + peername_.to_string() + ")");
    }
    return false;
  }
  return true;
}

std::size_t MemoryStreamTransport::peer_space() const noexcept {
  if (!peer_accepting_) return 0;
  if (!peer_window_) return std::numeric_limits<std::size_t>::max();
  return *peer_window_ > peer_received_.size() ? *peer_window_ - peer_received_.size() : 0;
}

std::size_t MemoryStreamTransport::deliver(std::string_view data) {
  std::size_t n = std::min(data.size(), peer_space());
  peer_received_.append(data.substr(0, n));
  return n;
}

void MemoryStreamTransport::write(std::string_view data) {
  if (!accept_write(data.size())) return;
  if (buffer_.empty()) {
    // What the window takes goes to the peer now, as the kernel takes a send().
    data.remove_prefix(deliver(data));
    if (data.empty()) return;
  }
  buffer_.append(data);
  after_buffer_grew();
}

void MemoryStreamTransport::write(std::string&& data) {
  if (!accept_write(data.size())) return;
  if (buffer_.empty()) {
    std::size_t taken = deliver(data);
    if (taken == data.size()) return;
    buffer_.append(std::move(data));
    buffer_.consume(taken);
  } else {
    buffer_.append(std::move(data));
  }
  after_buffer_grew();
}

void MemoryStreamTransport::writelines(std::span<const std::string_view> buffers) {
  std::size_t total = 0;
  for (std::string_view piece : buffers) total += piece.size();
  if (!accept_write(total)) return;
  bool direct = buffer_.empty();
  for (std::string_view piece : buffers) {
    if (direct) {
      piece.remove_prefix(deliver(piece));
      direct = piece.empty();
    }
    buffer_.append(piece);
  }
  if (!buffer_.empty()) after_buffer_grew();
}

void MemoryStreamTransport::after_buffer_grew() {
  // Flow control counts exactly what a socket transport would have buffered.
  maybe_pause_protocol();
}

void MemoryStreamTransport::schedule_drain() {
  if (drain_scheduled_ || lost_ || buffer_.empty() || peer_space() == 0) return;
  drain_scheduled_ = true;
  // Writability comes from the loop, never inside the peer's call that made room.
  loop_.call_soon([self = shared()] {
    auto& transport = static_cast<MemoryStreamTransport&>(*self);
    transport.drain_scheduled_ = false;
    transport.drain();
  });
}

void MemoryStreamTransport::drain() {
  if (lost_) return;
  constexpr std::size_t kBatch = 16;
  iovec pieces[kBatch];
  while (!buffer_.empty() && peer_space() > 0) {
    std::size_t count = buffer_.gather(pieces, kBatch);
    std::size_t taken = 0;
    for (std::size_t i = 0; i < count; ++i) {
      std::string_view piece(static_cast<const char*>(pieces[i].iov_base), pieces[i].iov_len);
      std::size_t n = deliver(piece);
      taken += n;
      if (n < piece.size()) break;
    }
    buffer_.consume(taken);
  }
  maybe_resume_protocol();
  if (lost_ || !buffer_.empty()) return;  // resume_writing may have aborted or written
  if (closing_) {
    eof_sent_ = true;
    schedule_connection_lost({});
  } else if (eof_requested_) {
    eof_sent_ = true;
  }
}

void MemoryStreamTransport::write_eof() {
  if (closing_ || eof_requested_) return;
  eof_requested_ = true;
  if (buffer_.empty()) eof_sent_ = true;
}

void MemoryStreamTransport::set_write_buffer_limits(std::optional<std::size_t> high,
                                                    std::optional<std::size_t> low) {
  flow_.set_limits(high, low);
  maybe_pause_protocol();
}

void MemoryStreamTransport::maybe_pause_protocol() {
  if (!flow_.should_pause(buffer_.size()) || !protocol_) return;
  try {
    protocol_->pause_writing();
  } catch (...) {
    report_current_exception("protocol.pause_writing() failed");
  }
}

void MemoryStreamTransport::maybe_resume_protocol() {
  if (!flow_.should_resume(buffer_.size()) || !protocol_) return;
  try {
    protocol_->resume_writing();
  } catch (...) {
    report_current_exception("protocol.resume_writing() failed");
  }
}

// ---- Closing -------------------------------------------------------------------

void MemoryStreamTransport::close() {
  if (closing_) return;
  closing_ = true;  // reading stops now; the buffer drains as the window allows
  if (buffer_.empty()) {
    eof_sent_ = true;
    schedule_connection_lost({});
  }
}

void MemoryStreamTransport::abort() { force_close({}); }

void MemoryStreamTransport::force_close(std::error_code error) {
  if (lost_) return;
  buffer_.clear();
  closing_ = true;
  schedule_connection_lost(error);
}

void MemoryStreamTransport::schedule_connection_lost(std::error_code error) {
  lost_ = true;
  // A fresh stack: never inside close()/abort() or the callback that caused
  // it. The captured pointer keeps the object alive until the call returns.
  loop_.call_soon([self = shared(), error] {
    static_cast<MemoryStreamTransport&>(*self).call_connection_lost(error);
  });
}

void MemoryStreamTransport::call_connection_lost(std::error_code error) {
  if (released_) return;
  if (protocol_) {
    try {
      protocol_->connection_lost(error);
    } catch (...) {
      report_current_exception("Exception in protocol.connection_lost()");
    }
  }
  release();
}

void MemoryStreamTransport::release() {
  if (released_) return;
  released_ = true;
  inbound_.clear();
  data_protocol_ = nullptr;
  buffered_protocol_ = nullptr;
  // Dropping the protocol ends a cycle it may have made with transport.shared().
  std::shared_ptr<StreamProtocol> protocol = std::move(protocol_);
  // Last: the registry's reference may be the one keeping this object alive;
  // every caller holds its own across this call.
  tulip::detail::LoopAccess::internals(loop_).registry.transports.erase(
      static_cast<tulip::detail::LoopMember*>(this));
}

void MemoryStreamTransport::shutdown_with_loop() noexcept {
  if (released_) return;
  bool tell_protocol = reading_started_;
  buffer_.clear();
  closing_ = lost_ = true;
  if (tell_protocol && protocol_) {
    try {
      protocol_->connection_lost(std::make_error_code(std::errc::connection_aborted));
    } catch (...) {
      // The loop is closing: there is no handler left to tell.
    }
  }
  release();
}

// ---- Errors --------------------------------------------------------------------

ExceptionContext MemoryStreamTransport::context(const char* message) const {
  ExceptionContext details;
  details.message = message;
  details.transport = const_cast<MemoryStreamTransport*>(this);
  details.protocol = protocol_.get();
  return details;
}

void MemoryStreamTransport::report_current_exception(const char* message) noexcept {
  ExceptionContext details = context(message);
  details.exception = std::current_exception();
  loop_.call_exception_handler(details);
}

void MemoryStreamTransport::protocol_failed(const char* message) {
  report_current_exception(message);
  force_close(make_error_code(Error::kCallbackRaised));
}

// ---- The peer ------------------------------------------------------------------

void MemoryStreamTransport::peer_feed(std::string_view bytes) {
  if (peer_eof_) throw std::logic_error("MemoryPeer::feed() after feed_eof()");
  if (bytes.empty() || closing_ || peer_reset_) return;
  inbound_.emplace_back(bytes);
  schedule_read();
}

void MemoryStreamTransport::peer_feed_eof() {
  if (peer_eof_ || closing_ || peer_reset_) return;
  peer_eof_ = true;
  schedule_read();
}

void MemoryStreamTransport::peer_reset(std::error_code error) {
  if (closing_ || peer_reset_) return;
  // Nothing the peer sent is read any more; the transport learns of the reset
  // on the next iteration, as it would from its next recv().
  inbound_.clear();
  inbound_offset_ = 0;
  peer_reset_ = true;
  loop_.call_soon([self = shared(), error] {
    auto& transport = static_cast<MemoryStreamTransport&>(*self);
    transport.force_close(error);
  });
}

std::string MemoryStreamTransport::peer_take() {
  std::string taken = std::move(peer_received_);
  peer_received_.clear();
  schedule_drain();
  return taken;
}

void MemoryStreamTransport::peer_set_window(std::optional<std::size_t> bytes) {
  peer_window_ = bytes;
  schedule_drain();
}

void MemoryStreamTransport::peer_set_accepting(bool accepting) {
  peer_accepting_ = accepting;
  schedule_drain();
}

std::size_t MemoryStreamTransport::unread_size() const noexcept {
  std::size_t total = 0;
  for (const std::string& fragment : inbound_) total += fragment.size();
  return total - inbound_offset_;
}

}  // namespace detail

// ---- MemoryPeer and MemoryTransport ----------------------------------------------

void MemoryPeer::feed(std::string_view bytes) { transport_->peer_feed(bytes); }

void MemoryPeer::feed(std::string_view bytes, std::size_t fragment_size) {
  if (fragment_size == 0) throw std::invalid_argument("MemoryPeer::feed(): fragment size 0");
  while (!bytes.empty()) {
    std::size_t n = std::min(bytes.size(), fragment_size);
    transport_->peer_feed(bytes.substr(0, n));
    bytes.remove_prefix(n);
  }
}

void MemoryPeer::feed_eof() { transport_->peer_feed_eof(); }
void MemoryPeer::reset(std::error_code error) { transport_->peer_reset(error); }
const std::string& MemoryPeer::written() const noexcept { return transport_->peer_received(); }
std::string MemoryPeer::take_written() { return transport_->peer_take(); }
bool MemoryPeer::peer_eof_seen() const noexcept { return transport_->peer_eof_seen(); }
void MemoryPeer::set_peer_window(std::optional<std::size_t> bytes) {
  transport_->peer_set_window(bytes);
}
void MemoryPeer::set_peer_accepting(bool accepting) { transport_->peer_set_accepting(accepting); }
std::size_t MemoryPeer::unread_size() const noexcept { return transport_->unread_size(); }
std::size_t MemoryPeer::dropped_writes() const noexcept { return transport_->dropped_writes(); }
bool MemoryPeer::connection_lost() const noexcept { return transport_->released(); }
std::shared_ptr<Transport> MemoryPeer::transport() const { return transport_; }

MemoryPeer MemoryTransport::start(EventLoop& loop, std::shared_ptr<StreamProtocol> protocol,
                                  MemoryTransportOptions options) {
  tulip::detail::LoopAccess::throw_if_closed(loop);
  if (!protocol)
    throw std::invalid_argument("MemoryTransport::connect() needs a protocol, not null");
  auto transport = std::make_shared<detail::MemoryStreamTransport>(loop, std::move(options));
  transport->start(std::move(protocol));
  return MemoryPeer(std::move(transport));
}

std::size_t run_until_idle(EventLoop& loop, std::size_t max_iterations) {
  for (std::size_t i = 0; i < max_iterations; ++i) {
    if (loop.ready_count() == 0) return i;
    run_one_iteration(loop);
  }
  if (loop.ready_count() == 0) return max_iterations;
  throw RuntimeError("run_until_idle(): callbacks still ready after " +
                     std::to_string(max_iterations) + " iterations");
}

void run_one_iteration(EventLoop& loop) {
  // stop() before run_forever() runs exactly one iteration, polling without
  // blocking (asyncio's rule).
  loop.stop();
  loop.run_forever();
}

}  // namespace tulip::testing
