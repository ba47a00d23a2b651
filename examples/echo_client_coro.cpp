// The seed's asyncio low-level echo client as a coroutine, line for line:
// `async def tcp_echo_client` becomes a tulip::Task, `await` becomes co_await,
// and asyncio.run becomes tulip::run. Run tulip-echo-server first.
#include <sys/socket.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "tulip/tulip.hpp"

class EchoClientProtocol : public tulip::Protocol {
 public:
  EchoClientProtocol(std::string message, tulip::Future<bool> on_con_lost)
      : message_(std::move(message)), on_con_lost_(std::move(on_con_lost)) {}

  void connection_made(tulip::Transport& transport) override {
    // `socket.getpeername()`
    auto server_address = transport.get_extra_info<tulip::SocketAddress>("peername");
    std::printf("connected to %s\n", server_address->to_string().c_str());

    int sock = *transport.get_extra_info<int>("socket");
    int size = 0;
    socklen_t length = sizeof(size);
    ::getsockopt(sock, SOL_SOCKET, SO_RCVBUF, &size, &length);
    std::printf("recv_buf_size: %d\n", size);
    length = sizeof(size);
    ::getsockopt(sock, SOL_SOCKET, SO_SNDBUF, &size, &length);
    std::printf("send_buf_size: %d\n", size);

    transport.write(message_);
    std::printf("sent: %s\n", message_.c_str());
  }

  void data_received(std::string_view data) override {
    std::printf("recv: %.*s\n", static_cast<int>(data.size()), data.data());
  }

  void connection_lost(std::error_code) override {
    std::printf("The server closed the connection\n");
    on_con_lost_.set_result(true);
  }

 private:
  std::string message_;
  tulip::Future<bool> on_con_lost_;
};

tulip::Task<void> tcp_echo_client(std::string data, std::uint16_t port) {
  tulip::EventLoop& loop = tulip::get_running_loop();

  tulip::Future<bool> on_con_lost = loop.create_future<bool>();

  // The factory captures by reference: `data` and `on_con_lost` live in this
  // coroutine's frame, which outlives the connection attempt.
  auto [transport, protocol] = co_await loop.create_connection(
      [&] { return std::make_shared<EchoClientProtocol>(data, on_con_lost); }, "127.0.0.1", port);

  // Wait until the protocol signals that the connection
  // is lost and close the transport.
  struct Finally {
    std::shared_ptr<tulip::Transport> transport;
    ~Finally() { transport->close(); }
  } finally{transport};
  co_await on_con_lost;
}

int main(int argc, char** argv) {
  std::uint16_t port = argc > 1 ? static_cast<std::uint16_t>(std::atoi(argv[1])) : 8888;
  try {
    tulip::run([&] { return tcp_echo_client("Hello World!", port); });
  } catch (const std::exception& error) {
    std::fprintf(stderr, "echo_client_coro: %s\n", error.what());
    return 1;
  }
  return 0;
}
