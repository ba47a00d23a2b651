// The loop's socket operations (sock_*): connect, accept, send and receive on
// non-blocking sockets the test owns, stream and datagram.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "support/loopback.hpp"

namespace tulip::testing {
namespace {

// A non-blocking socket that closes itself.
struct Socket {
  explicit Socket(int domain, int type)
      : fd(::socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) {}
  explicit Socket(int adopted) : fd(adopted) {}
  ~Socket() {
    if (fd >= 0) ::close(fd);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd;
};

SocketAddress bind_loopback(int fd) {
  auto any = SocketAddress::parse("127.0.0.1", 0);
  EXPECT_EQ(::bind(fd, any->data(), any->size()), 0);
  return SocketAddress::local_of(fd);
}

TEST(SocketOperationsTest, ConnectAcceptSendallAndRecvOverTcp) {
  EventLoop loop;
  Socket listener(AF_INET, SOCK_STREAM);
  SocketAddress address = bind_loopback(listener.fd);
  ASSERT_EQ(::listen(listener.fd, 4), 0);
  auto accepted = loop.sock_accept(listener.fd);
  Socket client(AF_INET, SOCK_STREAM);
  loop.run_until_complete(loop.sock_connect(client.fd, address));
  auto [server_fd, peer] = loop.run_until_complete(accepted);
  Socket server(server_fd);
  EXPECT_EQ(peer, SocketAddress::local_of(client.fd));
  EXPECT_NE(::fcntl(server.fd, F_GETFL) & O_NONBLOCK, 0);

  // More than the socket buffers hold: sock_sendall has to wait for writability.
  std::string message = pattern(4 * 1024 * 1024);
  auto sent = loop.sock_sendall(client.fd, message);
  std::string received;
  bool eof = false;
  std::function<void()> read_more = [&] {
    loop.sock_recv(server.fd, 65536).add_done_callback([&](Future<std::string>& chunk) {
      if (chunk.result().empty()) {
        eof = true;
        return;
      }
      received += chunk.result();
      read_more();
    });
  };
  read_more();
  loop.run_until_complete(sent);
  ::shutdown(client.fd, SHUT_WR);
  ASSERT_TRUE(run_until(loop, [&] { return eof; }));
  EXPECT_EQ(received.size(), message.size());
  EXPECT_TRUE(received == message);
}

TEST(SocketOperationsTest, RecvWaitsForDataAndRecvIntoFillsTheBuffer) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair), 0);
  Socket a(pair[0]), b(pair[1]);
  EventLoop loop;
  auto pending = loop.sock_recv(a.fd, 100);
  for (int i = 0; i < 3; ++i) {
    loop.stop();
    loop.run_forever();
  }
  EXPECT_FALSE(pending.done());  // nothing sent yet
  ASSERT_EQ(::send(b.fd, "late", 4, 0), 4);
  EXPECT_EQ(loop.run_until_complete(pending), "late");
  // The reader it installed is gone: the descriptor is free for another one.
  bool fired = false;
  loop.add_reader(a.fd, [&] { fired = true; });
  EXPECT_TRUE(loop.remove_reader(a.fd));
  EXPECT_FALSE(fired);

  std::byte buffer[8];
  ASSERT_EQ(::send(b.fd, "0123456789", 10, 0), 10);
  EXPECT_EQ(loop.run_until_complete(loop.sock_recv_into(a.fd, buffer)), 8u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buffer), 8), "01234567");
  EXPECT_EQ(loop.run_until_complete(loop.sock_recv(a.fd, 100)), "89");
}

TEST(SocketOperationsTest, DatagramsWithSendtoAndRecvfrom) {
  EventLoop loop;
  Socket a(AF_INET, SOCK_DGRAM), b(AF_INET, SOCK_DGRAM);
  SocketAddress a_address = bind_loopback(a.fd);
  SocketAddress b_address = bind_loopback(b.fd);
  auto waiting = loop.sock_recvfrom(b.fd, 1024);
  EXPECT_EQ(loop.run_until_complete(loop.sock_sendto(a.fd, "hello b", b_address)), 7u);
  auto [data, sender] = loop.run_until_complete(waiting);
  EXPECT_EQ(data, "hello b");
  EXPECT_EQ(sender, a_address);
  std::byte buffer[4];
  loop.run_until_complete(loop.sock_sendto(b.fd, "truncated", a_address));
  auto [size, from] = loop.run_until_complete(loop.sock_recvfrom_into(a.fd, buffer));
  EXPECT_EQ(size, 4u);
  EXPECT_EQ(from, b_address);
  // A UDP connect through sock_connect.
  loop.run_until_complete(loop.sock_connect(a.fd, b_address));
  EXPECT_EQ(SocketAddress::peer_of(a.fd), b_address);
}

}  // namespace
}  // namespace tulip::testing
