#include "soak_tls.hpp"

#include <stdexcept>

#if TULIP_SOAK_TLS
#include "support/tls_pki.hpp"
#endif

namespace tulip::soak {

SoakTls make_soak_tls() {
#if TULIP_SOAK_TLS
  // The test suite's PKI: EC P-256 keys, the server's certificate for
  // localhost and 127.0.0.1, in a directory removed when the process exits.
  const testing::TestPki& pki = testing::TestPki::get();
  SoakTls tls;
  tls.server_arguments = {"--tls", "--cert", pki.cert("server"), "--key", pki.key("server")};
  tls.server_context = SslContext(SslContext::Side::kServer);
  tls.server_context->load_cert_chain(pki.cert("server"), pki.key("server"));
  tls.connect.ssl = SslContext(SslContext::Side::kClient);
  tls.connect.ssl->load_verify_locations(pki.ca());
  tls.connect.server_hostname = "localhost";
  return tls;
#else
  throw std::runtime_error("--tls: this tulip-soak was built without TLS (OpenSSL)");
#endif
}

}  // namespace tulip::soak
