#include "ssl_protocol.hpp"

#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "ssl_transport.hpp"
#include "tulip/errors.hpp"
#include "tulip/log.hpp"
#include "tulip/socket_address.hpp"

namespace tulip::detail {
namespace {

// asyncio's SSLProtocol.max_size: the most plaintext handed over per callback.
constexpr std::size_t kMaxRead = 256 * 1024;

// Where a Protocol's plaintext is decrypted to before data_received borrows
// it: one buffer per thread, as a loop's socket transports share one read
// buffer. A read never runs inside another on the same thread (nothing the
// application calls reads synchronously), but should one, it gets a buffer
// of its own rather than overwrite the one being delivered.
class PlaintextBuffer {
 public:
  PlaintextBuffer() {
    if (!in_use_) {
      in_use_ = owner_ = true;
      data_ = shared();
    } else {
      own_ = std::make_unique<char[]>(kMaxRead);
      data_ = own_.get();
    }
  }
  ~PlaintextBuffer() {
    if (owner_) in_use_ = false;
  }
  PlaintextBuffer(const PlaintextBuffer&) = delete;
  PlaintextBuffer& operator=(const PlaintextBuffer&) = delete;
  char* data() const noexcept { return data_; }

 private:
  static char* shared() {
    // Allocated on first use and never touched before, so a thread that
    // never reads TLS pays nothing; freed when the thread ends.
    thread_local std::unique_ptr<char[]> buffer(new char[kMaxRead]);
    return buffer.get();
  }
  static thread_local bool in_use_;
  bool owner_ = false;
  char* data_ = nullptr;
  std::unique_ptr<char[]> own_;
};

thread_local bool PlaintextBuffer::in_use_ = false;

std::string describe(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown error";
  }
}

}  // namespace

SslProtocol::SslProtocol(EventLoop& loop, std::shared_ptr<StreamProtocol> app,
                         const TlsLayerSettings& settings, bool app_connected,
                         HandshakeDone on_handshake)
    : loop_(loop),
      engine_(settings.context, settings.server_side, settings.server_hostname, settings.session),
      on_handshake_(std::move(on_handshake)),
      handshake_timeout_(settings.handshake_timeout),
      shutdown_timeout_(settings.shutdown_timeout),
      server_side_(settings.server_side),
      app_state_(app_connected ? AppState::kMade : AppState::kInit) {
  set_app_protocol(std::move(app));
}

SslProtocol::~SslProtocol() = default;

// ---- Handshake ----------------------------------------------------------------------------

void SslProtocol::connection_made(Transport& transport) {
  below_ = &transport;
  // Kept so that peername and sockname stay available after the loss, as a
  // socket transport keeps them.
  peername_ = transport.get_extra_info("peername");
  sockname_ = transport.get_extra_info("sockname");
  if (state_ != State::kUnwrapped) {
    // The caller gave up before the connection was even made.
    transport.abort();
    return;
  }
  state_ = State::kHandshake;
  handshake_timer_ = loop_.call_later(handshake_timeout_, [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->on_handshake_timeout();
  });
  do_handshake();
  if (state_ == State::kWrapped) do_read();
  flush();
}

void SslProtocol::do_handshake() {
  TlsEngine::Status status = engine_.handshake();
  if (status == TlsEngine::Status::kOk) {
    // The last flight (a client's Finished, a server's tickets) waits for
    // what connection_made and the first read write, so that they leave in
    // one segment; the caller flushes.
    on_handshake_complete(nullptr);
    return;
  }
  // The next flight, or the alert that tells the peer why the handshake
  // failed, goes out first.
  flush();
  switch (status) {
    case TlsEngine::Status::kOk:
      break;
    case TlsEngine::Status::kWantRead:
      break;
    case TlsEngine::Status::kClosed:
      on_handshake_complete(std::make_exception_ptr(
          ConnectionError(std::make_error_code(std::errc::connection_reset),
                          "the peer closed the connection during the SSL handshake")));
      break;
    case TlsEngine::Status::kError:
      on_handshake_complete(engine_.exception());
      break;
  }
}

