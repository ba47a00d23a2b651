// The soak's TLS setup (--tls): a certificate authority and a server
// certificate for "localhost" made at start in a private temporary directory
// (removed at exit; no key is ever committed), the arguments that make the
// echo server child serve TLS with them, and the contexts of an in-process
// server and of the clients, which verify the server against that CA.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tulip/connection_options.hpp"
#include "tulip/ssl_context.hpp"

namespace tulip::soak {

struct SoakTls {
  /// Appended to the echo server child's arguments: --tls --cert F --key F.
  std::vector<std::string> server_arguments;
  /// For an in-process server.
  std::optional<SslContext> server_context;
  /// For every client connection: the CA's context, server_hostname "localhost".
  ConnectOptions connect;
};

/// Makes the certificates and contexts. Throws std::exception with the reason
/// when this build has no TLS or the certificates cannot be made.
SoakTls make_soak_tls();

}  // namespace tulip::soak
