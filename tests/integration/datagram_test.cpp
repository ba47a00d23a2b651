// create_datagram_endpoint over loopback: echo through connected and
// unconnected endpoints, IPv4 and IPv6, addresses, options and closing.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <stdexcept>
#include <string>

#include "support/datagram_recorder.hpp"
#include "support/loopback.hpp"

namespace tulip::testing {
namespace {

struct EchoServer {
  DatagramEndpoint<DatagramEcho> endpoint;
  SocketAddress address;
};

EchoServer start_echo(EventLoop& loop, const std::string& host = "127.0.0.1") {
  auto endpoint = loop.run_until_complete(loop.create_datagram_endpoint(
      [] { return std::make_shared<DatagramEcho>(); }, HostPort{host, 0}));
  auto address = endpoint.transport->get_extra_info<SocketAddress>("sockname");
  EXPECT_TRUE(address);
  return {endpoint, address.value_or(SocketAddress())};
}

bool ipv6_loopback_available() {
  int probe = ::socket(AF_INET6, SOCK_DGRAM, 0);
  auto loopback6 = SocketAddress::parse("::1", 0);
  bool ok = probe >= 0 && ::bind(probe, loopback6->data(), loopback6->size()) == 0;
  if (probe >= 0) ::close(probe);
  return ok;
}

TEST(DatagramTest, ConnectedEndpointEchoesThroughAServer) {
  EventLoop loop;
  EchoServer server = start_echo(loop);
  auto client = std::make_shared<RecordingDatagramProtocol>();
  auto endpoint = loop.run_until_complete(
      loop.create_datagram_endpoint([client] { return client; }, std::nullopt,
                                    HostPort{server.address.host(), server.address.port()}));
  EXPECT_EQ(client->made, 1);  // connection_made ran before the Future completed
  EXPECT_EQ(endpoint.transport->get_extra_info<SocketAddress>("peername"), server.address);
  auto local = endpoint.transport->get_extra_info<SocketAddress>("sockname");
  ASSERT_TRUE(local);
  EXPECT_EQ(local->family(), AF_INET);
  EXPECT_NE(local->port(), 0);

  endpoint.transport->sendto("ping");
  endpoint.transport->sendto(std::string(1400, 'x'), server.address);  // its own peer: allowed
  endpoint.transport->sendto("");                                      // an empty datagram
  ASSERT_TRUE(run_until(loop, [&] { return client->datagrams.size() == 3; }));
  EXPECT_EQ(client->datagrams[0].first, "ping");
  EXPECT_EQ(client->datagrams[0].second, server.address);
  EXPECT_EQ(client->datagrams[1].first, std::string(1400, 'x'));
  EXPECT_EQ(client->datagrams[2].first, "");
  EXPECT_TRUE(client->errors.empty());
  EXPECT_EQ(endpoint.transport->get_write_buffer_size(), 0u);

  endpoint.transport->close();
  EXPECT_TRUE(endpoint.transport->is_closing());
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
  EXPECT_FALSE(client->lost_error);
  EXPECT_EQ(endpoint.transport->get_extra_info<int>("socket"), -1);
  server.endpoint.transport->abort();
}

TEST(DatagramTest, UnconnectedEndpointSendsToExplicitAddresses) {
  EventLoop loop;
  EchoServer first = start_echo(loop);
  EchoServer second = start_echo(loop);
  auto client = std::make_shared<RecordingDatagramProtocol>();
  auto endpoint = loop.run_until_complete(
      loop.create_datagram_endpoint([client] { return client; }, HostPort{"127.0.0.1", 0}));
  EXPECT_FALSE(endpoint.transport->get_extra_info<SocketAddress>("peername"));
  endpoint.transport->sendto("to first", first.address);
  endpoint.transport->sendto("to second", second.address);
  ASSERT_TRUE(run_until(loop, [&] { return client->datagrams.size() == 2; }));
  for (auto& [data, from] : client->datagrams) {
    EXPECT_EQ(from, data == "to first" ? first.address : second.address);
  }
  EXPECT_THROW(endpoint.transport->sendto("nowhere"), std::invalid_argument);
  endpoint.transport->abort();
  first.endpoint.transport->abort();
  second.endpoint.transport->abort();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
}

TEST(DatagramTest, ConnectedEndpointRejectsOtherAddresses) {
  EventLoop loop;
  EchoServer server = start_echo(loop);
  EchoServer other = start_echo(loop);
  auto client = std::make_shared<RecordingDatagramProtocol>();
  auto endpoint = loop.run_until_complete(
      loop.create_datagram_endpoint([client] { return client; }, std::nullopt,
                                    HostPort{server.address.host(), server.address.port()}));
  try {
    endpoint.transport->sendto("x", other.address);
    ADD_FAILURE() << "sendto to another address was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(server.address.to_string()), std::string::npos)
        << e.what();
  }
  endpoint.transport->abort();
  server.endpoint.transport->abort();
  other.endpoint.transport->abort();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
}

TEST(DatagramTest, Ipv6EndpointsEcho) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback";
  EventLoop loop;
  EchoServer server = start_echo(loop, "::1");
  EXPECT_EQ(server.address.family(), AF_INET6);
  auto client = std::make_shared<RecordingDatagramProtocol>();
  auto endpoint = loop.run_until_complete(loop.create_datagram_endpoint(
      [client] { return client; }, std::nullopt, HostPort{"::1", server.address.port()}));
  endpoint.transport->sendto("six");
  ASSERT_TRUE(run_until(loop, [&] { return client->datagrams.size() == 1; }));
  EXPECT_EQ(client->datagrams[0].first, "six");
  EXPECT_EQ(client->datagrams[0].second.family(), AF_INET6);
  endpoint.transport->abort();
  server.endpoint.transport->abort();
}

TEST(DatagramTest, OptionsReachTheSocket) {
  EventLoop loop;
  DatagramOptions options;
  options.reuse_port = true;
  options.allow_broadcast = true;
  auto a = loop.run_until_complete(
      loop.create_datagram_endpoint([] { return std::make_shared<RecordingDatagramProtocol>(); },
                                    HostPort{"127.0.0.1", 0}, std::nullopt, options));
  auto port = a.transport->get_extra_info<SocketAddress>("sockname")->port();
  // A second endpoint shares the port through SO_REUSEPORT.
  auto b = loop.run_until_complete(
      loop.create_datagram_endpoint([] { return std::make_shared<RecordingDatagramProtocol>(); },
                                    HostPort{"127.0.0.1", port}, std::nullopt, options));
  int fd = a.transport->get_extra_info<int>("socket").value();
  int value = 0;
  socklen_t length = sizeof(value);
  ASSERT_EQ(::getsockopt(fd, SOL_SOCKET, SO_BROADCAST, &value, &length), 0);
  EXPECT_EQ(value, 1);
  ASSERT_EQ(::getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &value, &length), 0);
  EXPECT_EQ(value, 1);
  a.transport->abort();
  b.transport->abort();
  // Only a family: an unbound socket that can send anywhere of that family.
  DatagramOptions v4;
  v4.family = AF_INET;
  EchoServer server = start_echo(loop);
  auto client = std::make_shared<RecordingDatagramProtocol>();
  auto c = loop.run_until_complete(
      loop.create_datagram_endpoint([client] { return client; }, std::nullopt, std::nullopt, v4));
  c.transport->sendto("family only", server.address);
  ASSERT_TRUE(run_until(loop, [&] { return client->datagrams.size() == 1; }));
  c.transport->abort();
  server.endpoint.transport->abort();
  run_until(loop, [&] { return client->lost == 1; });
}

TEST(DatagramTest, CloseFlushesAndClosingTheLoopEndsEndpoints) {
  auto client = std::make_shared<RecordingDatagramProtocol>();
  {
    EventLoop loop;
    loop.run_until_complete(
        loop.create_datagram_endpoint([client] { return client; }, HostPort{"127.0.0.1", 0}));
    EXPECT_EQ(client->lost, 0);
  }
  EXPECT_EQ(client->lost, 1);
  EXPECT_EQ(client->lost_error, std::errc::connection_aborted);
}

}  // namespace
}  // namespace tulip::testing
