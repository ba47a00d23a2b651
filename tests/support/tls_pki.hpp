// Test support: a small public-key infrastructure made at run time with
// OpenSSL's API, so that no private key is ever committed. Once per process, in
// a private temporary directory removed at exit:
//
//   ca.pem                          the test CA (self-signed), which clients trust
//   server.pem / server.key         CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1
//   client.pem / client.key         CN=tulip-client (a client certificate)
//   expired.pem / expired.key       like server.pem, valid until yesterday
//   other-host.pem / other-host.key SAN DNS:other.example only
//   self-signed.pem / self-signed.key  CN=localhost, signed by itself
//   other-ca.pem                    a CA nobody trusts; untrusted-client.pem/.key signed by it
//
// Every key is EC P-256 (fast to make, sign and verify; the handshake storm
// needs that).
//
// Thread-safety: get() from any thread (a function-local static).
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <stdexcept>
#include <string>

#include "support/temp_dir.hpp"

namespace tulip::testing {

class TestPki {
 public:
  static const TestPki& get() {
    static const TestPki pki;
    return pki;
  }

  std::string path(const std::string& name) const { return dir_.path() + "/" + name; }
  std::string ca() const { return path("ca.pem"); }
  std::string cert(const std::string& name) const { return path(name + ".pem"); }
  std::string key(const std::string& name) const { return path(name + ".key"); }

 private:
  struct Issued {
    EVP_PKEY* key;
    X509* cert;
  };

  TestPki() {
    if (dir_.path().empty()) throw std::runtime_error("cannot make a temporary directory");
    Issued ca = issue("tulip test CA", "", nullptr, true, 0, 3650);
    save("ca", ca);
    save("server", issue("localhost", "DNS:localhost,IP:127.0.0.1,IP:::1", &ca, false, 0, 365));
    save("client", issue("tulip-client", "", &ca, false, 0, 365));
    save("expired", issue("localhost", "DNS:localhost,IP:127.0.0.1", &ca, false, -3, -1));
    save("other-host", issue("other.example", "DNS:other.example", &ca, false, 0, 365));
    save("self-signed", issue("localhost", "DNS:localhost,IP:127.0.0.1", nullptr, false, 0, 365));
    Issued other_ca = issue("untrusted CA", "", nullptr, true, 0, 3650);
    save("other-ca", other_ca);
    save("untrusted-client", issue("untrusted-client", "", &other_ca, false, 0, 365));
    release(other_ca);
    release(ca);
  }
  ~TestPki() = default;

  static void check(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("test PKI: ") + what + " failed");
  }

  static void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
    check(extension != nullptr, "an extension");
    X509_add_ext(cert, extension, -1);
    X509_EXTENSION_free(extension);
  }

  // A certificate for `common_name` (with `alt_names` if any), valid from
  // `from_days` to `to_days` days from now, signed by `issuer` (null: by itself).
  static Issued issue(const std::string& common_name, const std::string& alt_names,
                      const Issued* issuer, bool is_ca, long from_days, long to_days) {
    static long serial = 1;
    EVP_PKEY* key = EVP_EC_gen("P-256");
    check(key != nullptr, "EC key generation");
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
    X509_gmtime_adj(X509_getm_notBefore(cert), from_days * 86400 - 3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), to_days * 86400);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("tulip tests"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                               0);
    X509* signer_cert = issuer != nullptr ? issuer->cert : cert;
    EVP_PKEY* signer_key = issuer != nullptr ? issuer->key : key;
    X509_set_issuer_name(cert, X509_get_subject_name(signer_cert));
    add_extension(cert, signer_cert, NID_basic_constraints,
                  is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    add_extension(cert, signer_cert, NID_subject_key_identifier, "hash");
    if (is_ca) add_extension(cert, signer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
    if (!alt_names.empty()) add_extension(cert, signer_cert, NID_subject_alt_name, alt_names);
    check(X509_sign(cert, signer_key, EVP_sha256()) > 0, "signing");
    return {key, cert};
  }

  void save(const std::string& name, Issued issued) const {
    std::FILE* cert_file = std::fopen(cert(name).c_str(), "w");
    std::FILE* key_file = std::fopen(key(name).c_str(), "w");
    check(cert_file != nullptr && key_file != nullptr, "writing a file");
    check(PEM_write_X509(cert_file, issued.cert) == 1, "writing a certificate");
    check(PEM_write_PrivateKey(key_file, issued.key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
          "writing a key");
    std::fclose(cert_file);
    std::fclose(key_file);
    if (name != "ca" && name != "other-ca") release(issued);
  }

  static void release(Issued issued) {
    X509_free(issued.cert);
    EVP_PKEY_free(issued.key);
  }

  TempDir dir_;
};

}  // namespace tulip::testing
