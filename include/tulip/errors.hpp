// The exceptions tulip throws and the error codes it reports.
//
// Names follow asyncio: InvalidStateError for a Future used out of order,
// CancelledError for the result of a cancelled Future, RuntimeError for a loop
// used in the wrong state (running twice, closed), TimeoutError for an operation
// whose deadline passed. OS failures of an operation (connect, bind, resolve)
// are ConnectionError / OSError: std::system_error with a message that names the
// address and the cause. Errors reported through callbacks (connection_lost)
// are plain std::error_code values; an empty code means a clean close.
//
// Thread-safety: these are plain values.
#pragma once

#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "tulip/export.hpp"

namespace tulip {

/// A Future's result set twice, or read before it is done (asyncio.InvalidStateError).
class TULIP_API InvalidStateError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// The result of a cancelled Future, and what a cancelled task's co_await
/// throws (asyncio.CancelledError).
///
/// Deliberately NOT derived from std::exception. Cancellation is not an error:
/// it is a request to unwind, and a coroutine that swallows it keeps a
/// cancelled task running. Python 3.8 moved CancelledError from Exception to
/// BaseException for exactly this reason (`except Exception:` used to swallow
/// it); in C++ the everyday catch-all for errors is
/// `catch (const std::exception&)`, which has the same hazard. So that catch
/// lets cancellation through, as Python's `except Exception:` does, and only
/// `catch (...)` or `catch (const CancelledError&)` stops it (Python's bare
/// `except:` / `except CancelledError:`). what() works as on std::exception.
class TULIP_API CancelledError {
 public:
  /// `message` is what() (asyncio's cancel message).
  explicit CancelledError(std::string message = "cancelled") : message_(std::move(message)) {}
  /// The cancel message, as std::exception::what() would give it.
  const char* what() const noexcept { return message_.c_str(); }

 private:
  std::string message_;
};

/// The loop was used in a state that does not allow it (Python's RuntimeError).
class TULIP_API RuntimeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The kernel's zero-copy sendfile cannot be used for this file or transport,
/// and the caller disabled the buffered fallback (asyncio.SendfileNotAvailableError,
/// a RuntimeError there too).
class TULIP_API SendfileNotAvailableError : public RuntimeError {
 public:
  using RuntimeError::RuntimeError;
};

/// A deadline passed before the operation finished (Python's TimeoutError).
class TULIP_API TimeoutError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// An operating-system failure of an operation. code() is the OS error; what()
/// is exactly the message given, which names the address and the cause.
class TULIP_API OSError : public std::system_error {
 public:
  /// `code` is the OS error; `message` is what(), naming the address and the cause.
  OSError(std::error_code code, std::string message)
      : std::system_error(code), message_(std::move(message)) {}
  /// The message given to the constructor.
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

/// A connection could not be made (refused, unreachable, reset, unresolvable name).
class TULIP_API ConnectionError : public OSError {
 public:
  using OSError::OSError;
};

/// A TLS failure (Python's ssl.SSLError, also an OSError): a handshake that
/// failed, a record that did not decrypt, a certificate or key that could not
/// be loaded. code() is in ssl_category() and what() is OpenSSL's reason in
/// words ("wrong version number", "tlsv1 alert unknown ca").
class TULIP_API SslError : public OSError {
 public:
  using OSError::OSError;
};

/// The peer's certificate failed verification (Python's
/// ssl.SSLCertVerificationError). code() is the X.509 verification result in
/// ssl_category(); what() reads "certificate verify failed: self-signed
/// certificate" (or "... hostname mismatch", "... certificate has expired").
class TULIP_API SslCertVerificationError : public SslError {
 public:
  using SslError::SslError;
};

/// tulip's own error conditions, reported as std::error_code in category "tulip".
enum class Error {
  kCallbackRaised = 1,   // a protocol callback threw; the connection was closed
  kEmptyBuffer,          // BufferedProtocol::get_buffer returned an empty buffer
  kTimedOut,             // a connect or other deadline passed
  kNameResolution,       // getaddrinfo failed (see the message for the resolver's text)
  kSslHandshakeTimeout,  // a TLS handshake took longer than ssl_handshake_timeout
  kSslShutdownTimeout,   // the peer did not answer close_notify within ssl_shutdown_timeout
};

/// The category of tulip's own Error values ("tulip").
TULIP_API const std::error_category& error_category() noexcept;

/// The category of TLS errors ("ssl"), as SslError::code() and a TLS
/// transport's connection_lost carry them. A value below 2^23 is an X.509
/// verification result (OpenSSL's X509_V_ERR_*; message "certificate verify
/// failed: ..."); a larger one is an OpenSSL error code with its function
/// part cleared (ERR_PACK(library, 0, reason); message OpenSSL's reason text).
TULIP_API const std::error_category& ssl_category() noexcept;

inline std::error_code make_error_code(Error e) noexcept {
  return {static_cast<int>(e), error_category()};
}

}  // namespace tulip

/// @cond INTERNAL
/// Lets tulip::Error convert to std::error_code.
template <>
struct std::is_error_code_enum<tulip::Error> : std::true_type {};
/// @endcond
