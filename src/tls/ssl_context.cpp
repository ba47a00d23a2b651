// SslContext and SslSession on OpenSSL (ssl_context.hpp).
#include "tulip/ssl_context.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include "ssl_context_state.hpp"
#include "ssl_errors.hpp"
#include "tulip/errors.hpp"

namespace tulip {
namespace detail {
namespace {

// The ex_data slot of an SSL_CTX that points to its SslContextState.
int context_state_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// Whether the PEM file at `path` has no block whose label ends in `label`
// ("CERTIFICATE", "PRIVATE KEY"): asked after OpenSSL failed to load it, whose
// reason for a missing block is only "PEM lib" or "unsupported".
bool pem_block_missing(const std::string& path, const std::string& label) {
  std::FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) return false;
  const std::string marker = label + "-----";
  std::string line;
  bool found = false;
  char chunk[512];
  while (!found && std::fgets(chunk, sizeof chunk, file) != nullptr) {
    line = chunk;
    found = line.rfind("-----BEGIN ", 0) == 0 && line.find(marker) != std::string::npos;
  }
  std::fclose(file);
  return !found;
}

int openssl_version(TlsVersion version) {
  switch (version) {
    case TlsVersion::kTlsV1:
      return TLS1_VERSION;
    case TlsVersion::kTlsV1_1:
      return TLS1_1_VERSION;
    case TlsVersion::kTlsV1_2:
      return TLS1_2_VERSION;
    case TlsVersion::kTlsV1_3:
      return TLS1_3_VERSION;
  }
  return TLS1_2_VERSION;
}

TlsVersion tulip_version(long version, TlsVersion otherwise) {
  switch (version) {
    case TLS1_VERSION:
      return TlsVersion::kTlsV1;
    case TLS1_1_VERSION:
      return TlsVersion::kTlsV1_1;
    case TLS1_2_VERSION:
      return TlsVersion::kTlsV1_2;
    case TLS1_3_VERSION:
      return TlsVersion::kTlsV1_3;
    default:
      return otherwise;  // 0: no bound set
  }
}

// A server's ALPN choice: the first of its own protocols that the client
// offers (Python's order); no overlap: go on without ALPN.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_length,
                const unsigned char* offered, unsigned int offered_length, void* argument) {
  auto* state = static_cast<SslContextState*>(argument);
  const auto* ours = reinterpret_cast<const unsigned char*>(state->alpn_wire.data());
  unsigned char* chosen = nullptr;
  int outcome = SSL_select_next_proto(&chosen, out_length, ours,
                                      static_cast<unsigned>(state->alpn_wire.size()), offered,
                                      offered_length);
  if (outcome != OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_NOACK;
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

void apply_verify_mode(SslContextState& state) {
  int mode = SSL_VERIFY_NONE;
  if (state.verify_mode != VerifyMode::kNone) {
    mode = SSL_VERIFY_PEER;
    // A client always requires the server's certificate once it verifies; a
    // server fails the handshake of a client without one only if required.
    if (state.verify_mode == VerifyMode::kRequired && state.side == SslContext::Side::kServer) {
      mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
  }
  SSL_CTX_set_verify(state.ctx, mode, nullptr);
}

}  // namespace

// Defined in tls_engine.cpp: runs the SNI callback of `state` for the
// connection `ssl` and switches it to the context the callback chose.
int switch_context_for_sni(SSL* ssl, SslContextState& state, int* alert);

namespace {

// The servername callback of a server context that has an SniCallback.
int on_servername(SSL* ssl, int* alert, void* argument) {
  return switch_context_for_sni(ssl, *static_cast<SslContextState*>(argument), alert);
}

}  // namespace

SslContextState::SslContextState(SSL_CTX* native, SslContext::Side context_side)
    : ctx(native),
      side(context_side),
      check_hostname(context_side == SslContext::Side::kClient),
      verify_mode(context_side == SslContext::Side::kClient ? VerifyMode::kRequired
                                                            : VerifyMode::kNone) {
  SSL_CTX_set_ex_data(ctx, context_state_index(), this);
}

SslContextState::~SslContextState() {
  // Connections still running hold their own reference to the SSL_CTX; the
  // slot must not lead them to this freed state.
  SSL_CTX_set_ex_data(ctx, context_state_index(), nullptr);
  SSL_CTX_free(ctx);
}

SslContextState* SslContextState::from(const SSL_CTX* ctx) noexcept {
  return static_cast<SslContextState*>(SSL_CTX_get_ex_data(ctx, context_state_index()));
}

}  // namespace detail

// ---- SslSession ---------------------------------------------------------------------

SslSession::SslSession(SSL_SESSION* session) {
  if (session != nullptr) session_.reset(session, SSL_SESSION_free);
}

// ---- SslContext -----------------------------------------------------------------------

SslContext::SslContext(Side side) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(side == Side::kClient ? TLS_client_method() : TLS_server_method());
  if (ctx == nullptr) detail::throw_openssl_error("cannot create an SSL context");
  try {
    state_ = std::make_shared<detail::SslContextState>(ctx, side);
  } catch (...) {
    SSL_CTX_free(ctx);
    throw;
  }
  // Python's defaults: TLS 1.2 or newer, no renegotiation (a peer that asks
  // is refused with an alert), no compression.
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // The engine's output always takes every record, so SSL_write_ex encrypts
  // all it is given in one call; a retried write (which never happens) would
  // not have to pass the same buffer. OpenSSL's two 17 KiB record buffers
  // are released while a connection has nothing to read or send (as nginx
  // does): an idle TLS connection then costs about 20 KiB, not 53.
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  if (side == Side::kClient) {
    // Sessions are handed to the connection that made them (for
    // "ssl_session"), not kept by OpenSSL: resumption is the caller's choice.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, detail::on_new_session);
  } else {
    // Resumption of sessions of verified clients needs a session id context.
    static const unsigned char kSessionContext[] = "tulip";
    SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1);
  }
  detail::apply_verify_mode(*state_);
}

