// create_unix_datagram_endpoint: echo between path, abstract and autobound
// endpoints, connected and unconnected, the socket file's lifetime (stale
// files replaced, removed on close unless replaced or kept, removed when the
// loop closes), and long datagrams.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <string>

#include "support/datagram_recorder.hpp"
#include "support/loopback.hpp"
#include "support/temp_dir.hpp"

namespace tulip::testing {
namespace {

DatagramEndpoint<DatagramEcho> start_echo(EventLoop& loop, const std::string& path,
                                          UnixDatagramOptions options = {}) {
  return loop.run_until_complete(loop.create_unix_datagram_endpoint(
      [] { return std::make_shared<DatagramEcho>(); }, path, std::nullopt, options));
}

SocketAddress path_address(const std::string& path) { return *SocketAddress::from_path(path); }

// Runs the loop until `transport` has released its protocol (and closed its socket).
void run_iterations_until_released(EventLoop& loop,
                                   const std::shared_ptr<DatagramTransport>& transport) {
  EXPECT_TRUE(run_until(loop, [&] { return transport->get_datagram_protocol() == nullptr; }));
}

TEST(UnixDatagramTest, PathEndpointsEchoAndReportPaths) {
  EventLoop loop;
  TempDir dir;
  std::string server_path = dir.file("server.sock");
  std::string client_path = dir.file("client.sock");
  auto server = start_echo(loop, server_path);
  EXPECT_EQ(server.transport->get_extra_info<SocketAddress>("sockname")->path(), server_path);
  EXPECT_FALSE(server.transport->get_extra_info<SocketAddress>("peername"));
  auto client = std::make_shared<RecordingDatagramProtocol>();
  auto endpoint = loop.run_until_complete(
      loop.create_unix_datagram_endpoint([client] { return client; }, client_path, server_path));
  EXPECT_EQ(client->made, 1);
  EXPECT_EQ(endpoint.transport->get_extra_info<SocketAddress>("peername")->path(), server_path);
  EXPECT_EQ(endpoint.transport->get_extra_info<SocketAddress>("sockname")->path(), client_path);
  endpoint.transport->sendto("ping");
  endpoint.transport->sendto(std::string(100 * 1024, 'u'));  // longer than any UDP datagram
  endpoint.transport->sendto("");
  ASSERT_TRUE(run_until(loop, [&] { return client->datagrams.size() == 3; }));
  EXPECT_EQ(client->datagrams[0].first, "ping");
  EXPECT_EQ(client->datagrams[0].second.path(), server_path);
  EXPECT_EQ(client->datagrams[0].second.to_string(), server_path);
  EXPECT_EQ(client->datagrams[1].first, std::string(100 * 1024, 'u'));
  EXPECT_EQ(client->datagrams[2].first, "");
  EXPECT_TRUE(client->errors.empty());
  // A connected endpoint sends only to its peer.
  EXPECT_THROW(endpoint.transport->sendto("x", path_address(dir.file("other.sock"))),
               std::invalid_argument);
  endpoint.transport->sendto("again", path_address(server_path));  // its own peer: allowed
  ASSERT_TRUE(run_until(loop, [&] { return client->datagrams.size() == 4; }));
  endpoint.transport->close();
  server.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
  run_until(loop, [&] { return !exists(server_path); });
  EXPECT_FALSE(exists(client_path));
  EXPECT_FALSE(exists(server_path));
}

TEST(UnixDatagramTest, AbstractNamesAndAutobindHaveNoFiles) {
  EventLoop loop;
  std::string name = abstract_name("dgram-echo");
  auto server = start_echo(loop, name);
  EXPECT_EQ(server.transport->get_extra_info<SocketAddress>("sockname")->path(), name);
  auto client = std::make_shared<RecordingDatagramProtocol>();
  // An empty local path: the kernel picks a unique abstract name, so replies can come back.
  auto endpoint = loop.run_until_complete(
      loop.create_unix_datagram_endpoint([client] { return client; }, "", name));
  auto local = endpoint.transport->get_extra_info<SocketAddress>("sockname");
  ASSERT_TRUE(local);
  EXPECT_TRUE(local->is_abstract());
  EXPECT_GT(local->path().size(), 1u);
  endpoint.transport->sendto("abstract");
  ASSERT_TRUE(run_until(loop, [&] { return client->datagrams.size() == 1; }));
  EXPECT_EQ(client->datagrams[0].first, "abstract");
  EXPECT_TRUE(client->datagrams[0].second.is_abstract());
  EXPECT_EQ(client->datagrams[0].second.to_string().rfind("b'\\x00", 0), 0u);
  endpoint.transport->abort();
  server.transport->abort();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
}

TEST(UnixDatagramTest, UnconnectedEndpointSendsToExplicitPathsAndUnboundSendersAreUnnamed) {
  EventLoop loop;
  TempDir dir;
  std::string server_path = dir.file("s");
  auto server = std::make_shared<RecordingDatagramProtocol>();
  auto server_endpoint = loop.run_until_complete(
      loop.create_unix_datagram_endpoint([server] { return server; }, server_path));
  // Neither address: an unbound socket that can only send.
  auto sender = std::make_shared<RecordingDatagramProtocol>();
  auto sender_endpoint = loop.run_until_complete(
      loop.create_unix_datagram_endpoint([sender] { return sender; }, std::nullopt));
  EXPECT_THROW(sender_endpoint.transport->sendto("where?"), std::invalid_argument);
  sender_endpoint.transport->sendto("hello", path_address(server_path));
  ASSERT_TRUE(run_until(loop, [&] { return server->datagrams.size() == 1; }));
  EXPECT_EQ(server->datagrams[0].first, "hello");
  // Unnamed: the kernel gives no address, and Python's None is what it prints.
  EXPECT_TRUE(server->datagrams[0].second.empty());
  EXPECT_EQ(server->datagrams[0].second.to_string(), "None");
  // Answering an unnamed sender is an error of that datagram, not of the endpoint.
  server_endpoint.transport->sendto("reply", server->datagrams[0].second);
  ASSERT_TRUE(run_until(loop, [&] { return !server->errors.empty(); }));
  EXPECT_FALSE(server_endpoint.transport->is_closing());
  sender_endpoint.transport->close();
  server_endpoint.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return server->lost == 1 && sender->lost == 1; }));
}