void SslProtocol::on_handshake_complete(std::exception_ptr error) {
  handshake_timer_.cancel();
  if (error) {
    state_ = State::kClosed;
    engine_.drop_input();
    if (log_enabled(LogLevel::kDebug)) {
      log(LogLevel::kDebug, "SSL handshake failed (" + peer_text() + "): " + describe(error));
    }
    if (below_ != nullptr) below_->abort();
    tell_waiter(error);
    return;
  }
  state_ = State::kWrapped;
  handshake_done_ = true;
  app_transport_ = std::make_shared<SslTransport>(shared_from_this());
  if (app_state_ == AppState::kInit) {
    app_state_ = AppState::kMade;
    try {
      app_->connection_made(*app_transport_);
    } catch (...) {
      protocol_failed("Exception in protocol.connection_made()");
    }
  }
  // The transport below may have paused while the handshake filled its buffer.
  if (below_writing_paused_ && state_ == State::kWrapped) pause_writing();
  // As for a socket transport, the Future completes after connection_made,
  // even if it threw (the connection is closing then).
  tell_waiter(nullptr);
}

void SslProtocol::on_handshake_timeout() {
  if (state_ != State::kHandshake) return;
  char message[128];
  std::snprintf(message, sizeof(message),
                "SSL handshake is taking longer than %g seconds: aborting the connection",
                handshake_timeout_);
  on_handshake_complete(std::make_exception_ptr(
      ConnectionError(make_error_code(Error::kSslHandshakeTimeout), message)));
}

void SslProtocol::tell_waiter(std::exception_ptr error) {
  if (!on_handshake_) return;
  HandshakeDone done = std::move(on_handshake_);
  on_handshake_ = nullptr;
  try {
    done(error, error ? nullptr : app_transport_);
  } catch (...) {
    // The Future's loop is closing: nobody is left to tell.
  }
}

void SslProtocol::cancel_handshake() {
  on_handshake_ = nullptr;
  if (state_ != State::kUnwrapped && state_ != State::kHandshake) return;
  handshake_timer_.cancel();
  state_ = State::kClosed;
  if (below_ != nullptr) below_->abort();
}

// ---- Records from below ------------------------------------------------------------------------

void SslProtocol::data_received(std::string_view records) {
  if (state_ == State::kClosed || state_ == State::kUnwrapped) return;
  engine_.set_input(records);
  process_input();
  // What OpenSSL has not read yet (a partial record, or everything while the
  // application paused reading) must outlive the buffer it came in.
  if (state_ == State::kClosed) {
    engine_.drop_input();
  } else {
    engine_.keep_unread();
  }
}

void SslProtocol::process_input() {
  switch (state_) {
    case State::kHandshake:
      do_handshake();
      if (state_ == State::kWrapped) do_read();
      flush();  // the handshake's last flight, if nothing was written after it
      break;
    case State::kWrapped:
      do_read();
      break;
    case State::kShutdown:
      read_during_shutdown();
      break;
    default:
      engine_.drop_input();
      break;
  }
}

void SslProtocol::do_read() {
  while (state_ == State::kWrapped && !app_reading_paused_ && !app_closing_) {
    bool more = app_buffered_ != nullptr ? read_into_buffered_protocol() : read_into_protocol();
    if (!more) break;
  }
  // Reading may have made OpenSSL answer the peer (a TLS 1.3 key update).
  flush();
}

bool SslProtocol::read_into_protocol() {
  PlaintextBuffer buffer;
  std::size_t filled = 0;
  TlsEngine::Status status = engine_.read_available(buffer.data(), kMaxRead, filled);
  // asyncio joins what one read step decrypted into one data_received.
  if (filled > 0 && app_data_ != nullptr) {
    try {
      app_data_->data_received(std::string_view(buffer.data(), filled));
    } catch (...) {
      protocol_failed("Fatal error: protocol.data_received() call failed.");
      return false;
    }
  }
  return after_read(status);
}

