// Unix domain stream sockets: create_unix_connection / create_unix_server,
// abstract names, peername/sockname as paths, peercred, the socket file's
// lifetime, servers on adopted sockets and connect_accepted_socket.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <future>
#include <string>

#include "support/loopback.hpp"
#include "support/temp_dir.hpp"

namespace tulip::testing {
namespace {

std::shared_ptr<Server> start_unix_echo(EventLoop& loop, const std::string& path,
                                        UnixServerOptions options = {}) {
  return loop.run_until_complete(
      loop.create_unix_server([] { return std::make_shared<BackpressuredEcho>(); }, path, options));
}

// Sends `message` on a new Unix connection to `path`, half-closes, and returns
// what came back before the server closed.
std::string echo_over_unix(EventLoop& loop, const std::string& path, const std::string& message) {
  auto client = std::make_shared<RecordingProtocol>();
  client->on_made = [&message](Transport& t) {
    t.write(message);
    t.write_eof();
  };
  loop.run_until_complete(loop.create_unix_connection([client] { return client; }, path));
  EXPECT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
  EXPECT_FALSE(client->lost_error) << client->lost_error.message();
  return client->received;
}

TEST(UnixSocketTest, EchoesOverAPathAndReportsPathsAndCredentials) {
  TempDir dir;
  std::string path = dir.file("echo.sock");
  EventLoop loop;
  auto server = start_unix_echo(loop, path);
  ASSERT_EQ(server->sockets().size(), 1u);
  EXPECT_EQ(server->sockets()[0].sockname.family(), AF_UNIX);
  EXPECT_EQ(server->sockets()[0].sockname.path(), path);
  EXPECT_EQ(server->sockets()[0].sockname.to_string(), path);  // Python prints the path

  auto client = std::make_shared<RecordingProtocol>();
  auto connection =
      loop.run_until_complete(loop.create_unix_connection([client] { return client; }, path));
  auto peer = connection.transport->get_extra_info<SocketAddress>("peername");
  ASSERT_TRUE(peer);
  EXPECT_EQ(peer->family(), AF_UNIX);
  EXPECT_EQ(peer->path(), path);
  auto local = connection.transport->get_extra_info<SocketAddress>("sockname");
  ASSERT_TRUE(local);
  EXPECT_EQ(local->family(), AF_UNIX);
  EXPECT_EQ(local->path(), "");  // an unbound client socket is unnamed
  auto credentials = connection.transport->get_extra_info<PeerCredentials>("peercred");
  ASSERT_TRUE(credentials);
  EXPECT_EQ(credentials->pid, ::getpid());
  EXPECT_EQ(credentials->uid, ::geteuid());
  EXPECT_EQ(credentials->gid, ::getegid());
  EXPECT_TRUE(connection.transport->can_write_eof());

  std::string message = pattern(300 * 1024);  // more than one read, and than the buffer marks
  connection.transport->write(message);
  connection.transport->write_eof();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
  EXPECT_EQ(client->received.size(), message.size());
  EXPECT_TRUE(client->received == message);
  EXPECT_TRUE(client->eof);
  server->close();
  loop.run_until_complete(server->wait_closed());
}

TEST(UnixSocketTest, AbstractNamesHaveNoFileAndPrintAsBytes) {
  std::string name = abstract_name("abstract");
  EventLoop loop;
  auto server = start_unix_echo(loop, name);
  SocketAddress bound = server->sockets().at(0).sockname;
  EXPECT_TRUE(bound.is_abstract());
  EXPECT_EQ(bound.path(), name);
  EXPECT_EQ(bound.to_string(), "b'\\x00" + name.substr(1) + "'");
  EXPECT_EQ(echo_over_unix(loop, name, "abstract hello"), "abstract hello");
  server->close();
}

TEST(UnixSocketTest, BufferedProtocolAndFlowControlWorkAsOnTcp) {
  TempDir dir;
  std::string path = dir.file("flow.sock");
  EventLoop loop;
  // A server that does not read until told: the client's writes back up.
  Transport* accepted = nullptr;
  auto server = loop.run_until_complete(loop.create_unix_server(
      [&accepted] {
        auto protocol = std::make_shared<RecordingProtocol>();
        protocol->on_made = [&accepted](Transport& t) {
          accepted = &t;
          t.pause_reading();
        };
        return protocol;
      },
      path));
  struct Buffered final : BufferedProtocol {
    std::span<std::byte> get_buffer(std::size_t) override { return memory; }
    void buffer_updated(std::size_t bytes) override { received += bytes; }
    void pause_writing() override { ++pauses; }
    void resume_writing() override { ++resumes; }
    std::byte memory_bytes[1024];
    std::span<std::byte> memory{memory_bytes};
    std::size_t received = 0;
    int pauses = 0;
    int resumes = 0;
  };
  auto client = std::make_shared<Buffered>();
  auto connection =
      loop.run_until_complete(loop.create_unix_connection([client] { return client; }, path));
  ASSERT_TRUE(run_until(loop, [&] { return accepted != nullptr; }));
  std::string block(64 * 1024, 'x');
  for (int i = 0; i < 64 && client->pauses == 0; ++i) connection.transport->write(block);
  EXPECT_EQ(client->pauses, 1);
  EXPECT_GT(connection.transport->get_write_buffer_size(), 0u);
  accepted->resume_reading();  // the server reads; the client's buffer drains
  ASSERT_TRUE(run_until(loop, [&] { return client->resumes == 1; }));
  // And the other way: the server writes into the buffered protocol.
  accepted->write(std::string(5000, 'y'));
  ASSERT_TRUE(run_until(loop, [&] { return client->received == 5000; }));
  connection.transport->abort();
  server->close();
  server->abort_clients();
  loop.run_until_complete(server->wait_closed());
}

TEST(UnixSocketTest, SocketFileIsRemovedOnCloseUnlessReplacedOrKept) {
  TempDir dir;
  EventLoop loop;
  std::string path = dir.file("cleanup.sock");
  auto server = start_unix_echo(loop, path);
  EXPECT_TRUE(exists(path));
  server->close();
  EXPECT_FALSE(exists(path));

  // Replaced meanwhile (another server removed ours and bound its own): kept.
  server = start_unix_echo(loop, path);
  ASSERT_EQ(::unlink(path.c_str()), 0);
  int other = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto address = SocketAddress::from_path(path);
  ASSERT_EQ(::bind(other, address->data(), address->size()), 0);
  server->close();
  EXPECT_TRUE(exists(path));
  ::close(other);
  ::unlink(path.c_str());

  // cleanup_socket off: kept.
  UnixServerOptions keep;
  keep.cleanup_socket = false;
  server = start_unix_echo(loop, path, keep);
  server->close();
  EXPECT_TRUE(exists(path));
}

TEST(UnixSocketTest, StaleSocketFileIsReplaced) {
  TempDir dir;
  std::string path = dir.file("stale.sock");
  // A socket file whose server is gone: bound, never listening, closed.
  int dead = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto address = SocketAddress::from_path(path);
  ASSERT_EQ(::bind(dead, address->data(), address->size()), 0);
  ::close(dead);
  ASSERT_TRUE(exists(path));
  EventLoop loop;
  auto server = start_unix_echo(loop, path);
  EXPECT_EQ(echo_over_unix(loop, path, "fresh"), "fresh");
  server->close();
  EXPECT_FALSE(exists(path));
}

TEST(UnixSocketTest, ConnectAcceptedSocketTakesAUnixSocketpair) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  RawSocket peer(pair[1]);
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto connection = loop.run_until_complete(
      loop.connect_accepted_socket([protocol] { return protocol; }, pair[0]));
  EXPECT_EQ(connection.transport->get_extra_info<SocketAddress>("peername")->family(), AF_UNIX);
  auto credentials = connection.transport->get_extra_info<PeerCredentials>("peercred");
  ASSERT_TRUE(credentials);
  EXPECT_EQ(credentials->pid, ::getpid());
  peer.send_all("over the pair");
  peer.shutdown_write();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_EQ(protocol->received, "over the pair");
}

TEST(UnixSocketTest, ServersRunOnAdoptedListeningSockets) {
  EventLoop loop;
  // TCP, as systemd would pass it.
  RawSocket tcp = RawSocket::listen_on("127.0.0.1");
  SocketAddress tcp_address = tcp.address();
  auto tcp_server = loop.run_until_complete(
      loop.create_server([] { return std::make_shared<BackpressuredEcho>(); }, tcp.release()));
  EXPECT_EQ(tcp_server->sockets().at(0).sockname, tcp_address);
  auto client = std::make_shared<RecordingProtocol>();
  client->on_made = [](Transport& t) {
    t.write("tcp");
    t.write_eof();
  };
  loop.run_until_complete(
      loop.create_connection([client] { return client; }, tcp_address.host(), tcp_address.port()));
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
  EXPECT_EQ(client->received, "tcp");

  // Unix, through create_unix_server(sock): the file is the caller's and stays.
  TempDir dir;
  std::string path = dir.file("adopted.sock");
  int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto address = SocketAddress::from_path(path);
  ASSERT_EQ(::bind(listener, address->data(), address->size()), 0);
  ASSERT_EQ(::listen(listener, 8), 0);
  auto unix_server = loop.run_until_complete(
      loop.create_unix_server([] { return std::make_shared<BackpressuredEcho>(); }, listener));
  EXPECT_EQ(echo_over_unix(loop, path, "adopted"), "adopted");
  unix_server->close();
  tcp_server->close();
  EXPECT_TRUE(exists(path));
}

TEST(UnixSocketTest, StartServingLaterOnAUnixServer) {
  TempDir dir;
  std::string path = dir.file("later.sock");
  EventLoop loop;
  UnixServerOptions options;
  options.start_serving = false;
  auto server = start_unix_echo(loop, path, options);
  EXPECT_FALSE(server->is_serving());
  server->start_serving();
  EXPECT_TRUE(server->is_serving());
  EXPECT_EQ(echo_over_unix(loop, path, "later"), "later");
  server->close();
}

}  // namespace
}  // namespace tulip::testing
