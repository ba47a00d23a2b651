// Unix datagram endpoints given bad input: paths too long for sun_path,
// missing or unwritable directories, a path where a socket is still bound
// (never stolen, whatever its type), a remote path nobody is bound to or that
// is not a datagram socket, a peer that goes away, datagrams longer than the
// receive size. Each fails with one clear error naming the path, or reaches
// error_received, and leaves the loop and other endpoints working.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "fault/fault_support.hpp"
#include "support/datagram_recorder.hpp"
#include "support/temp_dir.hpp"

namespace tulip::testing {
namespace {

auto recorder_factory() {
  return [] { return std::make_shared<RecordingDatagramProtocol>(); };
}

template <class T>
std::pair<std::error_code, std::string> failure_of(EventLoop& loop, Future<T> future) {
  try {
    loop.run_until_complete(future);
  } catch (const std::system_error& e) {
    return {e.code(), e.what()};
  }
  ADD_FAILURE() << "the operation succeeded";
  return {};
}

bool one_line(const std::string& message) { return message.find('\n') == std::string::npos; }

TEST(UnixDatagramFault, PathsLongerThanSunPathFailNamingThePath) {
  EventLoop loop;
  std::string path = "/tmp/" + std::string(200, 'd') + ".sock";
  auto [local_code, local_message] =
      failure_of(loop, loop.create_unix_datagram_endpoint(recorder_factory(), path));
  EXPECT_EQ(local_code, std::errc::filename_too_long);
  EXPECT_NE(local_message.find("/tmp/ddd"), std::string::npos) << local_message;
  EXPECT_TRUE(one_line(local_message));
  auto [remote_code, remote_message] =
      failure_of(loop, loop.create_unix_datagram_endpoint(recorder_factory(), std::nullopt, path));
  EXPECT_EQ(remote_code, std::errc::filename_too_long);
  EXPECT_NE(remote_message.find("/tmp/ddd"), std::string::npos) << remote_message;
}

TEST(UnixDatagramFault, MissingOrUnwritableDirectoriesFailNamingThePath) {
  EventLoop loop;
  TempDir dir;
  std::string missing = dir.file("nowhere/d.sock");
  auto [code, message] =
      failure_of(loop, loop.create_unix_datagram_endpoint(recorder_factory(), missing));
  EXPECT_EQ(code, std::errc::no_such_file_or_directory);
  EXPECT_NE(message.find(missing), std::string::npos) << message;
  EXPECT_NE(message.find("directory does not exist"), std::string::npos) << message;
  EXPECT_TRUE(one_line(message));
  if (::geteuid() == 0) GTEST_SKIP() << "root may write into any directory";
  std::string locked = dir.file("locked");
  ASSERT_EQ(::mkdir(locked.c_str(), 0500), 0);
  auto [denied_code, denied_message] =
      failure_of(loop, loop.create_unix_datagram_endpoint(recorder_factory(), locked + "/d.sock"));
  EXPECT_EQ(denied_code, std::errc::permission_denied);
  EXPECT_NE(denied_message.find(locked), std::string::npos) << denied_message;
}

TEST(UnixDatagramFault, APathWhereASocketIsStillBoundIsNotStolen) {
  EventLoop loop;
  TempDir dir;
  std::string path = dir.file("live.sock");
  auto first = std::make_shared<RecordingDatagramProtocol>();
  auto endpoint =
      loop.run_until_complete(loop.create_unix_datagram_endpoint([first] { return first; }, path));
  auto [code, message] =
      failure_of(loop, loop.create_unix_datagram_endpoint(recorder_factory(), path));
  EXPECT_EQ(code, std::errc::address_in_use);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("already bound"), std::string::npos) << message;
  EXPECT_TRUE(one_line(message));
  // The first endpoint still owns the path and receives.
  auto sender = loop.run_until_complete(
      loop.create_unix_datagram_endpoint(recorder_factory(), std::nullopt, path));
  sender.transport->sendto("still here");
  ASSERT_TRUE(run_until(loop, [&] { return first->datagrams.size() == 1; }));
  EXPECT_EQ(first->datagrams[0].first, "still here");