bool SslProtocol::read_into_buffered_protocol() {
  // get_buffer only when a record may be there to fill it.
  if (!engine_.may_have_data()) return false;
  BufferedProtocol* target = app_buffered_;
  std::span<std::byte> buffer;
  try {
    buffer = target->get_buffer(kMaxRead);
  } catch (...) {
    protocol_failed("Fatal error: protocol.get_buffer() call failed.");
    return false;
  }
  // get_buffer may have closed, paused or replaced the protocol: then
  // nothing is decrypted into the buffer of a protocol that gave it up.
  if (state_ != State::kWrapped || app_reading_paused_ || app_closing_ || target != app_buffered_) {
    return false;
  }
  if (buffer.empty()) {
    ExceptionContext context;
    context.message = "Fatal error: get_buffer() returned an empty buffer";
    context.transport = app_transport_.get();
    context.protocol = app_.get();
    loop_.call_exception_handler(context);
    fatal(make_error_code(Error::kEmptyBuffer), context.message);
    return false;
  }
  std::size_t filled = 0;
  TlsEngine::Status status =
      engine_.read_available(reinterpret_cast<char*>(buffer.data()), buffer.size(), filled);
  if (filled > 0) {
    try {
      target->buffer_updated(filled);
    } catch (...) {
      protocol_failed("Fatal error: protocol.buffer_updated() call failed.");
      return false;
    }
  }
  return after_read(status);
}

bool SslProtocol::after_read(TlsEngine::Status status) {
  switch (status) {
    case TlsEngine::Status::kOk:
      return true;  // the buffer filled up: there may be more
    case TlsEngine::Status::kWantRead:
      return false;
    case TlsEngine::Status::kClosed:
      // The peer's close_notify: asyncio calls eof_received, then answers
      // with its own close_notify and closes.
      if (state_ == State::kWrapped) {
        call_eof_received();
        start_shutdown();
      } else if (state_ == State::kShutdown) {
        do_shutdown();
      }
      return false;
    case TlsEngine::Status::kError:
      engine_failed("Fatal error on SSL protocol");
      return false;
  }
  return false;
}

void SslProtocol::call_eof_received() {
  if (app_state_ != AppState::kMade) return;
  app_state_ = AppState::kEof;
  try {
    if (app_->eof_received()) {
      log(LogLevel::kWarning, "returning true from eof_received() has no effect when using ssl");
    }
  } catch (...) {
    protocol_failed("Error calling eof_received()");
  }
}

bool SslProtocol::eof_received() {
  switch (state_) {
    case State::kHandshake:
      on_handshake_complete(std::make_exception_ptr(
          ConnectionError(std::make_error_code(std::errc::connection_reset),
                          "the peer closed the connection during the SSL handshake")));
      return false;
    case State::kWrapped:
      if (app_reading_paused_ && engine_.may_have_data()) {
        // The application has not read everything yet: the EOF waits for it,
        // and the transport below stays open until then.
        eof_deferred_ = true;
        return true;
      }
      // The peer closed without close_notify. asyncio reports it as an
      // ordinary EOF: eof_received, then connection_lost with no error.
      call_eof_received();
      state_ = State::kClosed;
      return false;
    case State::kShutdown:
      // Our close_notify went out; the peer closed without answering: done.
      shutdown_timer_.cancel();
      state_ = State::kClosed;
      return false;
    default:
      return false;
  }
}

// ---- Shutdown ---------------------------------------------------------------------------------

void SslProtocol::start_shutdown() {
  if (state_ != State::kWrapped) return;
  state_ = State::kShutdown;
  shutdown_timer_ = loop_.call_later(shutdown_timeout_, [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->on_shutdown_timeout();
  });
  do_shutdown();
}

