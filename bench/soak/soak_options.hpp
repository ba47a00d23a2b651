// tulip-soak's command line: what a run does, and its parser. See docs/soak.md.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace tulip::soak {

/// What one soak run does.
struct Options {
  int connections = 10000;  // long-lived connections (1,000 by default with --tls)
  double seconds = 60;
  std::size_t message_size = 128;  // average; sizes vary from half to one and a half times
  double interval = 1.0;           // seconds between messages on one connection
  double sample_interval = 2.0;
  int connect_concurrency = 256;
  bool in_process = false;
  std::string server_path;
  // --server-arg: more arguments for the server child, after the usual ones.
  std::vector<std::string> server_arguments;
  // --tls: every connection, long-lived or churned, speaks TLS (the server
  // with a certificate of a CA made at start, the clients verifying it).
  bool tls = false;
  // --churn: new short connections per second (connect, handshake with --tls,
  // one echoed message, close), at most churn_concurrency in flight.
  double churn_per_second = 0;  // 50 by default with --tls
  int churn_concurrency = 64;
};

/// Parses argv. On --help or a mistake prints one line and the usage on
/// stderr and exits with status 2.
Options parse_options(int argc, char** argv, std::string default_server_path);

}  // namespace tulip::soak
