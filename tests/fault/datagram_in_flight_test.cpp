// Datagram endpoints with work in the kernel's hands, which on the completion
// backend means requests in flight: many datagrams arriving between two
// iterations (more than one receive request's buffers hold), datagrams longer
// than 16 KiB and longer than the receive size among them, and closing,
// aborting or closing the loop while a receive and a send are in flight (the
// socket is really closed when connection_lost and on_release come).
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstdio>
#include <string>

#include "fault/fault_support.hpp"
#include "io_backend.hpp"
#include "loop_access.hpp"
#include "support/datagram_recorder.hpp"

namespace tulip::testing {
namespace {

// Datagram `index` of `size` bytes: its number first, then a pattern that
// depends on it, so that a datagram cut short or mixed with another shows.
std::string numbered(int index, std::size_t size) {
  std::string data = std::to_string(index) + ":";
  while (data.size() < size) data.push_back(static_cast<char>('a' + (index + data.size()) % 26));
  data.resize(size);
  return data;
}

struct BlockingUdp {
  BlockingUdp() {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    auto loopback = SocketAddress::parse("127.0.0.1", 0);
    EXPECT_EQ(::bind(fd, loopback->data(), loopback->size()), 0);
    address = SocketAddress::local_of(fd);
  }
  ~BlockingUdp() { ::close(fd); }
  void send_to(const SocketAddress& to, const std::string& data) const {
    EXPECT_EQ(::sendto(fd, data.data(), data.size(), 0, to.data(), to.size()),
              static_cast<ssize_t>(data.size()));
  }
  int fd;
  SocketAddress address;
};

DatagramEndpoint<RecordingDatagramProtocol> open_udp(
    EventLoop& loop, const std::shared_ptr<RecordingDatagramProtocol>& protocol,
    DatagramOptions options = {}) {
  return loop.run_until_complete(loop.create_datagram_endpoint(
      [protocol] { return protocol; }, HostPort{"127.0.0.1", 0}, std::nullopt, options));
}

TEST(DatagramInFlight, ManyDatagramsBetweenTwoIterationsArriveInOrderAndIntact) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingDatagramProtocol>();
  auto endpoint = open_udp(loop, protocol);
  auto address = endpoint.transport->get_extra_info<SocketAddress>("sockname");
  ASSERT_TRUE(address);
  BlockingUdp sender;
  std::vector<std::string> sent;
  for (int round = 0; round < 3; ++round) {
    // Forty datagrams wait in the socket before the loop runs again: more
    // than one iteration's receive buffers; some longer than 16 KiB, one
    // empty. (Small enough in all for the socket's default receive queue.)
    std::size_t first = sent.size();
    for (int i = 0; i < 40; ++i) {
      int index = static_cast<int>(sent.size());
      std::size_t size = i % 10 == 9 ? 17000 + static_cast<std::size_t>(round) : i == 4 ? 0 : 300;
      sent.push_back(numbered(index, size));
      sender.send_to(*address, sent.back());
    }
    ASSERT_TRUE(run_until(loop, [&] { return protocol->datagrams.size() == sent.size(); }))
        << protocol->datagrams.size() << " of " << sent.size();
    for (std::size_t i = first; i < sent.size(); ++i) {
      ASSERT_EQ(protocol->datagrams[i].first.size(), sent[i].size()) << "datagram " << i;
      EXPECT_EQ(protocol->datagrams[i].first, sent[i]) << "datagram " << i;
      EXPECT_EQ(protocol->datagrams[i].second, sender.address);
    }
  }
  EXPECT_TRUE(protocol->errors.empty());
  endpoint.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
}

TEST(DatagramInFlight, DatagramsLongerThanTheReceiveSizeAreReportedTheRestDelivered) {
  EventLoop loop;
  DatagramOptions options;
  options.max_datagram_size = 20000;
  auto protocol = std::make_shared<RecordingDatagramProtocol>();
  auto endpoint = open_udp(loop, protocol, options);
  auto address = endpoint.transport->get_extra_info<SocketAddress>("sockname");
  ASSERT_TRUE(address);
  BlockingUdp sender;
  sender.send_to(*address, numbered(0, 19000));
  sender.send_to(*address, numbered(1, 20001));  // one byte too long
  sender.send_to(*address, numbered(2, 20000));  // exactly the receive size
  sender.send_to(*address, numbered(3, 60000));
  sender.send_to(*address, numbered(4, 10));
  ASSERT_TRUE(
      run_until(loop, [&] { return protocol->datagrams.size() + protocol->errors.size() == 5; }));
  ASSERT_EQ(protocol->datagrams.size(), 3u);
  EXPECT_EQ(protocol->datagrams[0].first, numbered(0, 19000));
  EXPECT_EQ(protocol->datagrams[1].first, numbered(2, 20000));
  EXPECT_EQ(protocol->datagrams[2].first, numbered(4, 10));
  ASSERT_EQ(protocol->errors.size(), 2u);
  for (auto error : protocol->errors) EXPECT_EQ(error, std::errc::message_size);
  endpoint.transport->abort();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
}

TEST(DatagramInFlight, ClosingFreesThePortByTheTimeTheEndpointIsReleased) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingDatagramProtocol>();
  auto endpoint = open_udp(loop, protocol);
  auto address = endpoint.transport->get_extra_info<SocketAddress>("sockname");
  ASSERT_TRUE(address);
  run_iterations(loop, 2);  // the receive is in the kernel's hands
  endpoint.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  // The port is free once the endpoint was released: no request holds the socket.
  int again = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  bool rebound = ::bind(again, address->data(), address->size()) == 0;
  ::close(again);
  EXPECT_TRUE(rebound) << "the closed endpoint's port is still bound";
}