  // A stream server's path is not taken either, and the message says why.
  std::string stream_path = dir.file("stream.sock");
  auto server = loop.run_until_complete(
      loop.create_unix_server([] { return std::make_shared<RecordingProtocol>(); }, stream_path));
  auto [stream_code, stream_message] =
      failure_of(loop, loop.create_unix_datagram_endpoint(recorder_factory(), stream_path));
  EXPECT_EQ(stream_code, std::errc::address_in_use);
  EXPECT_NE(stream_message.find("another type"), std::string::npos) << stream_message;
  // ... and the other way round.
  auto [server_code, server_message] = failure_of(
      loop, loop.create_unix_server([] { return std::make_shared<RecordingProtocol>(); }, path));
  EXPECT_EQ(server_code, std::errc::address_in_use);
  EXPECT_NE(server_message.find("another type"), std::string::npos) << server_message;
  server->close();
  sender.transport->abort();
  endpoint.transport->abort();
  ASSERT_TRUE(run_until(loop, [&] { return first->lost == 1; }));
}

TEST(UnixDatagramFault, RemotePathsThatCannotBeReachedFailAndLeaveNoFileBehind) {
  EventLoop loop;
  TempDir dir;
  std::string local = dir.file("local.sock");
  // Nobody bound there any more.
  std::string stale = dir.file("stale.sock");
  int dead = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto stale_address = SocketAddress::from_path(stale);
  ASSERT_EQ(::bind(dead, stale_address->data(), stale_address->size()), 0);
  ::close(dead);
  auto [refused_code, refused_message] =
      failure_of(loop, loop.create_unix_datagram_endpoint(recorder_factory(), local, stale));
  EXPECT_EQ(refused_code, std::errc::connection_refused);
  EXPECT_NE(refused_message.find(stale), std::string::npos) << refused_message;
  EXPECT_FALSE(exists(local));  // the file bound for it went with the failure
  // No file at all.
  auto [missing_code, missing_message] = failure_of(
      loop, loop.create_unix_datagram_endpoint(recorder_factory(), local, dir.file("none")));
  EXPECT_EQ(missing_code, std::errc::no_such_file_or_directory);
  EXPECT_FALSE(exists(local));
  // A stream socket.
  std::string stream_path = dir.file("stream.sock");
  auto server = loop.run_until_complete(
      loop.create_unix_server([] { return std::make_shared<RecordingProtocol>(); }, stream_path));
  auto [type_code, type_message] = failure_of(
      loop, loop.create_unix_datagram_endpoint(recorder_factory(), std::nullopt, stream_path));
  EXPECT_EQ(type_code, std::errc::wrong_protocol_type);
  EXPECT_NE(type_message.find("not a datagram socket"), std::string::npos) << type_message;
  server->close();
}

TEST(UnixDatagramFault, APeerThatGoesAwayReachesErrorReceivedAndTheEndpointGoesOn) {
  EventLoop loop;
  TempDir dir;
  std::string path = dir.file("peer.sock");
  auto peer = loop.run_until_complete(loop.create_unix_datagram_endpoint(recorder_factory(), path));
  auto client = std::make_shared<RecordingDatagramProtocol>();
  auto endpoint = loop.run_until_complete(
      loop.create_unix_datagram_endpoint([client] { return client; }, std::nullopt, path));
  peer.transport->abort();
  ASSERT_TRUE(run_until(loop, [&] { return !exists(path); }));
  endpoint.transport->sendto("anyone?");
  ASSERT_TRUE(run_until(loop, [&] { return !client->errors.empty(); }));
  EXPECT_EQ(client->errors[0], std::errc::connection_refused);
  EXPECT_FALSE(endpoint.transport->is_closing());
  EXPECT_EQ(client->lost, 0);
  endpoint.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return client->lost == 1; }));
  EXPECT_FALSE(client->lost_error);
}

TEST(UnixDatagramFault, DatagramsLongerThanTheReceiveSizeAreReportedEachOne) {
  EventLoop loop;
  TempDir dir;
  std::string path = dir.file("small.sock");
  UnixDatagramOptions options;
  options.max_datagram_size = 1000;
  auto receiver = std::make_shared<RecordingDatagramProtocol>();
  auto endpoint = loop.run_until_complete(loop.create_unix_datagram_endpoint(
      [receiver] { return receiver; }, path, std::nullopt, options));
  int sender = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto address = SocketAddress::from_path(path);
  for (std::size_t size : {999u, 5000u, 1000u, 1001u, 10u}) {
    std::string datagram(size, 'z');
    ASSERT_EQ(::sendto(sender, datagram.data(), size, 0, address->data(), address->size()),
              static_cast<ssize_t>(size));
  }
  ASSERT_TRUE(run_until(loop, [&] { return receiver->datagrams.size() == 3; }));
  ASSERT_EQ(receiver->errors.size(), 2u);
  EXPECT_EQ(receiver->errors[0], std::errc::message_size);
  EXPECT_EQ(receiver->errors[1], std::errc::message_size);
  EXPECT_EQ(receiver->datagrams[0].first.size(), 999u);
  EXPECT_EQ(receiver->datagrams[1].first.size(), 1000u);
  EXPECT_EQ(receiver->datagrams[2].first.size(), 10u);
  ::close(sender);
  endpoint.transport->abort();
  ASSERT_TRUE(run_until(loop, [&] { return receiver->lost == 1; }));
}

}  // namespace
}  // namespace tulip::testing
