#include "tls_engine.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "ssl_context_state.hpp"
#include "ssl_errors.hpp"
#include "tulip/errors.hpp"

namespace tulip::detail {
namespace {

// The ex_data slot of an SSL that points to its engine.
int engine_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// ---- The BIO between OpenSSL and the engine's buffers ----------------------------------
//
// OpenSSL reads records with BIO_read and writes them with BIO_write. A memory
// BIO would make every record cross one more buffer in each direction; this
// BIO reads straight from the bytes the transport delivered and writes
// straight into the engine's output, which the transport below takes as it is.

int bio_write(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  static_cast<TlsEngine*>(BIO_get_data(bio))->append_output(data, size);
  return size;
}

int bio_read(BIO* bio, char* into, int size) {
  BIO_clear_retry_flags(bio);
  int copied = static_cast<TlsEngine*>(BIO_get_data(bio))->copy_input(into, size);
  if (copied > 0) return copied;
  // Nothing yet: OpenSSL reports SSL_ERROR_WANT_READ, as with a non-blocking socket.
  BIO_set_retry_read(bio);
  return -1;
}

long bio_ctrl(BIO*, int command, long, void*) {
  // A flush is a no-op: the caller sends output() after every operation.
  return command == BIO_CTRL_FLUSH ? 1 : 0;
}

int bio_create(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

BIO_METHOD* engine_bio_method() {
  // Made once per process (a function-local static is initialised thread-safely)
  // and never freed: every engine of every loop shares it.
  static BIO_METHOD* const method = [] {
    BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tulip-tls");
    if (made != nullptr) {
      BIO_meth_set_write(made, bio_write);
      BIO_meth_set_read(made, bio_read);
      BIO_meth_set_ctrl(made, bio_ctrl);
      BIO_meth_set_create(made, bio_create);
    }
    return made;
  }();
  return method;
}

bool is_ip_address(const std::string& host) {
  unsigned char address[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), address) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), address) == 1;
}

}  // namespace

int on_new_session(SSL* ssl, SSL_SESSION* session) {
  TlsEngine* engine = TlsEngine::from(ssl);
  if (engine == nullptr) return 0;  // OpenSSL keeps its reference
  engine->remember_session(session);
  return 1;  // the engine took the reference
}

int switch_context_for_sni(SSL* ssl, SslContextState& state, int* alert) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  TlsEngine* engine = TlsEngine::from(ssl);
  if (name == nullptr || !state.sni_callback || engine == nullptr) return SSL_TLSEXT_ERR_OK;
  try {
    std::optional<SslContext> chosen = state.sni_callback(name);
    if (chosen && chosen->native_handle() != state.ctx) {
      if (SSL_set_SSL_CTX(ssl, chosen->native_handle()) == nullptr) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
      }
      engine->keep_context(chosen->state());
    }
  } catch (...) {
    // The callback failed this handshake: the client sees an alert, the
    // server goes on.
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

TlsEngine::TlsEngine(const SslContext& context, bool server_side,
                     const std::string& server_hostname, const std::optional<SslSession>& session)
    : context_(context) {
  const SslContextState& state = *context.state();
  if (server_side != (state.side == SslContext::Side::kServer)) {
    throw std::invalid_argument(
        server_side ? "a TLS server needs a server-side SslContext (Side::kServer)"
                    : "a TLS client needs a client-side SslContext (Side::kClient)");
  }
  if (!server_side && state.check_hostname && server_hostname.empty()) {
    throw std::invalid_argument("check_hostname requires server_hostname");
  }
  BIO_METHOD* method = engine_bio_method();
  ERR_clear_error();
  ssl_ = method != nullptr ? SSL_new(state.ctx) : nullptr;
  if (ssl_ == nullptr) throw_openssl_error("cannot create a TLS connection");
  BIO* bio = BIO_new(method);
  if (bio == nullptr) {
    SSL_free(ssl_);
    throw_openssl_error("cannot create a TLS connection's BIO");
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // the SSL owns the BIO (one reference for both directions)
  SSL_set_ex_data(ssl_, engine_index(), this);
  if (server_side) {
    SSL_set_accept_state(ssl_);
    return;
  }
  SSL_set_connect_state(ssl_);
  if (!server_hostname.empty()) {
    if (is_ip_address(server_hostname)) {
      // An address is never sent with SNI (RFC 6066); it is checked against
      // the certificate's IP entries.
      if (state.check_hostname &&
          X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), server_hostname.c_str()) != 1) {
        SSL_free(ssl_);
        throw_openssl_error("cannot check the address '" + server_hostname + "'");
      }
    } else {
      bool set = SSL_set_tlsext_host_name(ssl_, server_hostname.c_str()) == 1;
      if (set && state.check_hostname) {
        // As Python: a wildcard matches one whole label only.
        SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        set = SSL_set1_host(ssl_, server_hostname.c_str()) == 1;
      }
      if (!set) {
        SSL_free(ssl_);
        throw_openssl_error("invalid server_hostname '" + server_hostname + "'");
      }
    }
  }
  if (session && session->valid()) SSL_set_session(ssl_, session->native_handle());
}

