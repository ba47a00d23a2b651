// TLS errors: OpenSSL's error queue and verification results as std::error_code
// values of ssl_category() and as SslError exceptions. Not API.
//
// Thread-safety: OpenSSL's error queue is per thread; these read the calling
// thread's.
#pragma once

#include <string>
#include <system_error>

namespace tulip::detail {

/// The first value of ssl_category() that is an OpenSSL error code; smaller
/// values are X.509 verification results.
inline constexpr int kFirstOpenSslErrorValue = 1 << 23;

/// The most specific error on this thread's OpenSSL queue (its last entry) as
/// a code of ssl_category(), and empties the queue. An empty queue gives an
/// empty code.
std::error_code take_openssl_error() noexcept;

/// The error code of a failed certificate verification (`verify_result` is
/// SSL_get_verify_result's X509_V_ERR_* value).
std::error_code certificate_error(long verify_result) noexcept;

/// Throws SslError "<what>: <OpenSSL's reason>" from this thread's OpenSSL
/// queue (emptied); "<what>: unknown error" if the queue is empty.
[[noreturn]] void throw_openssl_error(const std::string& what);

}  // namespace tulip::detail
