// TLS on create_connection / create_server (tls_wiring.hpp) and EventLoop::start_tls.
#include "tls_wiring.hpp"

#include <cstdio>
#include <stdexcept>
#include <utility>

#include "ssl_context_state.hpp"
#include "ssl_protocol.hpp"
#include "tulip/event_loop.hpp"

namespace tulip::detail {
namespace {

void check_timeout(const char* name, double seconds) {
  if (!(seconds > 0)) {
    char message[128];
    std::snprintf(message, sizeof(message), "%s should be a positive number, got %g", name,
                  seconds);
    throw std::invalid_argument(message);
  }
}

}  // namespace

void check_tls_settings(const TlsLayerSettings& settings) {
  check_timeout("ssl_handshake_timeout", settings.handshake_timeout);
  check_timeout("ssl_shutdown_timeout", settings.shutdown_timeout);
  const SslContextState& state = *settings.context.state();
  if (settings.server_side && state.side != SslContext::Side::kServer) {
    throw std::invalid_argument("a TLS server needs a server-side SslContext (Side::kServer)");
  }
  if (!settings.server_side && state.side != SslContext::Side::kClient) {
    throw std::invalid_argument("a TLS client needs a client-side SslContext (Side::kClient)");
  }
  if (!settings.server_side && state.check_hostname && settings.server_hostname.empty()) {
    throw std::invalid_argument("check_hostname requires server_hostname");
  }
}

// A client connection from the connect attempt to the end of its handshake.
// The connector's completion reports failures of the connection itself; the
// layer reports the handshake's outcome; the caller hears exactly once.
class TlsClientAttempt final : public CancellableOperation {
 public:
  explicit TlsClientAttempt(ConnectCompletion caller) : caller_(std::move(caller)) {}

  void finish(std::exception_ptr error, std::shared_ptr<Transport> transport,
              std::shared_ptr<StreamProtocol> protocol) {
    if (finished_) return;
    finished_ = true;
    auto done = std::move(caller_.done);
    if (done) done(std::move(error), std::move(transport), std::move(protocol));
  }
  bool cancelled() { return caller_.cancelled && caller_.cancelled(); }
  void cancel() noexcept override {
    finished_ = true;
    if (auto connect = connect_.lock()) connect->cancel();
    if (auto layer = layer_.lock()) layer->cancel_handshake();
  }

  std::weak_ptr<CancellableOperation> connect_;
  std::weak_ptr<SslProtocol> layer_;

 private:
  ConnectCompletion caller_;
  bool finished_ = false;
};

std::shared_ptr<CancellableOperation> wrap_tls_client(EventLoop& loop, ProtocolFactory& factory,
                                                      ConnectCompletion& completion,
                                                      TlsLayerSettings settings) {
  check_tls_settings(settings);
  auto attempt = std::make_shared<TlsClientAttempt>(std::move(completion));
  factory = [&loop, make_app = std::move(factory), settings = std::move(settings),
             attempt]() -> std::shared_ptr<StreamProtocol> {
    std::shared_ptr<StreamProtocol> app = make_app();
    // The layer keeps the attempt until the handshake is over; the attempt
    // only watches the layer (no cycle).
    auto layer = std::make_shared<SslProtocol>(
        loop, app, settings, false,
        [attempt, app](std::exception_ptr error, std::shared_ptr<Transport> transport) {
          attempt->finish(error, std::move(transport), error ? nullptr : app);
        });
    attempt->layer_ = layer;
    return layer;
  };
  completion = ConnectCompletion{};
  completion.done = [attempt](std::exception_ptr error, std::shared_ptr<Transport>,
                              std::shared_ptr<StreamProtocol>) {
    // Success of the connection below is not the end: the layer tells once
    // the handshake is over.
    if (error) attempt->finish(std::move(error), nullptr, nullptr);
  };
  completion.cancelled = [attempt] { return attempt->cancelled(); };
  return attempt;
}

void set_connect_operation(CancellableOperation& operation,
                           std::weak_ptr<CancellableOperation> connect) {
  static_cast<TlsClientAttempt&>(operation).connect_ = std::move(connect);
}

ProtocolFactory wrap_tls_server(EventLoop& loop, ProtocolFactory factory,
                                TlsLayerSettings settings) {
  check_tls_settings(settings);
  return [&loop, make_app = std::move(factory),
          settings = std::move(settings)]() -> std::shared_ptr<StreamProtocol> {
    // The application's protocol is made at accept time, as asyncio makes
    // it; it hears connection_made only after the handshake.
    return std::make_shared<SslProtocol>(loop, make_app(), settings, false, nullptr);
  };
}

}  // namespace tulip::detail

namespace tulip {

Future<std::shared_ptr<Transport>> EventLoop::start_tls(Transport& transport,
                                                        std::shared_ptr<StreamProtocol> protocol,
                                                        SslContext context,
                                                        StartTlsOptions options) {
  auto result = create_future<std::shared_ptr<Transport>>();
  try {
    if (!protocol) throw std::invalid_argument("start_tls() needs the protocol to connect");
    if (transport.is_closing()) throw RuntimeError("start_tls(): the transport is closing");
    detail::TlsLayerSettings settings(std::move(context));
    settings.server_side = options.server_side;
    settings.server_hostname = options.server_hostname.value_or("");
    settings.handshake_timeout = options.ssl_handshake_timeout;
    settings.shutdown_timeout = options.ssl_shutdown_timeout;
    settings.session = std::move(options.ssl_session);
    detail::check_tls_settings(settings);
    auto layer = std::make_shared<detail::SslProtocol>(
        *this, std::move(protocol), settings, /*app_connected=*/true,
        [result](std::exception_ptr error, std::shared_ptr<Transport> upgraded) mutable {
          if (result.done()) {
            // The caller gave up: do not leave the connection open (asyncio closes it).
            if (upgraded) upgraded->close();
            return;
          }
          if (error) {
            result.set_exception(error);
          } else {
            result.set_result(std::move(upgraded));
          }
        });
    // asyncio's order: stop reading, swap the protocol, and start the
    // handshake from the loop; records that arrive meanwhile wait below.
    std::shared_ptr<Transport> below = transport.shared();
    below->pause_reading();
    below->set_protocol(layer);
    call_soon([below, layer] {
      if (below->is_closing()) return;  // its connection_lost fails the handshake
      layer->connection_made(*below);
      below->resume_reading();
    });
    result.add_done_callback([weak = std::weak_ptr<detail::SslProtocol>(layer)](auto& done) {
      if (!done.cancelled()) return;
      if (auto alive = weak.lock()) alive->cancel_handshake();
    });
  } catch (...) {
    result.set_exception(std::current_exception());
  }
  return result;
}

}  // namespace tulip