TEST(UnixDatagramTest, StaleFileIsReplacedAndTheFileLivesAsLongAsTheEndpoint) {
  EventLoop loop;
  TempDir dir;
  std::string path = dir.file("stale.sock");
  {
    // An endpoint that died without cleaning up.
    int dead = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(::bind(dead, path_address(path).data(), path_address(path).size()), 0);
    ::close(dead);
  }
  ASSERT_TRUE(exists(path));
  auto server = start_echo(loop, path);
  EXPECT_TRUE(exists(path));
  server.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return !exists(path); }));

  // cleanup_socket = false keeps the file.
  UnixDatagramOptions keep;
  keep.cleanup_socket = false;
  auto kept = start_echo(loop, path, keep);
  kept.transport->close();
  run_iterations_until_released(loop, kept.transport);
  EXPECT_TRUE(exists(path));
  ::unlink(path.c_str());

  // A file replaced meanwhile is not the endpoint's to remove.
  auto replaced = start_echo(loop, path);
  ::unlink(path.c_str());
  int other = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(::bind(other, path_address(path).data(), path_address(path).size()), 0);
  replaced.transport->close();
  run_iterations_until_released(loop, replaced.transport);
  EXPECT_TRUE(exists(path));
  ::close(other);
}

TEST(UnixDatagramTest, ClosingTheLoopRemovesTheFile) {
  TempDir dir;
  std::string path = dir.file("loop.sock");
  {
    EventLoop loop;
    start_echo(loop, path);
    EXPECT_TRUE(exists(path));
  }
  EXPECT_FALSE(exists(path));
}

}  // namespace
}  // namespace tulip::testing
