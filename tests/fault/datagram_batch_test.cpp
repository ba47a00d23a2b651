// The datagram transport's batches: more datagrams waiting than one event
// takes, datagrams too long for their slot in the middle of a batch (each one
// reported, the others delivered in order), replies sent from inside
// datagram_received (they leave together, in order, also when the protocol
// closes, aborts or throws right after sending), and replies that meet a full
// kernel queue (buffered, in order, with pause_writing).
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstdio>
#include <stdexcept>
#include <string>

#include "fault/fault_support.hpp"
#include "io_backend.hpp"
#include "loop_access.hpp"
#include "support/datagram_recorder.hpp"

namespace tulip::testing {
namespace {

// A blocking raw UDP socket on 127.0.0.1 with a kernel-chosen port.
struct RawUdp {
  RawUdp() {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    auto any = SocketAddress::parse("127.0.0.1", 0);
    EXPECT_EQ(::bind(fd, any->data(), any->size()), 0);
    address = SocketAddress::local_of(fd);
    timeval timeout{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  }
  ~RawUdp() {
    if (fd >= 0) ::close(fd);
  }
  void send_to(const SocketAddress& to, const std::string& data) const {
    EXPECT_EQ(::sendto(fd, data.data(), data.size(), 0, to.data(), to.size()),
              static_cast<ssize_t>(data.size()));
  }
  std::string receive() const {
    char buffer[65536];
    ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    return n < 0 ? std::string("<nothing>") : std::string(buffer, static_cast<std::size_t>(n));
  }
  int fd;
  SocketAddress address;
};

std::string numbered(int i, std::size_t size) {
  std::string data(size, '.');
  std::snprintf(data.data(), data.size(), "%d", i);
  return data;
}

TEST(DatagramBatch, ManyWaitingDatagramsWithOversizedOnesAmongThemArriveInOrder) {
  EventLoop loop;
  DatagramOptions options;
  options.max_datagram_size = 1000;
  auto protocol = std::make_shared<RecordingDatagramProtocol>();
  auto endpoint = loop.run_until_complete(loop.create_datagram_endpoint(
      [protocol] { return protocol; }, HostPort{"127.0.0.1", 0}, std::nullopt, options));
  SocketAddress address = *endpoint.transport->get_extra_info<SocketAddress>("sockname");
  RawUdp peer;
  // 100 datagrams wait in the kernel before the endpoint reads: several
  // events' worth; every seventh is too long for the 1000-byte limit.
  int too_long = 0;
  for (int i = 0; i < 100; ++i) {
    bool oversized = i % 7 == 3;
    too_long += oversized;
    peer.send_to(address, numbered(i, oversized ? 1001 + i : 10 + i));
  }
  ASSERT_TRUE(run_until(loop, [&] { return protocol->datagrams.size() == 100u - too_long; }));
  EXPECT_EQ(protocol->errors.size(), static_cast<std::size_t>(too_long));
  for (std::error_code error : protocol->errors) EXPECT_EQ(error, std::errc::message_size);
  std::size_t next = 0;
  for (int i = 0; i < 100; ++i) {
    if (i % 7 == 3) continue;
    ASSERT_LT(next, protocol->datagrams.size());
    EXPECT_EQ(protocol->datagrams[next].first, numbered(i, 10 + i));
    EXPECT_EQ(protocol->datagrams[next].second, peer.address);
    ++next;
  }
  endpoint.transport->abort();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
}

TEST(DatagramBatch, RepliesFromInsideDatagramReceivedLeaveInOrder) {
  EventLoop loop;
  auto server = std::make_shared<RecordingDatagramProtocol>();
  // Each datagram is answered twice: once with its own bytes (the received
  // slot itself), once with a copy that the protocol owns only during the call.
  server->on_datagram = [&server](std::string_view data, const SocketAddress& from) {
    server->transport->sendto(data, from);
    std::string copy = "re:" + std::string(data);
    server->transport->sendto(copy, from);
  };
  auto endpoint = loop.run_until_complete(
      loop.create_datagram_endpoint([server] { return server; }, HostPort{"127.0.0.1", 0}));
  SocketAddress address = *endpoint.transport->get_extra_info<SocketAddress>("sockname");
  RawUdp peer;
  for (int i = 0; i < 50; ++i) peer.send_to(address, numbered(i, 20));
  ASSERT_TRUE(run_until(loop, [&] { return server->datagrams.size() == 50; }));
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(peer.receive(), numbered(i, 20));
    EXPECT_EQ(peer.receive(), "re:" + numbered(i, 20));
  }
  EXPECT_EQ(endpoint.transport->get_write_buffer_size(), 0u);
  EXPECT_TRUE(server->errors.empty());
  endpoint.transport->abort();
  ASSERT_TRUE(run_until(loop, [&] { return server->lost == 1; }));
}

TEST(DatagramBatch, RepliesSentBeforeCloseAbortOrAThrowStillLeave) {
  for (int way = 0; way < 3; ++way) {
    EventLoop loop;
    ExceptionLog reports(loop);
    auto server = std::make_shared<RecordingDatagramProtocol>();
    server->on_datagram = [&server, way](std::string_view data, const SocketAddress& from) {
      server->transport->sendto(data, from);
      if (way == 0) server->transport->close();
      if (way == 1) server->transport->abort();
      if (way == 2) throw std::runtime_error("after the reply");
    };
    auto endpoint = loop.run_until_complete(
        loop.create_datagram_endpoint([server] { return server; }, HostPort{"127.0.0.1", 0}));
    SocketAddress address = *endpoint.transport->get_extra_info<SocketAddress>("sockname");
    RawUdp peer;
    peer.send_to(address, "first");
    peer.send_to(address, "second");  // never delivered: the endpoint ends with the first
    ASSERT_TRUE(run_until(loop, [&] { return server->lost == 1; }));
    EXPECT_EQ(peer.receive(), "first") << "way " << way;
    EXPECT_EQ(server->datagrams.size(), 1u);
    EXPECT_EQ(reports.reports.size(), way == 2 ? 1u : 0u);
  }
}

// A Unix datagram socketpair whose peer does not read: its queue fills, so
// replies corked during a batch meet EAGAIN and go to the write buffer.
TEST(DatagramBatch, RepliesThatMeetAFullQueueAreBufferedInOrderAndPauseTheProtocol) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair), 0);
  RawSocket peer(pair[1]);
  EventLoop loop;
  auto protocol = std::make_shared<RecordingDatagramProtocol>();
  int replies = 0;
  protocol->on_datagram = [&](std::string_view, const SocketAddress&) {
    for (int k = 0; k < 100; ++k) protocol->transport->sendto(numbered(replies++, 500));
  };
  bool made = false;
  auto transport = detail::LoopAccess::backend(loop).start_datagram_transport(
      detail::DatagramSocket{pair[0], protocol, SocketAddress::peer_of(pair[0]), 65536, nullptr},
      [&made] { made = true; });
  ASSERT_TRUE(run_until(loop, [&] { return made; }));
  transport->set_write_buffer_limits(2000);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(::send(peer.fd(), "go", 2, 0), 2);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->datagrams.size() == 5; }));
  EXPECT_GT(transport->get_write_buffer_size(), 0u);
  EXPECT_EQ(protocol->pauses, 1);
  // The peer reads everything: every reply, in order, then resume_writing.
  int expected = 0;
  char buffer[1024];
  ASSERT_TRUE(run_until(loop, [&] {
    for (;;) {
      ssize_t n = ::recv(peer.fd(), buffer, sizeof(buffer), MSG_DONTWAIT);
      if (n < 0) break;
      EXPECT_EQ(std::string(buffer, static_cast<std::size_t>(n)), numbered(expected, 500));
      ++expected;
    }
    return expected == 500;
  }));
  EXPECT_EQ(protocol->resumes, 1);
  EXPECT_EQ(transport->get_write_buffer_size(), 0u);
  EXPECT_TRUE(protocol->errors.empty());
  transport->abort();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
}

}  // namespace
}  // namespace tulip::testing
