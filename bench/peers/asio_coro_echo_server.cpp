// Boost.Asio echo server written with C++20 coroutines: the peer of tulip's
// streams echo server. One coroutine per connection (co_spawn + use_awaitable)
// reads some bytes with async_read_some and writes them all back with
// async_write before reading again, so writing is flow-controlled by
// construction, as in Asio's own coroutine echo example. Single-threaded:
// io_context(1). TCP_NODELAY; a connection stays open until the peer closes it.
//
// Usage: bench-asio-coro-echo-server [--host H] [--port P] [--backlog N]
#include <array>
#include <boost/asio.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

// Reads take up to 256 KiB, as tulip's streams server and the loops' own reads
// do; the buffer lives in the coroutine frame.
awaitable<void> echo(tcp::socket socket) {
  socket.set_option(tcp::no_delay(true));
  std::array<char, 256 * 1024> data;
  try {
    for (;;) {
      std::size_t size = co_await socket.async_read_some(asio::buffer(data), use_awaitable);
      co_await asio::async_write(socket, asio::buffer(data, size), use_awaitable);
    }
  } catch (const boost::system::system_error&) {
    // EOF or a reset: the connection is over, the socket closes with the frame.
  }
}

awaitable<void> listen(tcp::acceptor& acceptor) {
  for (;;) {
    tcp::socket socket = co_await acceptor.async_accept(use_awaitable);
    asio::co_spawn(acceptor.get_executor(), echo(std::move(socket)), asio::detached);
  }
}

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
      std::fprintf(stderr,
                   "usage: bench-asio-coro-echo-server [--host H] [--port P] [--backlog N]\n");
      return 2;
    }
  }
  try {
    asio::io_context io(1);
    tcp::endpoint endpoint(asio::ip::make_address(host), static_cast<unsigned short>(port));
    tcp::acceptor acceptor(io);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(backlog);
    // An accept error (EMFILE, say) ends the accept loop and is reported.
    asio::co_spawn(io, listen(acceptor), [](std::exception_ptr error) {
      if (!error) return;
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "bench-asio-coro-echo-server: accept: %s\n", e.what());
      }
    });
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&io](boost::system::error_code, int) { io.stop(); });
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench-asio-coro-echo-server: %s\n", e.what());
    return 1;
  }
  return 0;
}
