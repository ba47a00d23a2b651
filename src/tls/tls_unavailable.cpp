// TLS in a build without OpenSSL (TULIP_WITH_TLS=OFF, TULIP_HAS_TLS 0).
//
// The API is the same as with TLS, so that code using it compiles and links
// either way and says clearly at run time what is missing: making an
// SslContext throws, so no connection ever asks for TLS, and start_tls fails
// its Future. The methods of a context cannot be reached (none can be made).
#include <stdexcept>
#include <string>

#include "tls/tls_wiring.hpp"
#include "tulip/errors.hpp"
#include "tulip/event_loop.hpp"
#include "tulip/ssl_context.hpp"

namespace tulip {
namespace {

constexpr const char* kNoTls =
    "tulip was built without TLS (OpenSSL): rebuild with libssl-dev installed "
    "(TULIP_WITH_TLS=ON)";

[[noreturn]] void unavailable() { throw RuntimeError(kNoTls); }

class SslCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "ssl"; }
  std::string message(int value) const override {
    return "SSL error " + std::to_string(value) + " (tulip was built without TLS)";
  }
};

}  // namespace

const std::error_category& ssl_category() noexcept {
  static const SslCategory category;
  return category;
}

SslSession::SslSession(SSL_SESSION* session) {
  if (session != nullptr) unavailable();
}

SslContext::SslContext(Side) { unavailable(); }
SslContext SslContext::create_default_context(Side side) { return SslContext(side); }
SslContext::Side SslContext::side() const noexcept { return Side::kClient; }
void SslContext::load_cert_chain(const std::string&, const std::string&, const std::string&) {
  unavailable();
}
void SslContext::load_verify_locations(const std::string&, const std::string&, std::string_view) {
  unavailable();
}
void SslContext::set_default_verify_paths() { unavailable(); }
void SslContext::set_alpn_protocols(const std::vector<std::string>&) { unavailable(); }
void SslContext::set_ciphers(const std::string&) { unavailable(); }
void SslContext::set_ciphersuites(const std::string&) { unavailable(); }
void SslContext::set_minimum_version(TlsVersion) { unavailable(); }
TlsVersion SslContext::minimum_version() const { unavailable(); }
void SslContext::set_maximum_version(TlsVersion) { unavailable(); }
TlsVersion SslContext::maximum_version() const { unavailable(); }
void SslContext::set_check_hostname(bool) { unavailable(); }
bool SslContext::check_hostname() const noexcept { return false; }
void SslContext::set_verify_mode(VerifyMode) { unavailable(); }
VerifyMode SslContext::verify_mode() const noexcept { return VerifyMode::kNone; }
void SslContext::set_sni_callback(SniCallback) { unavailable(); }
SSL_CTX* SslContext::native_handle() const noexcept { return nullptr; }

Future<std::shared_ptr<Transport>> EventLoop::start_tls(Transport&, std::shared_ptr<StreamProtocol>,
                                                        SslContext, StartTlsOptions) {
  auto result = create_future<std::shared_ptr<Transport>>();
  result.set_exception(std::make_exception_ptr(RuntimeError(kNoTls)));
  return result;
}

namespace detail {

void check_tls_settings(const TlsLayerSettings&) { unavailable(); }

std::shared_ptr<CancellableOperation> wrap_tls_client(EventLoop&, ProtocolFactory&,
                                                      ConnectCompletion&, TlsLayerSettings) {
  unavailable();
}

void set_connect_operation(CancellableOperation&, std::weak_ptr<CancellableOperation>) {}

ProtocolFactory wrap_tls_server(EventLoop&, ProtocolFactory, TlsLayerSettings) { unavailable(); }

}  // namespace detail
}  // namespace tulip