SslContext SslContext::create_default_context(Side side) {
  SslContext context(side);
  context.set_default_verify_paths();
  return context;
}

SslContext::Side SslContext::side() const noexcept { return state_->side; }

SSL_CTX* SslContext::native_handle() const noexcept { return state_->ctx; }

void SslContext::load_cert_chain(const std::string& certfile, const std::string& keyfile,
                                 const std::string& password) {
  if (certfile.empty()) throw std::invalid_argument("load_cert_chain() needs a certificate file");
  const std::string& key = keyfile.empty() ? certfile : keyfile;
  // A file that cannot be opened is the common mistake: say so as the OS does.
  for (const std::string* file : {&certfile, &key}) {
    if (std::FILE* probe = std::fopen(file->c_str(), "r")) {
      std::fclose(probe);
    } else {
      int error = errno;
      throw SslError(std::error_code(error, std::generic_category()),
                     "cannot load '" + *file + "': " + std::strerror(error));
    }
  }
  ERR_clear_error();
  SSL_CTX* ctx = state_->ctx;
  // OpenSSL asks the password callback only for an encrypted key.
  SSL_CTX_set_default_passwd_cb_userdata(ctx, const_cast<std::string*>(&password));
  SSL_CTX_set_default_passwd_cb(ctx, [](char* buffer, int size, int, void* data) -> int {
    const auto* secret = static_cast<const std::string*>(data);
    if (secret == nullptr || secret->size() > static_cast<std::size_t>(size)) return -1;
    std::memcpy(buffer, secret->data(), secret->size());
    return static_cast<int>(secret->size());
  });
  // Each file is loaded on its own, so that a failure names the file and what
  // was missing in it: OpenSSL's own reason for a PEM file without the block it
  // looked for is only "PEM lib".
  bool certificate_loaded = SSL_CTX_use_certificate_chain_file(ctx, certfile.c_str()) == 1;
  bool key_loaded =
      certificate_loaded && SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) == 1;
  SSL_CTX_set_default_passwd_cb(ctx, nullptr);
  SSL_CTX_set_default_passwd_cb_userdata(ctx, nullptr);
  if (!certificate_loaded) {
    if (detail::pem_block_missing(certfile, "CERTIFICATE")) {
      throw SslError(detail::take_openssl_error(),
                     "no certificate in '" + certfile + "' (no PEM CERTIFICATE block)");
    }
    detail::throw_openssl_error("cannot load the certificate chain from '" + certfile + "'");
  }
  if (!key_loaded) {
    if (detail::pem_block_missing(key, "PRIVATE KEY")) {
      throw SslError(detail::take_openssl_error(),
                     keyfile.empty()
                         ? "no private key in '" + certfile +
                               "' (name the key's file: it is not in the certificate's)"
                         : "no private key in '" + keyfile + "' (no PEM PRIVATE KEY block)");
    }
    unsigned long reason = ERR_peek_last_error();
    if (ERR_GET_LIB(reason) == ERR_LIB_X509 &&
        ERR_GET_REASON(reason) == X509_R_KEY_VALUES_MISMATCH) {
      throw SslError(
          detail::take_openssl_error(),
          "the private key in '" + key + "' does not match the certificate in '" + certfile + "'");
    }
    detail::throw_openssl_error("cannot load the private key from '" + key + "'");
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    detail::throw_openssl_error("the private key in '" + key + "' does not match the certificate");
  }
}

