// Boost.Asio echo server, callback style, shaped like Asio's own
// async_tcp_echo_server example: a connection object reads some bytes, writes them all
// back with async_write, then reads again, so writing is flow-controlled by
// construction. Single-threaded: io_context(1). TCP_NODELAY; a connection stays
// open until the peer closes it.
//
// Usage: bench-asio-echo-server [--host H] [--port P] [--backlog N]
#include <array>
#include <boost/asio.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  explicit Connection(tcp::socket socket) : socket_(std::move(socket)) {}

  void start() {
    socket_.set_option(tcp::no_delay(true));
    read();
  }

 private:
  void read() {
    socket_.async_read_some(
        asio::buffer(data_),
        [self = shared_from_this()](boost::system::error_code error, std::size_t size) {
          if (!error) self->write(size);
        });
  }

  void write(std::size_t size) {
    asio::async_write(socket_, asio::buffer(data_, size),
                      [self = shared_from_this()](boost::system::error_code error, std::size_t) {
                        if (!error) self->read();
                      });
  }

  tcp::socket socket_;
  std::array<char, 64 * 1024> data_;
};

class Server {
 public:
  Server(asio::io_context& io, const tcp::endpoint& endpoint, int backlog) : acceptor_(io) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(backlog);
    accept();
  }

 private:
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code error, tcp::socket socket) {
      if (!error) std::make_shared<Connection>(std::move(socket))->start();
      accept();
    });
  }

  tcp::acceptor acceptor_;
};

}  // namespace

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  int port = 8888;
  int backlog = 1024;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 < argc && std::strcmp(argv[i], "--host") == 0) {
      host = argv[++i];
    } else if (i + 1 < argc && std::strcmp(argv[i], "--port") == 0) {
      port = std::atoi(argv[++i]);
    } else if (i + 1 < argc && std::strcmp(argv[i], "--backlog") == 0) {
      backlog = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: bench-asio-echo-server [--host H] [--port P] [--backlog N]\n");
      return 2;
    }
  }
  try {
    asio::io_context io(1);
    Server server(io,
                  tcp::endpoint(asio::ip::make_address(host), static_cast<unsigned short>(port)),
                  backlog);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&io](boost::system::error_code, int) { io.stop(); });
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-asio-echo-server: %s\n", e.what());
    return 1;
  }
  return 0;
}
