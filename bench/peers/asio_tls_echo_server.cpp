// Boost.Asio TLS echo server: ssl::stream<tcp::socket>, shaped like the plain
// one (asio_echo_server.cpp) and like Asio's own ssl server example: a
// connection completes its handshake, reads some bytes, writes them all back
// with async_write, then reads again. Single-threaded: io_context(1).
// TCP_NODELAY; a connection stays open until the peer closes it. The context
// is set up as tulip's: TLS 1.2 or newer, no renegotiation, OpenSSL's record
// buffers released while idle.
//
// Usage: bench-asio-tls-echo-server --cert FILE --key FILE [--host H] [--port P] [--backlog N]
#include <openssl/ssl.h>

#include <array>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, asio::ssl::context& context)
      : stream_(std::move(socket), context) {}

  void start() {
    stream_.lowest_layer().set_option(tcp::no_delay(true));
    stream_.async_handshake(asio::ssl::stream_base::server,
                            [self = shared_from_this()](boost::system::error_code error) {
                              if (!error) self->read();
                            });
  }

 private:
  void read() {
    stream_.async_read_some(
        asio::buffer(data_),
        [self = shared_from_this()](boost::system::error_code error, std::size_t size) {
          if (!error) self->write(size);
        });
  }

  void write(std::size_t size) {
    asio::async_write(stream_, asio::buffer(data_, size),
                      [self = shared_from_this()](boost::system::error_code error, std::size_t) {
                        if (!error) self->read();
                      });
  }

  asio::ssl::stream<tcp::socket> stream_;
  std::array<char, 64 * 1024> data_;
};

class Server {
 public:
  Server(asio::io_context& io, const tcp::endpoint& endpoint, int backlog,
         asio::ssl::context& context)
      : acceptor_(io), context_(context) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(backlog);
    accept();
  }

 private:
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code error, tcp::socket socket) {
      if (!error) std::make_shared<Connection>(std::move(socket), context_)->start();
      accept();
    });
  }

  tcp::acceptor acceptor_;
  asio::ssl::context& context_;
};

}  // namespace

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  const char* cert = nullptr;
  const char* key = nullptr;
  int port = 8888;
  int backlog = 1024;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--host") == 0) {
      host = argv[i + 1];
    } else if (std::strcmp(argv[i], "--port") == 0) {
      port = std::atoi(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--backlog") == 0) {
      backlog = std::atoi(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--cert") == 0) {
      cert = argv[i + 1];
    } else if (std::strcmp(argv[i], "--key") == 0) {
      key = argv[i + 1];
    }
  }
  if (cert == nullptr || key == nullptr) {
    std::fprintf(stderr,
                 "usage: bench-asio-tls-echo-server --cert FILE --key FILE [--host H] [--port P] "
                 "[--backlog N]\n");
    return 2;
  }
  try {
    asio::ssl::context context(asio::ssl::context::tls_server);
    context.use_certificate_chain_file(cert);
    context.use_private_key_file(key, asio::ssl::context::pem);
    SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_2_VERSION);
    SSL_CTX_set_options(context.native_handle(),
                        SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(context.native_handle(), SSL_MODE_RELEASE_BUFFERS);
    asio::io_context io(1);
    Server server(io,
                  tcp::endpoint(asio::ip::make_address(host), static_cast<unsigned short>(port)),
                  backlog, context);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&io](boost::system::error_code, int) { io.stop(); });
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-asio-tls-echo-server: %s\n", e.what());
    return 1;
  }
  return 0;
}
