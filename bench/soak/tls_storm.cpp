// tulip-tls-storm: a storm of TLS handshakes on one event loop, run three times,
// checking that nothing is left behind: every connection completes its
// handshake, echoes a message and closes with close_notify on both sides;
// afterwards the process has the descriptors it started with, the server no
// connection, and the last storm ends with no more resident memory than the
// second (so nothing accumulates per connection). With --fail, every client
// distrusts the server and every handshake fails, which exercises the failure
// paths instead. Not a unit test (tests/tls/tls_fault_test.cpp runs 1,000);
// bench/soak/tls-handshake-storm.sh runs 10,000. See docs/soak.md.
//
// The server is on the same loop as the clients, so one storm costs both ends
// of every handshake: the handshakes per second printed are pairs.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "process_stats.hpp"
#include "support/tls_pki.hpp"
#include "tulip/tulip.hpp"

namespace {

using namespace tulip;

struct Options {
  int connections = 10000;
  int concurrency = 1000;  // handshakes in flight at once
  int rounds = 3;
  bool fail = false;
};

[[noreturn]] void usage(const std::string& message) {
  std::fprintf(stderr,
               "tulip-tls-storm: %s\n"
               "usage: tulip-tls-storm [--connections N] [--concurrency K] [--rounds R] [--fail]\n",
               message.c_str());
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> int {
      if (i + 1 >= argc) usage(arg + " needs a value");
      int parsed = std::atoi(argv[++i]);
      if (parsed <= 0) usage(arg + " needs a positive number");
      return parsed;
    };
    if (arg == "--connections") {
      options.connections = value();
    } else if (arg == "--concurrency") {
      options.concurrency = value();
    } else if (arg == "--rounds") {
      options.rounds = std::max(3, value());
    } else if (arg == "--fail") {
      options.fail = true;
    } else {
      usage("unknown option " + arg);
    }
  }
  return options;
}

class Echo : public Protocol {
 public:
  void connection_made(Transport& transport) override { transport_ = &transport; }
  void data_received(std::string_view data) override { transport_->write(data); }

 private:
  Transport* transport_ = nullptr;
};

// One client: handshake, one message, its echo, close; reports to `done`.
class Client : public Protocol {
 public:
  explicit Client(std::function<void(bool)> done) : done_(std::move(done)) {}
  void connection_made(Transport& transport) override {
    transport_ = &transport;
    transport.write("tulip storm");
  }
  void data_received(std::string_view data) override {
    echoed_.append(data);
    if (echoed_ == "tulip storm") transport_->close();
  }
  void connection_lost(std::error_code error) override {
    done_(!error && echoed_ == "tulip storm");
  }

 private:
  std::function<void(bool)> done_;
  Transport* transport_ = nullptr;
  std::string echoed_;
};

struct Storm {
  int ok = 0;
  int failed = 0;
  double seconds = 0;
};

Storm run_storm(EventLoop& loop, std::uint16_t port, const Options& options,
                const ConnectOptions& connect) {
  Storm storm;
  int started = 0;
  int in_flight = 0;
  auto start = std::chrono::steady_clock::now();
  std::function<void()> launch = [&] {
    while (in_flight < options.concurrency && started < options.connections) {
      ++started;
      ++in_flight;
      auto finished = [&](bool ok) {
        ++(ok ? storm.ok : storm.failed);
        --in_flight;
        // Never called back synchronously: starting the next one here is safe.
        launch();
      };
      auto future = loop.create_connection(
          [finished] { return std::make_shared<Client>(finished); }, "127.0.0.1", port, connect);
      future.add_done_callback([finished](auto& done) {
        // A failed handshake never reaches the protocol: count it here.
        if (done.exception()) finished(false);
      });
    }
  };
  launch();
  while (storm.ok + storm.failed < options.connections) {
    loop.stop();
    loop.run_forever();
  }
  storm.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return storm;
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse(argc, argv);
  long limit = soak::raise_fd_limit();
  if (limit < 2L * options.concurrency + 64) {
    std::fprintf(stderr,
                 "tulip-tls-storm: %d handshakes in flight need %ld descriptors; the limit is "
                 "%ld (lower --concurrency)\n",
                 options.concurrency, 2L * options.concurrency + 64, limit);
    return 2;
  }
  const tulip::testing::TestPki& pki = tulip::testing::TestPki::get();
  EventLoop loop;
  bool handler_called = false;
  loop.set_exception_handler([&](EventLoop&, const ExceptionContext& context) {
    handler_called = true;
    std::fprintf(stderr, "tulip-tls-storm: exception handler: %s\n", describe(context).c_str());
  });
  ServerOptions server_options;
  server_options.backlog = options.concurrency;
  server_options.ssl = SslContext(SslContext::Side::kServer);
  server_options.ssl->load_cert_chain(pki.cert("server"), pki.key("server"));
  auto server = loop.run_until_complete(
      loop.create_server([] { return std::make_shared<Echo>(); }, "127.0.0.1", 0, server_options));
  std::uint16_t port = server->sockets().front().sockname.port();

  ConnectOptions connect;
  connect.ssl = SslContext(SslContext::Side::kClient);
  if (!options.fail) connect.ssl->load_verify_locations(pki.ca());
  connect.server_hostname = "localhost";

  long fds_before = soak::open_fds();
  int status = 0;
  std::vector<long> resident;
  for (int round = 0; round < options.rounds; ++round) {
    Storm storm = run_storm(loop, port, options, connect);
    // The server's side of the last connections goes a moment after the clients'.
    while (server->connection_count() > 0) {
      loop.stop();
      loop.run_forever();
    }
    resident.push_back(soak::resident_kib());
    long fds = soak::open_fds();
    std::printf(
        "storm %d: %d connections, %d ok, %d failed, %.2f s, %.0f handshakes/s (both ends in "
        "this process), RSS %ld KiB, descriptors %ld (before %ld)\n",
        round + 1, options.connections, storm.ok, storm.failed, storm.seconds,
        options.connections / storm.seconds, resident.back(), fds, fds_before);
    int expected_ok = options.fail ? 0 : options.connections;
    if (storm.ok != expected_ok) {
      std::printf("tulip-tls-storm: expected %d connections to succeed, %d did\n", expected_ok,
                  storm.ok);
      status = 1;
    }
    if (fds != fds_before) {
      std::printf("tulip-tls-storm: descriptors left behind: %ld\n", fds - fds_before);
      status = 1;
    }
  }
  // The allocator's pools settle during the first two storms (the heap keeps
  // its high-water mark, fragmented by OpenSSL's record buffers); the later
  // ones must add nothing that scales with connections (2% and 1 MiB of slack).
  long growth = resident.back() - resident[1];
  std::printf("resident memory from the second storm to the last: %+ld KiB\n", growth);
  if (growth > resident[1] / 50 + 1024) {
    std::printf("tulip-tls-storm: GREW\n");
    status = 1;
  }
  if (handler_called) status = 1;
  server->close();
  loop.run_until_complete(server->wait_closed());
  std::printf("tulip-tls-storm: %s\n", status == 0 ? "passed" : "FAILED");
  return status;
}
