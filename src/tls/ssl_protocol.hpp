// SslProtocol: the TLS layer of one connection (asyncio's sslproto.SSLProtocol). Not API.
//
// It is the protocol of the transport below (TCP, Unix, a MemoryTransport,
// another TLS transport: it uses only the public Transport interface), and it
// drives the application's protocol through an SslTransport it makes once the
// handshake has succeeded. Records from below go through the TlsEngine; what
// the engine writes goes to the transport below after every operation.
//
// State machine (asyncio's SSLProtocolState, without FLUSHING: writes are
// encrypted at once, so close() has no backlog to flush first):
//
//   unwrapped --connection_made--> handshake --engine done--> wrapped
//   handshake --failure, timeout, EOF or loss--> closed (the waiter fails;
//       the application's protocol sees nothing)
//   wrapped --close(), or the peer's close_notify--> shutdown (close_notify
//       sent; waiting for the peer's, or its EOF, then the transport below
//       closes; ssl_shutdown_timeout aborts it)
//   wrapped --peer's EOF without close_notify--> closed (eof_received, then
//       connection_lost with no error, as asyncio)
//   any --abort(), a TLS error, loss of the transport below--> closed
//
// The application's protocol sees asyncio's order: connection_made once the
// handshake is done (unless start_tls was given a protocol already
// connected), data, at most one eof_received, exactly one connection_lost —
// the last, from the transport below's connection_lost, on a fresh stack.
//
// Lifetime: the transport below owns this object (its protocol) until its
// connection_lost has returned; this object owns the application's protocol
// and its SslTransport until then too. The SslTransport owns this object in
// turn, so an application that keeps the transport keeps a safe, closed
// layer; the cycle ends in connection_lost (or never forms when the
// handshake does not finish).
//
// Thread-safety: the loop's thread only.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "flow_control.hpp"
#include "tls_engine.hpp"
#include "tls_wiring.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/handle.hpp"
#include "tulip/protocol.hpp"
#include "tulip/tls.hpp"
#include "tulip/transport.hpp"

namespace tulip::detail {

class SslTransport;

class SslProtocol final : public Protocol, public std::enable_shared_from_this<SslProtocol> {
 public:
  /// Told once when the handshake is over: the error, or the application's
  /// transport (after the protocol's connection_made has run).
  using HandshakeDone =
      std::function<void(std::exception_ptr error, std::shared_ptr<Transport> transport)>;

  /// `app` is the application's protocol; `app_connected`: its
  /// connection_made already ran (start_tls), so it is not called again.
  /// Throws what TlsEngine's constructor throws.
  SslProtocol(EventLoop& loop, std::shared_ptr<StreamProtocol> app,
              const TlsLayerSettings& settings, bool app_connected, HandshakeDone on_handshake);
  ~SslProtocol() override;

  // ---- The transport below (Protocol) ---------------------------------------------
  void connection_made(Transport& transport) override;
  void data_received(std::string_view records) override;
  bool eof_received() override;
  void connection_lost(std::error_code error) override;
  void pause_writing() override;
  void resume_writing() override;

  // ---- The application's transport (SslTransport forwards here) -------------------
  void write(std::string_view data);
  void writelines(std::span<const std::string_view> buffers);
  void close();
  void abort();
  /// True once close() or abort() was called, the peer's close_notify
  /// started the shutdown, or the connection is gone (asyncio marks its
  /// transport closed at the start of the shutdown too).
  bool is_closing() const noexcept {
    return app_closing_ || state_ == State::kShutdown || state_ == State::kClosed;
  }
  void pause_reading();
  void resume_reading();
  bool is_reading() const noexcept { return !is_closing() && !app_reading_paused_; }
  void set_write_buffer_limits(std::optional<std::size_t> high, std::optional<std::size_t> low);
  std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept;
  std::size_t get_write_buffer_size() const noexcept;
  std::any get_extra_info(std::string_view name) const;
  void set_app_protocol(std::shared_ptr<StreamProtocol> protocol);
  StreamProtocol* app_protocol() const noexcept { return app_.get(); }
  std::shared_ptr<StreamProtocol> app_protocol_shared() const noexcept { return app_; }
  /// True between the application's pause_writing() and resume_writing():
  /// they are the transport below's.
  bool app_writing_paused() const noexcept { return handshake_done_ && below_writing_paused_; }
  EventLoop& loop() const noexcept { return loop_; }

  /// The caller gave up waiting for the handshake (cancelled its Future):
  /// abort the connection below, tell nobody.
  void cancel_handshake();

 private:
  enum class State { kUnwrapped, kHandshake, kWrapped, kShutdown, kClosed };
  enum class AppState { kInit, kMade, kEof, kLost };

  // Handshake.
  void do_handshake();
  void on_handshake_complete(std::exception_ptr error);
  void on_handshake_timeout();
  // Reading.
  void process_input();
  void do_read();
  bool read_into_protocol();
  bool read_into_buffered_protocol();
  bool after_read(TlsEngine::Status status);
  void call_eof_received();
  // Shutdown.
  void start_shutdown();
  void do_shutdown();
  void read_during_shutdown();
  void on_shutdown_timeout();
  // Writing: hands the engine's output to the transport below.
  void flush();
  void refuse_write(std::size_t bytes);
  // The connection cannot go on: remember why, send the alert OpenSSL
  // wrote, abort the transport below.
  void fatal(std::error_code error, const std::string& message);
  void engine_failed(const char* what);
  void protocol_failed(const char* message);
  void report_current_exception(const char* message) noexcept;
  void tell_waiter(std::exception_ptr error);
  void schedule_resume();
  std::string peer_text() const;

  EventLoop& loop_;
  TlsEngine engine_;
  std::shared_ptr<StreamProtocol> app_;
  Protocol* app_data_ = nullptr;                 // app_ as a Protocol, if it is one
  BufferedProtocol* app_buffered_ = nullptr;     // or as a BufferedProtocol
  std::shared_ptr<SslTransport> app_transport_;  // made when the handshake succeeds
  Transport* below_ = nullptr;                   // from connection_made to connection_lost
  HandshakeDone on_handshake_;
  TimerHandle handshake_timer_;
  TimerHandle shutdown_timer_;
  double handshake_timeout_;
  double shutdown_timeout_;
  bool server_side_;
  State state_ = State::kUnwrapped;
  AppState app_state_;
  std::error_code error_;  // why the connection ended, if not the transport below's
  std::any peername_;      // kept for get_extra_info after the loss
  std::any sockname_;
  WriteFlowControl limits_;      // the marks, kept for after the loss
  bool handshake_done_ = false;  // the application's protocol is connected to TLS
  bool app_closing_ = false;     // close() or abort() from the application
  bool app_reading_paused_ = false;
  bool below_writing_paused_ = false;
  bool eof_deferred_ = false;  // EOF came while reading was paused
  bool resume_scheduled_ = false;
  std::size_t dropped_writes_ = 0;
};

}  // namespace tulip::detail