// A Unix datagram pair whose peer does not read: a send waits in the kernel.
struct StuckPeer {
  StuckPeer() {
    int pair[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair), 0);
    ours = pair[0];
    peer = pair[1];
  }
  ~StuckPeer() { ::close(peer); }
  // True if the peer's end sees ours closed (a send to it is refused).
  bool ours_closed() const {
    return ::send(peer, "x", 1, MSG_DONTWAIT) < 0 && errno == ECONNREFUSED;
  }
  int ours;
  int peer;
};

std::shared_ptr<DatagramTransport> start_on(
    EventLoop& loop, StuckPeer& pair, const std::shared_ptr<RecordingDatagramProtocol>& protocol,
    int& releases, bool& closed_at_release) {
  bool made = false;
  auto transport = detail::LoopAccess::backend(loop).start_datagram_transport(
      detail::DatagramSocket{pair.ours, protocol, SocketAddress::peer_of(pair.ours), 65536,
                             [&releases, &closed_at_release, &pair] {
                               ++releases;
                               closed_at_release = pair.ours_closed();
                             }},
      [&made] { made = true; });
  EXPECT_TRUE(run_until(loop, [&] { return made; }));
  // Fill the peer's queue: the rest waits, on io_uring in a send request.
  std::string datagram(1000, 'q');
  while (transport->get_write_buffer_size() == 0) transport->sendto(datagram);
  transport->sendto(datagram);
  run_iterations(loop, 2);
  EXPECT_GT(transport->get_write_buffer_size(), 0u);
  return transport;
}

TEST(DatagramInFlight, CloseWaitsForTheQueueThenAbortEndsItWithRequestsInFlight) {
  StuckPeer pair;
  EventLoop loop;
  auto protocol = std::make_shared<RecordingDatagramProtocol>();
  int releases = 0;
  bool closed_at_release = false;
  auto transport = start_on(loop, pair, protocol, releases, closed_at_release);
  transport->close();
  run_iterations(loop, 5);
  EXPECT_EQ(protocol->lost, 0) << "close() must wait for the queued datagrams";
  EXPECT_FALSE(pair.ours_closed());
  transport->abort();
  EXPECT_EQ(transport->get_write_buffer_size(), 0u);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_FALSE(protocol->lost_error);
  EXPECT_EQ(releases, 1);
  EXPECT_TRUE(closed_at_release) << "on_release ran before the socket was closed";
  run_iterations(loop, 3);
  EXPECT_EQ(protocol->lost, 1);
  EXPECT_EQ(releases, 1);
}

TEST(DatagramInFlight, ClosingTheLoopWithRequestsInFlightEndsTheEndpointOnce) {
  StuckPeer pair;
  auto protocol = std::make_shared<RecordingDatagramProtocol>();
  int releases = 0;
  bool closed_at_release = false;
  std::shared_ptr<DatagramTransport> transport;
  {
    EventLoop loop;
    transport = start_on(loop, pair, protocol, releases, closed_at_release);
  }
  EXPECT_EQ(protocol->lost, 1);
  EXPECT_EQ(protocol->lost_error, std::errc::connection_aborted);
  EXPECT_EQ(releases, 1);
  EXPECT_TRUE(closed_at_release);
  EXPECT_EQ(transport->get_write_buffer_size(), 0u);
  transport.reset();  // outlives its loop: destroying it touches nothing of the loop
}

}  // namespace
}  // namespace tulip::testing