void SslProtocol::do_shutdown() {
  TlsEngine::Status status = engine_.shutdown();
  flush();  // our close_notify
  if (status == TlsEngine::Status::kOk) {
    // Both close_notify alerts have crossed: the connection below closes
    // once our last records are out, and its connection_lost ends ours.
    shutdown_timer_.cancel();
    if (below_ != nullptr) below_->close();
    return;
  }
  if (status == TlsEngine::Status::kWantRead) {
    // The peer's close_notify may already be waiting among the unread records.
    if (engine_.may_have_data()) read_during_shutdown();
    return;
  }
  engine_failed("Fatal error during SSL shutdown");
}

void SslProtocol::read_during_shutdown() {
  // After close() the application gets no more data (as a socket transport
  // stops reading at close()): records are read only to find the peer's
  // close_notify, and their data is dropped.
  PlaintextBuffer buffer;
  for (;;) {
    std::size_t read = 0;
    TlsEngine::Status status = engine_.read_available(buffer.data(), kMaxRead, read);
    if (status == TlsEngine::Status::kOk) continue;
    if (status == TlsEngine::Status::kWantRead) {
      flush();
      return;
    }
    if (status == TlsEngine::Status::kClosed) {
      do_shutdown();
      return;
    }
    engine_failed("Fatal error during SSL shutdown");
    return;
  }
}

void SslProtocol::on_shutdown_timeout() {
  if (state_ != State::kShutdown) return;
  fatal(make_error_code(Error::kSslShutdownTimeout), "SSL shutdown timed out");
}

void SslProtocol::connection_lost(std::error_code error) {
  handshake_timer_.cancel();
  shutdown_timer_.cancel();
  state_ = State::kClosed;
  engine_.drop_input();
  engine_.output().clear();
  below_ = nullptr;
  if (on_handshake_) {
    std::error_code cause = error ? error : std::make_error_code(std::errc::connection_reset);
    tell_waiter(std::make_exception_ptr(ConnectionError(
        cause, "the connection was lost during the SSL handshake: " + cause.message())));
  }
  // As asyncio: a protocol whose handshake never finished hears nothing.
  if (handshake_done_ && (app_state_ == AppState::kMade || app_state_ == AppState::kEof)) {
    app_state_ = AppState::kLost;
    try {
      app_->connection_lost(error_ ? error_ : error);
    } catch (...) {
      report_current_exception("Exception in protocol.connection_lost()");
    }
  }
  app_state_ = AppState::kLost;
  // The protocol goes with the connection; the transport lets go of this
  // layer only when the application lets go of it.
  app_data_ = nullptr;
  app_buffered_ = nullptr;
  app_.reset();
  app_transport_.reset();
}

// ---- Errors
// ------------------------------------------------------------------------------------------

void SslProtocol::fatal(std::error_code error, const std::string& message) {
  if (state_ == State::kClosed) return;
  error_ = error;
  if (log_enabled(LogLevel::kDebug)) {
    log(LogLevel::kDebug, message + " (" + peer_text() + "): " + error.message());
  }
  flush();  // the alert OpenSSL wrote, if any, goes out before the connection is cut
  state_ = State::kClosed;
  handshake_timer_.cancel();
  shutdown_timer_.cancel();
  engine_.drop_input();
  if (below_ != nullptr) below_->abort();
}

void SslProtocol::engine_failed(const char* what) {
  if (state_ == State::kHandshake) {
    on_handshake_complete(engine_.exception());
    return;
  }
  // An OS-level error in asyncio's terms: connection_lost carries it, the
  // exception handler is not told (a peer that sends garbage is no bug here).
  fatal(engine_.error(), what);
}

void SslProtocol::protocol_failed(const char* message) {
  report_current_exception(message);
  fatal(make_error_code(Error::kCallbackRaised), message);
}

void SslProtocol::report_current_exception(const char* message) noexcept {
  ExceptionContext context;
  context.message = message;
  context.exception = std::current_exception();
  context.transport = app_transport_.get();
  context.protocol = app_.get();
  loop_.call_exception_handler(context);
}

std::string SslProtocol::peer_text() const {
  if (const auto* peer = std::any_cast<SocketAddress>(&peername_)) return peer->to_string();
  return server_side_ ? "client" : "server";
}

}  // namespace tulip::detail
