// TlsEngine::extra_info: what a TLS transport's get_extra_info tells (tls.hpp).
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <memory>

#include "tls_engine.hpp"
#include "tulip/tls.hpp"

namespace tulip::detail {
namespace {

struct BioFree {
  void operator()(BIO* bio) const noexcept { BIO_free(bio); }
};

// What `print` writes into a memory BIO, as a string.
template <class Print>
std::string printed(Print&& print) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || print(bio.get()) <= 0) return {};
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return size > 0 ? std::string(data, static_cast<std::size_t>(size)) : std::string();
}

std::string name_text(const X509_NAME* name) {
  return printed([name](BIO* bio) { return X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253); });
}

std::string time_text(const ASN1_TIME* time) {
  return printed([time](BIO* bio) { return ASN1_TIME_print(bio, time); });
}

std::string general_name_text(const GENERAL_NAME* name) {
  auto text = [](const ASN1_STRING* s) {
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                       static_cast<std::size_t>(ASN1_STRING_length(s)));
  };
  switch (name->type) {
    case GEN_DNS:
      return "DNS:" + text(name->d.dNSName);
    case GEN_EMAIL:
      return "email:" + text(name->d.rfc822Name);
    case GEN_URI:
      return "URI:" + text(name->d.uniformResourceIdentifier);
    case GEN_IPADD: {
      const ASN1_OCTET_STRING* bytes = name->d.iPAddress;
      char buffer[INET6_ADDRSTRLEN] = {};
      int family = ASN1_STRING_length(bytes) == 4 ? AF_INET : AF_INET6;
      if (ASN1_STRING_length(bytes) != 4 && ASN1_STRING_length(bytes) != 16) return "IP Address:?";
      ::inet_ntop(family, ASN1_STRING_get0_data(bytes), buffer, sizeof(buffer));
      return std::string("IP Address:") + buffer;
    }
    default:
      return "othername:<unsupported>";
  }
}

PeerCertificate describe_certificate(X509* cert) {
  PeerCertificate info;
  info.subject = name_text(X509_get_subject_name(cert));
  info.issuer = name_text(X509_get_issuer_name(cert));
  info.not_before = time_text(X509_get0_notBefore(cert));
  info.not_after = time_text(X509_get0_notAfter(cert));
  if (BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(serial)) {
      info.serial_number = hex;
      OPENSSL_free(hex);
    }
    BN_free(serial);
  }
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
      info.subject_alt_names.push_back(general_name_text(sk_GENERAL_NAME_value(names, i)));
    }
    GENERAL_NAMES_free(names);
  }
  int length = i2d_X509(cert, nullptr);
  if (length > 0) {
    info.der.resize(static_cast<std::size_t>(length));
    auto* out = reinterpret_cast<unsigned char*>(info.der.data());
    i2d_X509(cert, &out);
  }
  return info;
}

}  // namespace

std::any TlsEngine::extra_info(std::string_view name) const {
  if (name == "ssl_object") return std::any(ssl_);
  if (name == "sslcontext") return std::any(context_);
  if (name == "peercert") {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    X509* cert = SSL_get1_peer_certificate(ssl_);
#else
    X509* cert = SSL_get_peer_certificate(ssl_);
#endif
    if (cert == nullptr) return {};
    PeerCertificate info = describe_certificate(cert);
    X509_free(cert);
    return std::any(std::move(info));
  }
  if (name == "cipher") {
    const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_);
    if (cipher == nullptr) return {};
    return std::any(CipherInfo{SSL_CIPHER_get_name(cipher), SSL_get_version(ssl_),
                               SSL_CIPHER_get_bits(cipher, nullptr)});
  }
  if (name == "compression") {
#ifndef OPENSSL_NO_COMP
    if (const COMP_METHOD* method = SSL_get_current_compression(ssl_)) {
      return std::any(std::string(SSL_COMP_get_name(method)));
    }
#endif
    return {};
  }
  if (name == "selected_alpn_protocol") {
    const unsigned char* protocol = nullptr;
    unsigned int length = 0;
    SSL_get0_alpn_selected(ssl_, &protocol, &length);
    if (length == 0) return {};
    return std::any(std::string(reinterpret_cast<const char*>(protocol), length));
  }
  if (name == "server_hostname") {
    const char* host = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
    if (host == nullptr) return {};
    return std::any(std::string(host));
  }
  if (name == "ssl_session") {
    if (latest_session_.valid()) return std::any(latest_session_);
    SSL_SESSION* session = SSL_get1_session(ssl_);
    if (session == nullptr) return {};
    return std::any(SslSession(session));
  }
  if (name == "session_reused") return std::any(SSL_session_reused(ssl_) == 1);
  if (name == "close_notify_received") return std::any(close_notify_received_);
  return {};
}

std::string TlsEngine::describe_session() const {
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_);
  std::string text = SSL_get_version(ssl_);
  text += ' ';
  text += cipher != nullptr ? SSL_CIPHER_get_name(cipher) : "(no cipher)";
  const unsigned char* protocol = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl_, &protocol, &length);
  if (length > 0) {
    text += " ALPN ";
    text.append(reinterpret_cast<const char*>(protocol), length);
  }
  return text;
}

}  // namespace tulip::detail
