// Boost.Asio UDP echo server, shaped like Asio's own async_udp_echo_server
// example: async_receive_from, then async_send_to of the datagram back to its
// sender, then receive again. Single-threaded: io_context(1).
//
// Usage: bench-asio-udp-echo-server [--host H] [--port P]
#include <array>
#include <boost/asio.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

namespace asio = boost::asio;
using asio::ip::udp;

class Server {
 public:
  Server(asio::io_context& io, const udp::endpoint& endpoint) : socket_(io, endpoint) { receive(); }

 private:
  void receive() {
    socket_.async_receive_from(asio::buffer(data_), sender_,
                               [this](boost::system::error_code error, std::size_t size) {
                                 if (!error && size > 0) {
                                   send(size);
                                 } else {
                                   receive();
                                 }
                               });
  }

  void send(std::size_t size) {
    socket_.async_send_to(asio::buffer(data_, size), sender_,
                          [this](boost::system::error_code, std::size_t) { receive(); });
  }

  udp::socket socket_;
  udp::endpoint sender_;
  std::array<char, 65536> data_;
};

}  // namespace

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  int port = 8888;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 < argc && std::strcmp(argv[i], "--host") == 0) {
      host = argv[++i];
    } else if (i + 1 < argc && std::strcmp(argv[i], "--port") == 0) {
      port = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: bench-asio-udp-echo-server [--host H] [--port P]\n");
      return 2;
    }
  }
  try {
    asio::io_context io(1);
    Server server(io,
                  udp::endpoint(asio::ip::make_address(host), static_cast<unsigned short>(port)));
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&io](boost::system::error_code, int) { io.stop(); });
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-asio-udp-echo-server: %s\n", e.what());
    return 1;
  }
  return 0;
}