TlsEngine::~TlsEngine() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

TlsEngine* TlsEngine::from(const SSL* ssl) noexcept {
  return static_cast<TlsEngine*>(SSL_get_ex_data(ssl, engine_index()));
}

// ---- Buffers ---------------------------------------------------------------------------

int TlsEngine::copy_input(char* into, int size) noexcept {
  auto wanted = static_cast<std::size_t>(size);
  std::size_t copied = 0;
  if (kept_head_ < kept_.size()) {
    copied = std::min(wanted, kept_.size() - kept_head_);
    std::memcpy(into, kept_.data() + kept_head_, copied);
    kept_head_ += copied;
    if (kept_head_ == kept_.size()) {
      kept_.clear();
      kept_head_ = 0;
    }
  }
  if (copied < wanted && !input_.empty()) {
    std::size_t more = std::min(wanted - copied, input_.size());
    std::memcpy(into + copied, input_.data(), more);
    input_.remove_prefix(more);
    copied += more;
  }
  return static_cast<int>(copied);
}

void TlsEngine::append_output(const char* data, int size) {
  output_.append(data, static_cast<std::size_t>(size));
}

void TlsEngine::keep_unread() {
  if (input_.empty()) return;
  if (kept_head_ > 0) {
    kept_.erase(0, kept_head_);
    kept_head_ = 0;
  }
  kept_.append(input_);
  input_ = {};
}

bool TlsEngine::may_have_data() const noexcept {
  return !input_.empty() || kept_head_ < kept_.size() || SSL_has_pending(ssl_) == 1;
}

void TlsEngine::drop_input() noexcept {
  input_ = {};
  kept_.clear();
  kept_.shrink_to_fit();
  kept_head_ = 0;
}

void TlsEngine::remember_session(SSL_SESSION* session) noexcept {
  // SslSession takes over the reference OpenSSL handed to the callback; the
  // newest session is the one worth resuming.
  try {
    latest_session_ = SslSession(session);
  } catch (...) {
    SSL_SESSION_free(session);
  }
}

// ---- Operations ---------------------------------------------------------------------------

TlsEngine::Status TlsEngine::handshake() {
  ERR_clear_error();
  int result = SSL_do_handshake(ssl_);
  return result == 1 ? Status::kOk : fail(result);
}

TlsEngine::Status TlsEngine::read(char* into, std::size_t size, std::size_t& read) {
  ERR_clear_error();
  read = 0;
  if (SSL_read_ex(ssl_, into, size, &read) == 1) return Status::kOk;
  return fail(0);
}

TlsEngine::Status TlsEngine::read_available(char* into, std::size_t size, std::size_t& total) {
  total = 0;
  while (total < size) {
    if (!may_have_data()) return Status::kWantRead;
    std::size_t got = 0;
    Status status = read(into + total, size - total, got);
    if (status != Status::kOk) return status;
    total += got;
  }
  return Status::kOk;
}

TlsEngine::Status TlsEngine::write(const char* data, std::size_t size) {
  while (size > 0) {
    ERR_clear_error();
    std::size_t written = 0;
    if (SSL_write_ex(ssl_, data, size, &written) != 1) return fail(0);
    data += written;
    size -= written;
  }
  return Status::kOk;
}

TlsEngine::Status TlsEngine::shutdown() {
  ERR_clear_error();
  int result = SSL_shutdown(ssl_);
  if (result == 1) return Status::kOk;
  if (result == 0) return Status::kWantRead;  // ours is sent; the peer's has not come
  return fail(result);
}

TlsEngine::Status TlsEngine::fail(int result) {
  int code = SSL_get_error(ssl_, result);
  switch (code) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:  // never: the output takes everything
      return Status::kWantRead;
    case SSL_ERROR_ZERO_RETURN:
      close_notify_received_ = true;
      return Status::kClosed;
    default:
      break;
  }
  long verify_result = SSL_get_verify_result(ssl_);
  std::error_code error = take_openssl_error();
  bool verify_failed =
      error.value() == static_cast<int>(ERR_PACK(ERR_LIB_SSL, 0, SSL_R_CERTIFICATE_VERIFY_FAILED));
  if (verify_failed && verify_result != X509_V_OK) {
    certificate_failed_ = true;
    error_ = certificate_error(verify_result);
  } else if (error) {
    error_ = error;
  } else {
    // SSL_ERROR_SYSCALL with nothing queued: an EOF where a record was due.
    // The BIO never reports one, so this is OpenSSL's own inconsistency.
    error_ = std::make_error_code(std::errc::protocol_error);
  }
  error_message_ = error_.message();
  return Status::kError;
}

std::exception_ptr TlsEngine::exception() const {
  if (certificate_failed_) {
    return std::make_exception_ptr(SslCertVerificationError(error_, error_message_));
  }
  return std::make_exception_ptr(SslError(error_, error_message_));
}

}  // namespace tulip::detail
