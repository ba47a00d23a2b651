#include "client_tls.hpp"

#include <string>

#include "tool_support.hpp"
#include "tulip/errors.hpp"
#include "tulip/ssl_context.hpp"

namespace tulip::tools {
namespace {

SslContext client_context(const ClientOptions& options) {
  if (options.insecure) {
    SslContext context(SslContext::Side::kClient);
    context.set_check_hostname(false);
    context.set_verify_mode(VerifyMode::kNone);
    return context;
  }
  if (!options.cafile) return SslContext::create_default_context();
  // As Python's create_default_context(cafile=...): that file instead of the system's store.
  SslContext context(SslContext::Side::kClient);
  context.load_verify_locations(*options.cafile);
  return context;
}

template <class Options>
void apply(const ClientOptions& options, Options& connect) {
  if (!options.tls) return;
  connect.ssl = client_context(options);
  if (options.server_hostname) connect.server_hostname = options.server_hostname;
  // --insecure on a Unix socket: no name to send or check.
  if (options.unix_path && !options.server_hostname) connect.server_hostname = "";
  if (options.handshake_timeout) connect.ssl_handshake_timeout = *options.handshake_timeout;
}

std::string target(const ClientOptions& options) {
  if (options.unix_path) return *options.unix_path;
  return "'" + options.host + "' port " + std::to_string(options.port);
}

}  // namespace

void apply_tls(const ClientOptions& options, ConnectOptions& connect) { apply(options, connect); }

void apply_tls(const ClientOptions& options, UnixConnectOptions& connect) {
  apply(options, connect);
}

int report_connect_failure(const ClientOptions& options, const std::exception& error) {
  if (const auto* failed = dynamic_cast<const ConnectionError*>(&error);
      failed != nullptr && failed->code() == make_error_code(Error::kSslHandshakeTimeout)) {
    error_line(kClientProgram,
               "TLS handshake with " + target(options) + " failed: " + error.what());
    return kExitTimeout;
  }
  if (dynamic_cast<const SslError*>(&error) != nullptr) {
    error_line(kClientProgram,
               "TLS handshake with " + target(options) + " failed: " + error.what());
    return kExitConnectionError;
  }
  error_line(kClientProgram, error.what());
  return kExitConnectionError;
}

}  // namespace tulip::tools
