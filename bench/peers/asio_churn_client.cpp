// The seed's client workload on Boost.Asio, callback style: connect, send 12
// bytes, read the echo, close, then the next connection, for --duration seconds.
// Prints "conns=N seconds=T conns_per_s=R".
//
// Usage: bench-asio-churn-client [--host H] [--port P] [--duration S]
#include <array>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kMessage = "Hello World!";

class Churn {
 public:
  Churn(asio::io_context& io, tcp::endpoint endpoint, Clock::time_point deadline)
      : io_(io), endpoint_(endpoint), deadline_(deadline) {}

  long count() const { return count_; }

  void start() {
    socket_.emplace(io_);
    socket_->async_connect(endpoint_, [this](boost::system::error_code error) {
      if (error) fail("connect", error);
      socket_->set_option(tcp::no_delay(true));
      asio::async_write(*socket_, asio::buffer(kMessage.data(), kMessage.size()),
                        [this](boost::system::error_code write_error, std::size_t) {
                          if (write_error) fail("write", write_error);
                        });
      asio::async_read(*socket_, asio::buffer(echo_.data(), kMessage.size()),
                       [this](boost::system::error_code read_error, std::size_t) {
                         if (read_error) fail("read", read_error);
                         if (std::string_view(echo_.data(), kMessage.size()) != kMessage) {
                           std::fprintf(stderr, "bench-asio-churn-client: the echo differs\n");
                           std::exit(1);
                         }
                         socket_->close();
                         ++count_;
                         if (Clock::now() < deadline_) start();
                       });
    });
  }

 private:
  [[noreturn]] static void fail(const char* what, const boost::system::error_code& error) {
    std::fprintf(stderr, "bench-asio-churn-client: %s: %s\n", what, error.message().c_str());
    std::exit(1);
  }

  asio::io_context& io_;
  tcp::endpoint endpoint_;
  Clock::time_point deadline_;
  std::optional<tcp::socket> socket_;
  std::array<char, 16> echo_{};
  long count_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  int port = 8888;
  double duration = 2.0;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 < argc && std::strcmp(argv[i], "--host") == 0) {
      host = argv[++i];
    } else if (i + 1 < argc && std::strcmp(argv[i], "--port") == 0) {
      port = std::atoi(argv[++i]);
    } else if (i + 1 < argc && std::strcmp(argv[i], "--duration") == 0) {
      duration = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: bench-asio-churn-client [--host H] [--port P] [--duration S]\n");
      return 2;
    }
  }
  asio::io_context io(1);
  Clock::time_point start = Clock::now();
  Churn churn(
      io, tcp::endpoint(asio::ip::make_address(host), static_cast<unsigned short>(port)),
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration)));
  churn.start();
  io.run();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("conns=%ld seconds=%.4f conns_per_s=%.1f\n", churn.count(), elapsed,
              static_cast<double>(churn.count()) / elapsed);
  return 0;
}
