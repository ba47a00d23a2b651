// Who owns a descriptor and what happens when the kernel refuses a
// registration: add_reader/add_writer may not take a transport's, server's or
// connect's descriptor; an epoll_ctl that fails (ENOMEM, ENOSPC) while a
// connection starts or grows ends that connection only; serve_forever follows
// asyncio (cancelled by close(), one at a time).
#include <gtest/gtest.h>

#include <cerrno>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fault/fault_support.hpp"
#include "loop_access.hpp"
#include "loop_internals.hpp"
#include "selector/epoll_backend.hpp"

namespace tulip::testing {
namespace {

detail::EpollBackend& epoll_of(EventLoop& loop) {
  return static_cast<detail::EpollBackend&>(detail::LoopAccess::backend(loop));
}

// A server whose protocols are kept by the test, one per accepted connection.
struct RecordingServer {
  explicit RecordingServer(EventLoop& loop) {
    server = loop.run_until_complete(loop.create_server(
        [this] {
          protocols.push_back(std::make_shared<RecordingProtocol>());
          return protocols.back();
        },
        "127.0.0.1", 0));
    address = *SocketAddress::parse("127.0.0.1", server->sockets().at(0).sockname.port());
  }
  std::shared_ptr<Server> server;
  SocketAddress address;
  std::vector<std::shared_ptr<RecordingProtocol>> protocols;
};

// ---- add_reader / add_writer on descriptors the loop's objects own ----------------------

TEST(DescriptorOwnership, AddReaderOnATransportsSocketIsRefusedAndTheTransportGoesOn) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  int fd = *connection.transport->get_extra_info<int>("socket");
  bool called = false;
  EXPECT_THROW(loop.add_reader(fd, [&] { called = true; }), RuntimeError);
  EXPECT_THROW(loop.add_writer(fd, [&] { called = true; }), RuntimeError);
  EXPECT_THROW(loop.remove_reader(fd), RuntimeError);
  EXPECT_THROW(loop.remove_writer(fd), RuntimeError);
  // The transport's registration is untouched: it still reads and writes.
  peer.send_all("ping");
  ASSERT_TRUE(run_until(loop, [&] { return protocol->received == "ping"; }));
  connection.transport->write("pong");
  connection.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_EQ(peer.read_to_eof(), "pong");
  EXPECT_FALSE(called);
  // Once the transport is gone the number is free again (nothing watches it).
  EXPECT_FALSE(loop.remove_reader(fd));
}

TEST(DescriptorOwnership, AddReaderOnAListeningSocketIsRefused) {
  EventLoop loop;
  RecordingServer server(loop);
  int fd = server.server->sockets().at(0).fd;
  EXPECT_THROW(loop.add_reader(fd, [] {}), RuntimeError);
  RawSocket client = RawSocket::connect_to(server.address);
  ASSERT_TRUE(run_until(loop, [&] { return server.protocols.size() == 1; }));
}

TEST(DescriptorOwnership, AWatcherLeftOnAClosedNumberCannotRemoveTheNextOwnersRegistration) {
  EventLoop loop;
  RawSocket listener = RawSocket::listen_on("127.0.0.1");
  // A user watches a descriptor, then closes it without remove_reader: a
  // mistake, but not one that may break an unrelated transport.
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  loop.add_reader(pipe_fds[0], [] {});
  int number = pipe_fds[0];
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  // The connection's socket is the next descriptor opened: it gets the number.
  auto protocol = std::make_shared<RecordingProtocol>();
  auto connection = loop.run_until_complete(loop.create_connection(
      [protocol] { return protocol; }, "127.0.0.1", listener.address().port()));
  RawSocket peer = listener.accept_one();
  ASSERT_EQ(*connection.transport->get_extra_info<int>("socket"), number);
  EXPECT_THROW(loop.remove_reader(number), RuntimeError);
  peer.send_all("still watched");
  ASSERT_TRUE(run_until(loop, [&] { return protocol->received == "still watched"; }));
}

// ---- The kernel refusing a registration --------------------------------------------------

TEST(RegistrationRefused, StartingAnAcceptedConnectionFailsThatConnectionOnly) {
  // Injects failures into the epoll backend's system calls.
  EventLoop loop(EventLoopOptions{BackendKind::kEpoll});
  ExceptionLog exceptions(loop);
  RecordingServer server(loop);
  epoll_of(loop).inject_ctl_failures(ENOMEM, 1);
  RawSocket refused = RawSocket::connect_to(server.address);
  ASSERT_TRUE(run_until(loop, [&] { return !exceptions.reports.empty(); }));
  // The server reported it and made no transport; the client sees the socket close.
  EXPECT_NE(exceptions.reports[0].message.find("accepted connection"), std::string::npos)
      << exceptions.reports[0].message;
  EXPECT_EQ(exceptions.reports[0].server, server.server.get());
  EXPECT_EQ(refused.read_to_eof(), "");
  EXPECT_EQ(server.server->connection_count(), 0u);
  EXPECT_TRUE(detail::LoopAccess::internals(loop).registry.transports.empty());
  // The loop and the server go on: the next client is served.
  RawSocket served = RawSocket::connect_to(server.address);
  served.send_all("next");
  ASSERT_TRUE(run_until(loop, [&] {
    return server.protocols.size() == 2 && server.protocols[1]->received == "next";
  }));
  EXPECT_EQ(server.protocols[0].use_count(), 1) << "the refused connection's protocol was kept";
  EXPECT_EQ(server.protocols[0]->made, 0);
}

TEST(RegistrationRefused, WatchingForWritabilityFailsThatConnectionWithTheKernelsError) {
  // Injects failures into the epoll backend's system calls.
  EventLoop loop(EventLoopOptions{BackendKind::kEpoll});
  ExceptionLog exceptions(loop);
  auto victim = std::make_shared<RecordingProtocol>();
  auto bystander = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, victim, "127.0.0.1", kSmallReceiveBuffer);
  auto [other, other_peer] = connect_to_raw_peer(loop, bystander);
  epoll_of(loop).inject_ctl_failures(ENOSPC, 1);
  // More than the socket takes: the rest is buffered and the transport asks
  // to hear about writability, which the kernel refuses.
  connection.transport->write(pattern(8 * 1024 * 1024));
  ASSERT_TRUE(run_until(loop, [&] { return victim->lost == 1; }));
  EXPECT_EQ(victim->lost_error, std::errc::no_space_on_device);
  ASSERT_EQ(exceptions.reports.size(), 1u);
  EXPECT_EQ(exceptions.reports[0].transport, connection.transport.get());
  other_peer.send_all("unaffected");
  ASSERT_TRUE(run_until(loop, [&] { return bystander->received == "unaffected"; }));
}

// ---- serve_forever ----------------------------------------------------------------------

TEST(ServeForever, CloseCancelsItAsAsyncioCancelsTheTask) {
  EventLoop loop;
  RecordingServer server(loop);
  Future<void> serving = server.server->serve_forever();
  loop.call_soon([&] { server.server->close(); });
  EXPECT_THROW(loop.run_until_complete(serving), CancelledError);
  EXPECT_TRUE(serving.cancelled());
  EXPECT_THROW(server.server->serve_forever(), RuntimeError) << "serving a closed server";
}

TEST(ServeForever, ASecondCallWhileTheFirstIsPendingIsRefused) {
  EventLoop loop;
  RecordingServer server(loop);
  Future<void> serving = server.server->serve_forever();
  EXPECT_THROW(server.server->serve_forever(), RuntimeError);
  // Cancelling the first closes the server (asyncio: cancelling the task).
  serving.cancel();
  ASSERT_TRUE(run_until(loop, [&] { return !server.server->is_serving(); }));
  EXPECT_TRUE(server.server->sockets().empty());
}

}  // namespace
}  // namespace tulip::testing
