// Unix sockets given bad input: paths too long for sun_path, missing or
// unwritable directories, a socket file where a server is live (never
// stolen), a file that is not a socket, nobody listening, and servers asked to
// adopt descriptors that are not listening stream sockets. Each fails with one
// clear error and leaves the loop and other servers working.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>
#include <string>

#include "fault/fault_support.hpp"
#include "support/temp_dir.hpp"

namespace tulip::testing {
namespace {

class Echo final : public Protocol {
 public:
  void connection_made(Transport& t) override { transport_ = &t; }
  void data_received(std::string_view data) override { transport_->write(data); }

 private:
  Transport* transport_ = nullptr;
};

auto echo_factory() {
  return [] { return std::make_shared<Echo>(); };
}

// The error a Future failed with: its code and message.
template <class T>
std::pair<std::error_code, std::string> failure_of(EventLoop& loop, Future<T> future) {
  try {
    loop.run_until_complete(future);
  } catch (const std::system_error& e) {
    return {e.code(), e.what()};
  } catch (const std::exception& e) {
    return {std::make_error_code(std::errc::invalid_argument), e.what()};
  }
  ADD_FAILURE() << "the operation succeeded";
  return {};
}

bool one_line(const std::string& message) { return message.find('\n') == std::string::npos; }

TEST(UnixSocketFaultTest, PathLongerThanSunPathFailsNamingThePath) {
  EventLoop loop;
  std::string path = "/tmp/" + std::string(200, 'p') + ".sock";
  auto [server_code, server_message] =
      failure_of(loop, loop.create_unix_server(echo_factory(), path));
  EXPECT_EQ(server_code, std::errc::filename_too_long);
  EXPECT_NE(server_message.find("/tmp/ppp"), std::string::npos) << server_message;
  EXPECT_NE(server_message.find("107"), std::string::npos) << server_message;
  EXPECT_TRUE(one_line(server_message));
  auto [client_code, client_message] = failure_of(
      loop,
      loop.create_unix_connection([] { return std::make_shared<RecordingProtocol>(); }, path));
  EXPECT_EQ(client_code, std::errc::filename_too_long);
  EXPECT_NE(client_message.find("/tmp/ppp"), std::string::npos) << client_message;
  // The longest path that fits works.
  TempDir dir;
  std::string longest = dir.file("");
  longest += std::string(SocketAddress::kMaxUnixPath - longest.size(), 'q');
  auto server = loop.run_until_complete(loop.create_unix_server(echo_factory(), longest));
  EXPECT_EQ(server->sockets().at(0).sockname.path(), longest);
  server->close();
}

TEST(UnixSocketFaultTest, EmptyPathOrEmbeddedNulIsRefused) {
  EventLoop loop;
  auto [empty_code, empty_message] = failure_of(loop, loop.create_unix_server(echo_factory(), ""));
  EXPECT_EQ(empty_code, std::errc::invalid_argument);
  EXPECT_NE(empty_message.find("empty"), std::string::npos) << empty_message;
  auto [nul_code, nul_message] =
      failure_of(loop, loop.create_unix_server(echo_factory(), std::string("/tmp/a\0b", 8)));
  EXPECT_EQ(nul_code, std::errc::invalid_argument);
}

TEST(UnixSocketFaultTest, MissingDirectoryFailsNamingThePath) {
  EventLoop loop;
  TempDir dir;
  std::string path = dir.file("no-such-dir/s.sock");
  auto [code, message] = failure_of(loop, loop.create_unix_server(echo_factory(), path));
  EXPECT_EQ(code, std::errc::no_such_file_or_directory);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_TRUE(one_line(message));
  auto [connect_code, connect_message] = failure_of(
      loop,
      loop.create_unix_connection([] { return std::make_shared<RecordingProtocol>(); }, path));
  EXPECT_EQ(connect_code, std::errc::no_such_file_or_directory);
  EXPECT_NE(connect_message.find(path), std::string::npos) << connect_message;
}

TEST(UnixSocketFaultTest, DirectoryThatIsAFileOrUnwritableFails) {
  EventLoop loop;
  TempDir dir;
  std::string file = dir.file("plain");
  std::ofstream(file) << "not a directory";
  auto [code, message] =
      failure_of(loop, loop.create_unix_server(echo_factory(), file + "/s.sock"));
  EXPECT_EQ(code, std::errc::not_a_directory);
  EXPECT_NE(message.find(file), std::string::npos) << message;
  if (::geteuid() == 0) GTEST_SKIP() << "root may write into any directory";
  std::string locked = dir.file("locked");
  ASSERT_EQ(::mkdir(locked.c_str(), 0500), 0);
  auto [denied_code, denied_message] =
      failure_of(loop, loop.create_unix_server(echo_factory(), locked + "/s.sock"));
  EXPECT_EQ(denied_code, std::errc::permission_denied);
  EXPECT_NE(denied_message.find(locked), std::string::npos) << denied_message;
}

TEST(UnixSocketFaultTest, LiveSocketFileIsNotStolen) {
  EventLoop loop;
  TempDir dir;
  std::string path = dir.file("live.sock");
  auto first = loop.run_until_complete(loop.create_unix_server(echo_factory(), path));
  auto [code, message] = failure_of(loop, loop.create_unix_server(echo_factory(), path));
  EXPECT_EQ(code, std::errc::address_in_use);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_TRUE(one_line(message));
  // The first server still owns the path and answers.
  ASSERT_TRUE(exists(path));
  auto client = std::make_shared<RecordingProtocol>();
  client->on_made = [](Transport& t) { t.write("still here"); };
  client->on_data = [&client](std::string_view) {
    if (client->received == "still here") client->transport->close();
  };
  loop.run_until_complete(loop.create_unix_connection([client] { return client; }, path));
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
  EXPECT_EQ(client->received, "still here");
  first->close();
  first->abort_clients();
  loop.run_until_complete(first->wait_closed());
  EXPECT_FALSE(exists(path));
}

TEST(UnixSocketFaultTest, LiveAbstractNameIsInUse) {
  EventLoop loop;
  std::string name = abstract_name("live");
  auto first = loop.run_until_complete(loop.create_unix_server(echo_factory(), name));
  auto [code, message] = failure_of(loop, loop.create_unix_server(echo_factory(), name));
  EXPECT_EQ(code, std::errc::address_in_use);
  first->close();
}

TEST(UnixSocketFaultTest, FileThatIsNotASocketIsLeftAlone) {
  EventLoop loop;
  TempDir dir;
  std::string path = dir.file("data.txt");
  std::ofstream(path) << "precious";
  auto [code, message] = failure_of(loop, loop.create_unix_server(echo_factory(), path));
  EXPECT_EQ(code, std::errc::address_in_use);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  std::ifstream kept(path);
  std::string content;
  kept >> content;
  EXPECT_EQ(content, "precious");
}

TEST(UnixSocketFaultTest, NobodyListeningIsRefused) {
  EventLoop loop;
  TempDir dir;
  std::string path = dir.file("stale.sock");
  int dead = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto address = SocketAddress::from_path(path);
  ASSERT_EQ(::bind(dead, address->data(), address->size()), 0);
  ::close(dead);
  auto [code, message] = failure_of(
      loop,
      loop.create_unix_connection([] { return std::make_shared<RecordingProtocol>(); }, path));
  EXPECT_EQ(code, std::errc::connection_refused);
  EXPECT_NE(message.find(path), std::string::npos) << message;
}

TEST(UnixSocketFaultTest, AdoptingWhatIsNotAListeningStreamSocketFails) {
  EventLoop loop;
  // A stream socket that does not listen.
  int idle = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto [idle_code, idle_message] = failure_of(loop, loop.create_server(echo_factory(), idle));
  EXPECT_NE(idle_message.find("not listening"), std::string::npos) << idle_message;
  // A datagram socket.
  int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto [udp_code, udp_message] = failure_of(loop, loop.create_server(echo_factory(), udp));
  EXPECT_NE(udp_message.find("stream socket"), std::string::npos) << udp_message;
  // Not a socket at all.
  int pipe_ends[2];
  ASSERT_EQ(::pipe2(pipe_ends, O_CLOEXEC), 0);
  ::close(pipe_ends[1]);
  auto [pipe_code, pipe_message] =
      failure_of(loop, loop.create_server(echo_factory(), pipe_ends[0]));
  EXPECT_EQ(pipe_code, std::errc::not_a_socket);
  // A listening TCP socket is not a Unix one.
  RawSocket tcp = RawSocket::listen_on("127.0.0.1");
  auto [tcp_code, tcp_message] =
      failure_of(loop, loop.create_unix_server(echo_factory(), tcp.release()));
  EXPECT_NE(tcp_message.find("Unix stream socket"), std::string::npos) << tcp_message;
  // A negative descriptor.
  auto [bad_code, bad_message] = failure_of(loop, loop.create_server(echo_factory(), -1));
  EXPECT_EQ(bad_code, std::errc::bad_file_descriptor);
  // Every descriptor given was closed (the fd leak check verifies it); the
  // loop still serves.
  TempDir dir;
  auto server = loop.run_until_complete(loop.create_unix_server(echo_factory(), dir.file("ok")));
  EXPECT_TRUE(server->is_serving());
  server->close();
}

TEST(UnixSocketFaultTest, ClosingTheLoopClosesAUnixServerAndRemovesItsFile) {
  TempDir dir;
  std::string path = dir.file("loop.sock");
  {
    EventLoop loop;
    loop.run_until_complete(loop.create_unix_server(echo_factory(), path));
    EXPECT_TRUE(exists(path));
  }
  EXPECT_FALSE(exists(path));
}

}  // namespace
}  // namespace tulip::testing
