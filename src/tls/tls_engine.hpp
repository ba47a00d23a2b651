// TlsEngine: one connection's TLS state machine in OpenSSL, fed and drained in
// memory. Not API.
//
// The engine knows nothing of sockets or transports (asyncio's SSLObject over
// two MemoryBIOs). Records from the peer come in as borrowed bytes
// (set_input); OpenSSL reads them through a BIO of our own that copies
// straight from those bytes, so nothing is copied into an intermediate BIO
// first. What OpenSSL writes (records for the peer) lands in output(), a
// buffer the caller hands on to the transport below. Bytes it has not read
// when the caller's buffer goes away are kept (keep_unread).
//
// Each operation returns a Status; after kError, error() and error_message()
// say why (an SslCertVerificationError for a failed certificate check, an
// SslError otherwise: exception()).
//
// Thread-safety: one loop's thread.
#pragma once

#include <openssl/ssl.h>

#include <any>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "tulip/ssl_context.hpp"

namespace tulip::detail {

struct SslContextState;

class TlsEngine {
 public:
  enum class Status {
    kOk,        // done (read/write: some bytes moved)
    kWantRead,  // needs more records from the peer
    kClosed,    // read: the peer sent close_notify
    kError,     // see error(); the connection cannot go on
  };

  /// A client (`server_side` false) or server engine on `context`. A client
  /// sends `server_hostname` with SNI (unless it is an IP address or empty)
  /// and checks the certificate against it if the context checks hostnames;
  /// `session` is offered for resumption. Throws std::invalid_argument for a
  /// context of the wrong side or a missing hostname the context needs,
  /// SslError if OpenSSL fails.
  TlsEngine(const SslContext& context, bool server_side, const std::string& server_hostname,
            const std::optional<SslSession>& session);
  ~TlsEngine();
  TlsEngine(const TlsEngine&) = delete;
  TlsEngine& operator=(const TlsEngine&) = delete;

  // ---- Records in ----------------------------------------------------------------
  /// Offers `records` (borrowed until keep_unread()) to OpenSSL's next reads,
  /// after whatever was kept from earlier.
  void set_input(std::string_view records) noexcept { input_ = records; }
  /// Copies what OpenSSL has not read of the borrowed bytes into the engine,
  /// before the caller's buffer is reused.
  void keep_unread();
  /// True if OpenSSL may have something to give: unread records, or
  /// decrypted bytes it holds.
  bool may_have_data() const noexcept;
  /// Forgets every unread record (the connection is going away).
  void drop_input() noexcept;

  // ---- Records out ---------------------------------------------------------------
  /// The records OpenSSL wrote for the peer, to be sent in order; the caller
  /// empties it (or swaps in an empty string).
  std::string& output() noexcept { return output_; }
  /// Bytes in output().
  std::size_t output_size() const noexcept { return output_.size(); }

  // ---- Operations ------------------------------------------------------------------
  Status handshake();
  /// Decrypts up to `size` bytes into `into`; kOk with `read` > 0, or another status.
  Status read(char* into, std::size_t size, std::size_t& read);
  /// Decrypts record after record into `into` while records are there:
  /// kOk once `size` bytes are in (there may be more), kWantRead when the
  /// records ran out, kClosed / kError as read(). `total` is what was
  /// decrypted either way. OpenSSL is asked to read only when there is
  /// something to read, so that an idle connection holds no read buffer of
  /// OpenSSL's (SSL_MODE_RELEASE_BUFFERS) and no read is wasted on nothing.
  Status read_available(char* into, std::size_t size, std::size_t& total);
  /// Encrypts all of `data` into output() (kOk), or fails.
  Status write(const char* data, std::size_t size);
  /// Sends close_notify (once); kOk once the peer's has come too, kWantRead
  /// while it has not.
  Status shutdown();

  /// Why the last kError happened (category ssl_category(), or a system code).
  std::error_code error() const noexcept { return error_; }
  /// The same in words, e.g. "certificate verify failed: self-signed certificate".
  const std::string& error_message() const noexcept { return error_message_; }
  /// The last error as an exception: SslCertVerificationError or SslError.
  std::exception_ptr exception() const;

  /// True once the peer's close_notify was read.
  bool close_notify_received() const noexcept { return close_notify_received_; }
  /// get_extra_info's TLS names (tls.hpp); an empty std::any for others.
  std::any extra_info(std::string_view name) const;
  /// The negotiated "protocol, cipher" for debug logs, e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384".
  std::string describe_session() const;

  SSL* native_handle() const noexcept { return ssl_; }

  /// @cond INTERNAL
  // OpenSSL's callbacks (BIO, new session, SNI) reach the engine through these.
  int copy_input(char* into, int size) noexcept;
  void append_output(const char* data, int size);
  void remember_session(SSL_SESSION* session) noexcept;
  void keep_context(std::shared_ptr<SslContextState> state) {
    switched_context_ = std::move(state);
  }
  static TlsEngine* from(const SSL* ssl) noexcept;
  /// @endcond

 private:
  Status fail(int result);

  SSL* ssl_ = nullptr;
  SslContext context_;  // keeps the settings the callbacks read alive
  std::shared_ptr<SslContextState> switched_context_;  // the SNI callback's choice
  std::string_view input_;                             // borrowed from the caller
  std::string kept_;  // records kept from an earlier input, from kept_head_ on
  std::size_t kept_head_ = 0;
  std::string output_;
  std::error_code error_;
  std::string error_message_;
  bool certificate_failed_ = false;
  bool close_notify_received_ = false;
  SslSession latest_session_;  // a client's newest resumable session
};

}  // namespace tulip::detail
