// tulip-echo-client --tls: the client's TLS context and options from the
// command line, and what a failed TLS connection means for the exit status.
// Shared by both implementations (Protocol and --streams).
//
// Thread-safety: the loop's thread only.
#pragma once

#include <exception>

#include "client_options.hpp"
#include "tulip/connection_options.hpp"

namespace tulip::tools {

/// Sets the TLS options of a TCP connection from --tls, --cafile,
/// --server-hostname, --insecure and --handshake-timeout (nothing without
/// --tls). Throws SslError if --cafile cannot be loaded.
void apply_tls(const ClientOptions& options, ConnectOptions& connect);
/// The same for a Unix connection.
void apply_tls(const ClientOptions& options, UnixConnectOptions& connect);

/// Prints the error line of a connection that could not be made and returns
/// the exit status: 4 for a TLS handshake that timed out, 1 for anything else
/// (a certificate that does not verify, a handshake failure, a refused
/// connection); TLS failures name the server: "TLS handshake with '127.0.0.1'
/// port 8888 failed: certificate verify failed: self-signed certificate".
int report_connect_failure(const ClientOptions& options, const std::exception& error);

}  // namespace tulip::tools
