// The seed's client workload on tulip, repeated: connect, send 12 bytes, read
// the echo, close, then the next connection, for --duration seconds. Written as
// the seed is, with create_connection and a future resolved by connection_lost.
// Prints "conns=N seconds=T conns_per_s=R".
//
// Usage: tulip-bench-churn-client [--host H] [--port P] [--duration S]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "tulip/tulip.hpp"

namespace {

constexpr std::string_view kMessage = "Hello World!";

class SeedClientProtocol final : public tulip::Protocol {
 public:
  explicit SeedClientProtocol(tulip::Future<std::size_t> done) : done_(std::move(done)) {}

  void connection_made(tulip::Transport& transport) override {
    transport_ = &transport;
    transport.write(kMessage);
  }

  void data_received(std::string_view data) override {
    echo_.append(data);
    if (echo_.size() >= kMessage.size()) transport_->close();
  }

  void connection_lost(std::error_code) override {
    transport_ = nullptr;
    if (!done_.done()) done_.set_result(echo_ == kMessage ? echo_.size() : 0);
  }

 private:
  tulip::Future<std::size_t> done_;
  tulip::Transport* transport_ = nullptr;  // valid from connection_made until connection_lost
  std::string echo_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8888;
  double duration = 2.0;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 < argc && std::strcmp(argv[i], "--host") == 0) {
      host = argv[++i];
    } else if (i + 1 < argc && std::strcmp(argv[i], "--port") == 0) {
      port = static_cast<std::uint16_t>(std::atoi(argv[++i]));
    } else if (i + 1 < argc && std::strcmp(argv[i], "--duration") == 0) {
      duration = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: tulip-bench-churn-client [--host H] [--port P] [--duration S]\n");
      return 2;
    }
  }
  using Clock = std::chrono::steady_clock;
  tulip::EventLoop loop;
  long count = 0;
  Clock::time_point start = Clock::now();
  Clock::time_point deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration));
  try {
    while (Clock::now() < deadline) {
      tulip::Future<std::size_t> done = loop.create_future<std::size_t>();
      loop.run_until_complete(loop.create_connection(
          [&done] { return std::make_shared<SeedClientProtocol>(done); }, host, port));
      if (loop.run_until_complete(done) != kMessage.size()) {
        std::fprintf(stderr, "tulip-bench-churn-client: the echo differs\n");
        return 1;
      }
      ++count;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tulip-bench-churn-client: %s\n", e.what());
    return 1;
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("conns=%ld seconds=%.4f conns_per_s=%.1f\n", count, elapsed,
              static_cast<double>(count) / elapsed);
  return 0;
}
