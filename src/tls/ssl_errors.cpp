// ssl_category() and the conversions of OpenSSL's errors (ssl_errors.hpp).
#include "ssl_errors.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tulip/errors.hpp"

namespace tulip {
namespace {

class SslCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "ssl"; }
  std::string message(int value) const override {
    if (value > 0 && value < detail::kFirstOpenSslErrorValue) {
      return std::string("certificate verify failed: ") + X509_verify_cert_error_string(value);
    }
    // The strings are loaded by OpenSSL's initialisation, which a message may
    // be asked for before anything else has run.
    OPENSSL_init_ssl(0, nullptr);
    const char* reason = ERR_reason_error_string(static_cast<unsigned long>(value));
    return reason != nullptr ? reason : "unknown SSL error " + std::to_string(value);
  }
};

}  // namespace

const std::error_category& ssl_category() noexcept {
  static const SslCategory category;
  return category;
}

namespace detail {

std::error_code take_openssl_error() noexcept {
  unsigned long error = ERR_peek_last_error();
  ERR_clear_error();
  if (error == 0) return {};
  // The function part is dropped (OpenSSL 3 no longer sets it): the library
  // and the reason say what happened, and the value fits an int.
  unsigned long packed = ERR_PACK(ERR_GET_LIB(error), 0, ERR_GET_REASON(error));
  if (packed < static_cast<unsigned long>(kFirstOpenSslErrorValue)) {
    packed = ERR_PACK(ERR_LIB_SSL, 0, SSL_R_UNKNOWN_PROTOCOL);  // never a verification value
  }
  return {static_cast<int>(packed), ssl_category()};
}

std::error_code certificate_error(long verify_result) noexcept {
  return {static_cast<int>(verify_result), ssl_category()};
}

void throw_openssl_error(const std::string& what) {
  std::error_code error = take_openssl_error();
  if (!error) throw SslError(error, what + ": unknown error");
  throw SslError(error, what + ": " + error.message());
}

}  // namespace detail
}  // namespace tulip
