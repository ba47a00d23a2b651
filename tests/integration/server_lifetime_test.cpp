// How long a Server lives, and which connections are its own: a closed
// server lives while connections it accepted remain (they know it by a plain
// pointer), and close_clients() / abort_clients() reach exactly those.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>

#include "support/loopback.hpp"

namespace tulip::testing {
namespace {

class EchoProtocol final : public Protocol {
 public:
  void connection_made(Transport& t) override { transport_ = &t; }
  void data_received(std::string_view data) override { transport_->write(data); }

 private:
  Transport* transport_ = nullptr;
};

std::shared_ptr<Server> start_echo_server(EventLoop& loop) {
  return loop.run_until_complete(
      loop.create_server([] { return std::make_shared<EchoProtocol>(); }, "127.0.0.1", 0));
}

SocketAddress address_of(const std::shared_ptr<Server>& server) {
  return server->sockets().at(0).sockname;
}

TEST(ServerLifetime, AClosedServerLivesWhileItsConnectionsDo) {
  EventLoop loop;
  auto server = start_echo_server(loop);
  RawSocket client = RawSocket::connect_to(address_of(server));
  ASSERT_TRUE(run_until(loop, [&] { return server->connection_count() == 1; }));
  std::weak_ptr<Server> watched = server;
  server->close();
  server.reset();  // nobody but its connection holds it now
  ASSERT_FALSE(watched.expired());
  // The connection still works, and still knows its server.
  client.send_all("ping");
  auto reader = std::async(std::launch::async, [&] { return client.read_exactly(4); });
  ASSERT_TRUE(run_until(
      loop, [&] { return reader.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }));
  EXPECT_EQ(reader.get(), "ping");
  EXPECT_EQ(watched.lock()->connection_count(), 1u);
  client.reset();
  // Its last connection released: the server goes with it.
  ASSERT_TRUE(run_until(loop, [&] { return watched.expired(); }));
}

TEST(ServerLifetime, ClosingTheLoopEndsAClosedServerWithConnections) {
  std::weak_ptr<Server> watched;
  RawSocket client;
  {
    EventLoop loop;
    auto server = start_echo_server(loop);
    client = RawSocket::connect_to(address_of(server));
    ASSERT_TRUE(run_until(loop, [&] { return server->connection_count() == 1; }));
    watched = server;
    server->close();
  }
  // The loop ended the connection, which released the server's own reference.
  EXPECT_TRUE(watched.expired());
}

TEST(ServerLifetime, CloseClientsReachesOnlyThisServersConnections) {
  EventLoop loop;
  auto first = start_echo_server(loop);
  auto second = start_echo_server(loop);
  RawSocket a = RawSocket::connect_to(address_of(first));
  RawSocket b = RawSocket::connect_to(address_of(second));
  // A connection of the loop's own that no server accepted.
  auto outgoing = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, outgoing);
  ASSERT_TRUE(run_until(
      loop, [&] { return first->connection_count() == 1 && second->connection_count() == 1; }));
  first->close_clients();
  ASSERT_TRUE(run_until(loop, [&] { return first->connection_count() == 0; }));
  EXPECT_TRUE(a.at_eof());
  EXPECT_EQ(second->connection_count(), 1u);
  EXPECT_FALSE(connection.transport->is_closing());
  second->abort_clients();
  ASSERT_TRUE(run_until(loop, [&] { return second->connection_count() == 0; }));
  EXPECT_FALSE(connection.transport->is_closing());
  EXPECT_EQ(outgoing->lost, 0);
}

}  // namespace
}  // namespace tulip::testing
