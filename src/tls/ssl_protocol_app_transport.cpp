// SslProtocol as the application's transport: writes encrypted through the
// engine, close/abort, and the flow control that joins the TLS layer's own
// buffer to the raw transport's (asyncio's _SSLProtocolTransport side of
// sslproto).
#include <string>
#include <utility>

#include "ssl_protocol.hpp"
#include "tulip/errors.hpp"
#include "tulip/log.hpp"

namespace tulip::detail {
namespace {

// Plaintext encrypted per step of a long write: the records of one step go
// down in one write, and the engine's output never holds more than about this.
constexpr std::size_t kWriteStep = 256 * 1024;
// writelines() gathers pieces smaller than this into one record.
constexpr std::size_t kGatherLimit = 16 * 1024;
// The engine's output keeps its capacity between writes up to this size.
constexpr std::size_t kKeptOutputCapacity = 64 * 1024;

}  // namespace

// ---- Writing ------------------------------------------------------------------------------------

void SslProtocol::flush() {
  std::string& output = engine_.output();
  if (output.empty()) return;
  if (below_ == nullptr || below_->is_closing()) {
    output.clear();
    return;
  }
  if (below_->get_write_buffer_size() > 0) {
    // Everything would wait in the buffer below: hand the string over, no copy.
    std::string records = std::move(output);
    output = std::string();
    below_->write(std::move(records));
    return;
  }
  // The transport below sends at once and copies only what the kernel did
  // not take. The records move out of output() first: a pause_writing the
  // write triggers may let the application write again, into a fresh output.
  std::string records;
  records.swap(output);
  below_->write(std::string_view(records));
  if (output.empty() && records.capacity() <= kKeptOutputCapacity) {
    records.clear();
    output.swap(records);
  }
}

void SslProtocol::write(std::string_view data) {
  if (data.empty()) return;
  if (state_ != State::kWrapped || app_closing_) {
    refuse_write(data.size());
    return;
  }
  while (!data.empty()) {
    std::string_view step = data.substr(0, kWriteStep);
    if (engine_.write(step.data(), step.size()) != TlsEngine::Status::kOk) {
      engine_failed("Fatal error on SSL protocol");
      return;
    }
    data.remove_prefix(step.size());
    flush();
    // pause_writing, called inside the flush, may have closed the transport.
    if (state_ != State::kWrapped) return;
  }
}

void SslProtocol::refuse_write(std::size_t bytes) {
  // As a socket transport: one warning at the first dropped write.
  if (dropped_writes_++ == 0) {
    log(LogLevel::kWarning, "write() after the SSL transport was closed: " + std::to_string(bytes) +
                                " bytes dropped (peer " + peer_text() + ")");
  }
}

void SslProtocol::writelines(std::span<const std::string_view> buffers) {
  std::size_t total = 0;
  for (std::string_view piece : buffers) total += piece.size();
  if (total == 0) return;
  if (state_ != State::kWrapped || app_closing_) {
    refuse_write(total);
    return;
  }
  // Small pieces are gathered so that they share records (one record each
  // would cost 22 bytes and an encryption per piece); big ones go as they are.
  char gathered[kGatherLimit];
  std::size_t used = 0;
  auto encrypt = [this](const char* data, std::size_t size) {
    if (engine_.write(data, size) == TlsEngine::Status::kOk) return true;
    engine_failed("Fatal error on SSL protocol");
    return false;
  };
  for (std::string_view piece : buffers) {
    if (piece.size() >= kGatherLimit / 2) {
      if (used > 0 && !encrypt(gathered, std::exchange(used, 0))) return;
      if (!encrypt(piece.data(), piece.size())) return;
    } else if (!piece.empty()) {
      if (used + piece.size() > kGatherLimit && !encrypt(gathered, std::exchange(used, 0))) return;
      std::memcpy(gathered + used, piece.data(), piece.size());
      used += piece.size();
    }
    if (engine_.output().size() >= kWriteStep) {
      flush();
      if (state_ != State::kWrapped) return;
    }
  }
  if (used > 0 && !encrypt(gathered, used)) return;
  flush();
}

// ---- Closing, flow control, extra info ------------------------------------------------------

void SslProtocol::close() {
  if (app_closing_) return;
  app_closing_ = true;
  if (state_ == State::kWrapped) start_shutdown();
}

void SslProtocol::abort() {
  app_closing_ = true;
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  handshake_timer_.cancel();
  shutdown_timer_.cancel();
  engine_.drop_input();
  engine_.output().clear();
  if (below_ != nullptr) below_->abort();
}

void SslProtocol::pause_reading() {
  if (is_closing() || app_reading_paused_) return;
  app_reading_paused_ = true;
  // Nothing more is read from the kernel until resume_reading().
  if (below_ != nullptr) below_->pause_reading();
}

void SslProtocol::resume_reading() {
  if (is_closing() || !app_reading_paused_) return;
  app_reading_paused_ = false;
  if (below_ != nullptr) below_->resume_reading();
  schedule_resume();
}

void SslProtocol::schedule_resume() {
  if (resume_scheduled_) return;
  resume_scheduled_ = true;
  // Records already here are delivered from the loop, never inside resume_reading().
  loop_.call_soon([weak = weak_from_this()] {
    auto self = weak.lock();
    if (!self) return;
    self->resume_scheduled_ = false;
    if (self->state_ != State::kWrapped || self->app_reading_paused_) return;
    self->do_read();
    if (self->eof_deferred_ && self->state_ == State::kWrapped && !self->app_reading_paused_ &&
        !self->engine_.may_have_data()) {
      self->eof_deferred_ = false;
      self->call_eof_received();
      self->state_ = State::kClosed;
      if (self->below_ != nullptr) self->below_->close();
    }
  });
}

void SslProtocol::pause_writing() {
  below_writing_paused_ = true;
  if (!handshake_done_ || app_state_ == AppState::kLost || !app_) return;
  try {
    app_->pause_writing();
  } catch (...) {
    report_current_exception("protocol.pause_writing() failed");
  }
}

void SslProtocol::resume_writing() {
  below_writing_paused_ = false;
  if (!handshake_done_ || app_state_ == AppState::kLost || !app_) return;
  try {
    app_->resume_writing();
  } catch (...) {
    report_current_exception("protocol.resume_writing() failed");
  }
}

void SslProtocol::set_write_buffer_limits(std::optional<std::size_t> high,
                                          std::optional<std::size_t> low) {
  limits_.set_limits(high, low);  // validates, and keeps the marks for after the loss
  // There is no buffer of this layer's own: the marks are the transport
  // below's, whose pause_writing and resume_writing come here.
  if (below_ != nullptr) below_->set_write_buffer_limits(high, low);
}

std::pair<std::size_t, std::size_t> SslProtocol::get_write_buffer_limits() const noexcept {
  return below_ != nullptr ? below_->get_write_buffer_limits() : limits_.limits();
}

std::size_t SslProtocol::get_write_buffer_size() const noexcept {
  return below_ != nullptr ? below_->get_write_buffer_size() + engine_.output_size() : 0;
}

std::any SslProtocol::get_extra_info(std::string_view name) const {
  std::any tls = engine_.extra_info(name);
  if (tls.has_value()) return tls;
  if (below_ != nullptr) return below_->get_extra_info(name);
  if (name == "peername") return peername_;
  if (name == "sockname") return sockname_;
  if (name == "socket") return std::any(-1);
  return {};
}

void SslProtocol::set_app_protocol(std::shared_ptr<StreamProtocol> protocol) {
  if (!protocol) throw std::invalid_argument("set_protocol() needs a protocol, not null");
  auto* data = dynamic_cast<Protocol*>(protocol.get());
  auto* buffered = data != nullptr ? nullptr : dynamic_cast<BufferedProtocol*>(protocol.get());
  if (data == nullptr && buffered == nullptr) {
    throw std::invalid_argument(
        "set_protocol() needs a tulip::Protocol or tulip::BufferedProtocol; a class derived "
        "from StreamProtocol alone cannot receive data");
  }
  if (app_) {
    // The old protocol may be the caller, inside one of its callbacks: it is
    // released on the next iteration, after that callback has returned.
    loop_.call_soon([retired = std::move(app_)] {});
  }
  app_ = std::move(protocol);
  app_data_ = data;
  app_buffered_ = buffered;
}

}  // namespace tulip::detail
