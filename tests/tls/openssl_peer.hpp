// Test support: the far end of a TLS connection as a bare OpenSSL object over
// memory BIOs, driven step by step by the test. Paired with a MemoryTransport,
// it lets a test decide exactly which bytes tulip's TLS layer receives and in
// which fragments (one byte at a time, half a record, garbage), and see every
// record the layer sends.
#pragma once

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <string>
#include <string_view>

#include "support/tls_pki.hpp"
#include "tulip/testing/memory_transport.hpp"
#include "tulip/tulip.hpp"

namespace tulip::testing {

class OpenSslPeer {
 public:
  enum class Role { kClient, kServer };

  /// A client that trusts the test CA, or a server with the test server
  /// certificate; `max_version` caps the protocol (0: none).
  explicit OpenSslPeer(Role role, int max_version = 0) {
    const TestPki& pki = TestPki::get();
    ctx_ = SSL_CTX_new(role == Role::kClient ? TLS_client_method() : TLS_server_method());
    if (role == Role::kClient) {
      SSL_CTX_load_verify_locations(ctx_, pki.ca().c_str(), nullptr);
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    } else {
      SSL_CTX_use_certificate_chain_file(ctx_, pki.cert("server").c_str());
      SSL_CTX_use_PrivateKey_file(ctx_, pki.key("server").c_str(), SSL_FILETYPE_PEM);
    }
    if (max_version != 0) SSL_CTX_set_max_proto_version(ctx_, max_version);
    ssl_ = SSL_new(ctx_);
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl_, in_, out_);  // the SSL owns both BIOs
    if (role == Role::kClient) {
      SSL_set_connect_state(ssl_);
      SSL_set_tlsext_host_name(ssl_, "localhost");
    } else {
      SSL_set_accept_state(ssl_);
    }
  }
  ~OpenSslPeer() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }
  OpenSslPeer(const OpenSslPeer&) = delete;
  OpenSslPeer& operator=(const OpenSslPeer&) = delete;

  SSL* ssl() const { return ssl_; }

  /// Records from tulip.
  void receive(std::string_view records) {
    if (!records.empty()) BIO_write(in_, records.data(), static_cast<int>(records.size()));
  }
  /// Records for tulip, written by the steps since the last call.
  std::string take_output() {
    std::string records;
    char buffer[16384];
    int n;
    while ((n = BIO_read(out_, buffer, sizeof(buffer))) > 0) records.append(buffer, n);
    return records;
  }

  /// One handshake step: true once the handshake is done. A failure is
  /// recorded in last_error, and a test failure unless `may_fail`.
  bool handshake_step(bool may_fail = false) {
    ERR_clear_error();
    int result = SSL_do_handshake(ssl_);
    if (result == 1) return true;
    int error = SSL_get_error(ssl_, result);
    if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
      const char* reason = ERR_reason_error_string(ERR_peek_last_error());
      if (last_error.empty()) last_error = reason != nullptr ? reason : "error";
      EXPECT_TRUE(may_fail) << "the peer's handshake failed: " << last_error;
    }
    return false;
  }
  /// Encrypts `data` into the output.
  void write(std::string_view data) {
    ASSERT_EQ(SSL_write(ssl_, data.data(), static_cast<int>(data.size())),
              static_cast<int>(data.size()));
  }
  /// Decrypts everything that can be; sets close_notify_seen at the peer's close_notify.
  std::string read_available() {
    std::string data;
    char buffer[16384];
    for (;;) {
      ERR_clear_error();
      int n = SSL_read(ssl_, buffer, sizeof(buffer));
      if (n > 0) {
        data.append(buffer, n);
        continue;
      }
      int error = SSL_get_error(ssl_, n);
      if (error == SSL_ERROR_ZERO_RETURN) close_notify_seen = true;
      if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_ZERO_RETURN) {
        last_error = ERR_reason_error_string(ERR_peek_last_error()) != nullptr
                         ? ERR_reason_error_string(ERR_peek_last_error())
                         : "error";
      }
      return data;
    }
  }
  /// Sends close_notify.
  void shutdown() { SSL_shutdown(ssl_); }

  bool close_notify_seen = false;
  std::string last_error;

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;
  BIO* out_ = nullptr;
};

/// Moves records between `peer` and the MemoryTransport `memory` until
/// neither side has anything to say: the peer's output is fed in fragments of
/// `fragment` bytes (0: whole), the loop runs until idle, and what tulip wrote
/// goes to the peer. `step` runs on the peer between exchanges (a handshake
/// step, say). Returns the rounds it took.
template <class Step>
int exchange(EventLoop& loop, OpenSslPeer& peer, MemoryPeer& memory, std::size_t fragment,
             Step&& step, int max_rounds = 10000) {
  int rounds = 0;
  for (; rounds < max_rounds; ++rounds) {
    step();
    std::string records = peer.take_output();
    if (!records.empty()) {
      if (fragment == 0) {
        memory.feed(records);
      } else {
        memory.feed(records, fragment);
      }
    }
    run_until_idle(loop);
    std::string written = memory.take_written();
    peer.receive(written);
    if (records.empty() && written.empty()) break;
  }
  return rounds;
}

}  // namespace tulip::testing
