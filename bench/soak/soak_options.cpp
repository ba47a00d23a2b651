#include "soak_options.hpp"

#include <cstdio>
#include <cstdlib>
#include <optional>

namespace tulip::soak {
namespace {

[[noreturn]] void usage(const std::string& message) {
  std::fprintf(stderr,
               "tulip-soak: %s\n"
               "usage: tulip-soak [--connections N] [--seconds S] [--message-size B]\n"
               "                  [--interval S] [--sample-interval S] [--connect-concurrency K]\n"
               "                  [--tls] [--churn R] [--churn-concurrency K]\n"
               "                  [--in-process | --server PATH [--server-arg ARG]...]\n",
               message.c_str());
  std::exit(2);
}

}  // namespace

Options parse_options(int argc, char** argv, std::string default_server_path) {
  Options o;
  o.server_path = std::move(default_server_path);
  // Given explicitly or not: --tls changes the defaults of the ones not given.
  std::optional<int> connections;
  std::optional<double> churn;
  for (int i = 1; i < argc; ++i) {
    std::string name = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(name + " needs a value");
      return argv[++i];
    };
    auto number = [&](double minimum) {
      std::string text = value();
      char* end = nullptr;
      double parsed = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !(parsed >= minimum)) {
        usage(name + " must be a number >= " + std::to_string(minimum) + ", not '" + text + "'");
      }
      return parsed;
    };
    if (name == "--connections") {
      connections = static_cast<int>(number(1));
    } else if (name == "--seconds") {
      o.seconds = number(1);
    } else if (name == "--message-size") {
      o.message_size = static_cast<std::size_t>(number(2));
    } else if (name == "--interval") {
      o.interval = number(0.01);
    } else if (name == "--sample-interval") {
      o.sample_interval = number(0.1);
    } else if (name == "--connect-concurrency") {
      o.connect_concurrency = static_cast<int>(number(1));
    } else if (name == "--in-process") {
      o.in_process = true;
    } else if (name == "--server") {
      o.server_path = value();
    } else if (name == "--server-arg") {
      o.server_arguments.push_back(value());
    } else if (name == "--tls") {
      o.tls = true;
    } else if (name == "--churn") {
      churn = number(0);
    } else if (name == "--churn-concurrency") {
      o.churn_concurrency = static_cast<int>(number(1));
    } else if (name == "--help" || name == "-h") {
      usage("holds N echo connections on one loop for S seconds");
    } else {
      usage("unknown option '" + name + "'");
    }
  }
  // A TLS connection costs about 25 KiB per end and its handshake about a
  // millisecond of CPU per end, so the TLS soak holds fewer long-lived
  // connections and spends the difference on a churn of handshakes.
  o.connections = connections.value_or(o.tls ? 1000 : 10000);
  o.churn_per_second = churn.value_or(o.tls ? 50 : 0);
  return o;
}

}  // namespace tulip::soak
