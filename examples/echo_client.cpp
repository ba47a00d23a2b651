// The asyncio low-level echo client, line for line in tulip (the README's sample).
// Run tulip-echo-server first; tools/echo_client is the full command-line version.
#include <sys/socket.h>

#include <cstdio>
#include <memory>
#include <string>

#include "tulip/tulip.hpp"

class EchoClientProtocol : public tulip::Protocol {
 public:
  EchoClientProtocol(std::string message, tulip::Future<bool> on_con_lost)
      : message_(std::move(message)), on_con_lost_(std::move(on_con_lost)) {}

  void connection_made(tulip::Transport& transport) override {
    auto peer = transport.get_extra_info<tulip::SocketAddress>("peername");
    std::printf("connected to %s\n", peer->to_string().c_str());
    int fd = *transport.get_extra_info<int>("socket");
    int size = 0;
    socklen_t length = sizeof(size);
    ::getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, &length);
    std::printf("recv_buf_size: %d\n", size);
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

int main(int argc, char** argv) {
  std::uint16_t port = argc > 1 ? static_cast<std::uint16_t>(std::atoi(argv[1])) : 8888;
  tulip::EventLoop loop;
  tulip::Future<bool> on_con_lost = loop.create_future<bool>();
  try {
    auto [transport, protocol] = loop.run_until_complete(loop.create_connection(
        [&] { return std::make_shared<EchoClientProtocol>("Hello World!", on_con_lost); },
        "127.0.0.1", port));
    loop.run_until_complete(on_con_lost);  // resolved by connection_lost
    transport->close();                    // a no-op by now, as in the seed's finally:
  } catch (const std::exception& error) {
    std::fprintf(stderr, "echo_client: %s\n", error.what());
    return 1;
  }
  return 0;
}