void SslContext::load_verify_locations(const std::string& cafile, const std::string& capath,
                                       std::string_view cadata) {
  if (cafile.empty() && capath.empty() && cadata.empty()) {
    throw std::invalid_argument("load_verify_locations() needs cafile, capath or cadata");
  }
  ERR_clear_error();
  if (!cafile.empty() || !capath.empty()) {
    if (SSL_CTX_load_verify_locations(state_->ctx, cafile.empty() ? nullptr : cafile.c_str(),
                                      capath.empty() ? nullptr : capath.c_str()) != 1) {
      detail::throw_openssl_error("cannot load CA certificates from '" +
                                  (cafile.empty() ? capath : cafile) + "'");
    }
  }
  if (!cadata.empty()) {
    BIO* bio = BIO_new_mem_buf(cadata.data(), static_cast<int>(cadata.size()));
    if (bio == nullptr) detail::throw_openssl_error("cannot read cadata");
    X509_STORE* store = SSL_CTX_get_cert_store(state_->ctx);
    int count = 0;
    while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
      X509_STORE_add_cert(store, cert);  // takes its own reference
      X509_free(cert);
      ++count;
    }
    BIO_free(bio);
    // Reading stops with a "no start line" error at the end of the data.
    ERR_clear_error();
    if (count == 0) {
      throw SslError(std::make_error_code(std::errc::invalid_argument),
                     "cadata holds no PEM certificate");
    }
  }
}

void SslContext::set_default_verify_paths() {
  ERR_clear_error();
  if (SSL_CTX_set_default_verify_paths(state_->ctx) != 1) {
    detail::throw_openssl_error("cannot load the system's CA certificates");
  }
}

void SslContext::set_alpn_protocols(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const std::string& protocol : protocols) {
    if (protocol.empty() || protocol.size() > 255) {
      throw std::invalid_argument("an ALPN protocol name must be 1 to 255 bytes long, not '" +
                                  protocol + "'");
    }
    wire.push_back(static_cast<char>(protocol.size()));
    wire += protocol;
  }
  state_->alpn_wire = std::move(wire);
  if (state_->side == Side::kClient) {
    // OpenSSL returns 0 for success here.
    if (SSL_CTX_set_alpn_protos(state_->ctx,
                                reinterpret_cast<const unsigned char*>(state_->alpn_wire.data()),
                                static_cast<unsigned>(state_->alpn_wire.size())) != 0) {
      detail::throw_openssl_error("cannot set the ALPN protocols");
    }
  } else if (state_->alpn_wire.empty()) {
    SSL_CTX_set_alpn_select_cb(state_->ctx, nullptr, nullptr);
  } else {
    SSL_CTX_set_alpn_select_cb(state_->ctx, detail::select_alpn, state_.get());
  }
}

void SslContext::set_ciphers(const std::string& ciphers) {
  ERR_clear_error();
  if (SSL_CTX_set_cipher_list(state_->ctx, ciphers.c_str()) != 1) {
    detail::throw_openssl_error("no cipher can be selected with '" + ciphers + "'");
  }
}

void SslContext::set_ciphersuites(const std::string& ciphersuites) {
  ERR_clear_error();
  if (SSL_CTX_set_ciphersuites(state_->ctx, ciphersuites.c_str()) != 1) {
    detail::throw_openssl_error("no TLS 1.3 cipher suite can be selected with '" + ciphersuites +
                                "'");
  }
}

void SslContext::set_minimum_version(TlsVersion version) {
  if (SSL_CTX_set_min_proto_version(state_->ctx, detail::openssl_version(version)) != 1) {
    detail::throw_openssl_error("cannot set the minimum TLS version");
  }
}

TlsVersion SslContext::minimum_version() const {
  return detail::tulip_version(SSL_CTX_get_min_proto_version(state_->ctx), TlsVersion::kTlsV1);
}

void SslContext::set_maximum_version(TlsVersion version) {
  if (SSL_CTX_set_max_proto_version(state_->ctx, detail::openssl_version(version)) != 1) {
    detail::throw_openssl_error("cannot set the maximum TLS version");
  }
}

TlsVersion SslContext::maximum_version() const {
  return detail::tulip_version(SSL_CTX_get_max_proto_version(state_->ctx), TlsVersion::kTlsV1_3);
}

void SslContext::set_check_hostname(bool check) {
  if (check && state_->verify_mode == VerifyMode::kNone) {
    state_->verify_mode = VerifyMode::kRequired;
    detail::apply_verify_mode(*state_);
  }
  state_->check_hostname = check;
}

bool SslContext::check_hostname() const noexcept { return state_->check_hostname; }

void SslContext::set_verify_mode(VerifyMode mode) {
  if (mode == VerifyMode::kNone && state_->check_hostname) {
    throw std::invalid_argument(
        "Cannot set verify_mode to kNone when check_hostname is enabled "
        "(call set_check_hostname(false) first)");
  }
  state_->verify_mode = mode;
  detail::apply_verify_mode(*state_);
}

VerifyMode SslContext::verify_mode() const noexcept { return state_->verify_mode; }

void SslContext::set_sni_callback(SniCallback callback) {
  state_->sni_callback = std::move(callback);
  if (state_->sni_callback) {
    SSL_CTX_set_tlsext_servername_callback(state_->ctx, detail::on_servername);
    SSL_CTX_set_tlsext_servername_arg(state_->ctx, state_.get());
  } else {
    SSL_CTX_set_tlsext_servername_callback(state_->ctx, nullptr);
  }
}

}  // namespace tulip
