// tulip-echo-client --streams: the client written on asyncio's streams API.
#pragma once

#include "client_options.hpp"

namespace tulip::tools {

/// Runs the TCP or Unix client with open_connection / open_unix_connection,
/// a StreamReader and a StreamWriter; returns the exit status. Same
/// transcript, exit codes and fault behaviour as the Protocol client (see
/// docs/tools.md for the one difference a streams reader brings).
int run_streams_client(const ClientOptions& options);

}  // namespace tulip::tools
