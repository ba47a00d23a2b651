// Datagram endpoints under faults: datagrams longer than the receive size,
// ICMP port-unreachable on a connected endpoint, addresses in use, missing or
// mismatched families, protocol callbacks that throw, a peer that stops
// reading (write flow control), sends after close, and cancellation.
#include <gtest/gtest.h>
#include <sys/socket.h>

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
  }
  ~RawUdp() {
    if (fd >= 0) ::close(fd);
  }
  void send_to(const SocketAddress& to, const std::string& data) const {
    EXPECT_EQ(::sendto(fd, data.data(), data.size(), 0, to.data(), to.size()),
              static_cast<ssize_t>(data.size()));
  }
  int fd;
  SocketAddress address;
};

template <class P>
DatagramEndpoint<P> open_local(EventLoop& loop, std::shared_ptr<P> protocol,
                               DatagramOptions options = {}) {
  return loop.run_until_complete(loop.create_datagram_endpoint(
      [protocol] { return protocol; }, HostPort{"127.0.0.1", 0}, std::nullopt, options));
}

TEST(DatagramFaultTest, TruncatedDatagramIsReportedNotDelivered) {
  EventLoop loop;
  DatagramOptions options;
  options.max_datagram_size = 16;
  auto protocol = std::make_shared<RecordingDatagramProtocol>();
  auto endpoint = open_local(loop, protocol, options);
  SocketAddress address = *endpoint.transport->get_extra_info<SocketAddress>("sockname");
  RawUdp peer;
  peer.send_to(address, std::string(100, 'L'));
  peer.send_to(address, std::string(16, 's'));  // exactly the limit: whole
  ASSERT_TRUE(run_until(loop, [&] { return protocol->datagrams.size() == 1; }));
  ASSERT_EQ(protocol->errors.size(), 1u);
  EXPECT_EQ(protocol->errors[0], std::errc::message_size);
  EXPECT_EQ(protocol->datagrams[0].first, std::string(16, 's'));
  EXPECT_EQ(protocol->datagrams[0].second, peer.address);
  EXPECT_FALSE(endpoint.transport->is_closing());  // one bad datagram does not end it
  endpoint.transport->abort();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
}

TEST(DatagramFaultTest, PortUnreachableReachesErrorReceivedAndTheEndpointGoesOn) {
  EventLoop loop;
  SocketAddress closed;
  {
    RawUdp gone;  // a port that nobody listens on once this closes
    closed = gone.address;
  }
  auto protocol = std::make_shared<RecordingDatagramProtocol>();
  auto endpoint = loop.run_until_complete(loop.create_datagram_endpoint(
      [protocol] { return protocol; }, std::nullopt, HostPort{closed.host(), closed.port()}));
  endpoint.transport->sendto("anyone?");
  ASSERT_TRUE(run_until(loop, [&] { return !protocol->errors.empty(); }));
  EXPECT_EQ(protocol->errors[0], std::errc::connection_refused);
  EXPECT_FALSE(endpoint.transport->is_closing());
  EXPECT_EQ(protocol->lost, 0);
  endpoint.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_FALSE(protocol->lost_error);
}

TEST(DatagramFaultTest, AddressInUseFailsNamingTheAddress) {
  EventLoop loop;
  RawUdp taken;
  try {
    loop.run_until_complete(
        loop.create_datagram_endpoint([] { return std::make_shared<RecordingDatagramProtocol>(); },
                                      HostPort{"127.0.0.1", taken.address.port()}));
    ADD_FAILURE() << "bound an address in use";
  } catch (const OSError& e) {
    EXPECT_EQ(e.code(), std::errc::address_in_use);
    EXPECT_NE(std::string(e.what()).find(taken.address.to_string()), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
}

TEST(DatagramFaultTest, MissingOrMismatchedFamiliesFail) {
  EventLoop loop;
  auto factory = [] { return std::make_shared<RecordingDatagramProtocol>(); };
  EXPECT_THROW(
      loop.run_until_complete(loop.create_datagram_endpoint(factory, std::nullopt, std::nullopt)),
      std::invalid_argument);
  try {
    loop.run_until_complete(
        loop.create_datagram_endpoint(factory, HostPort{"127.0.0.1", 0}, HostPort{"::1", 9}));
    ADD_FAILURE() << "paired an IPv4 local address with an IPv6 remote one";
  } catch (const OSError& e) {
    EXPECT_EQ(e.code(), std::errc::address_family_not_supported) << e.what();
  }
}

TEST(DatagramFaultTest, ThrowingCallbackEndsOnlyItsEndpoint) {
  EventLoop loop;
  ExceptionLog reports(loop);
  auto bad = std::make_shared<RecordingDatagramProtocol>();
  bad->on_datagram = [](std::string_view, const SocketAddress&) {
    throw std::runtime_error("boom");
  };
  auto good = std::make_shared<RecordingDatagramProtocol>();
  auto bad_endpoint = open_local(loop, bad);
  auto good_endpoint = open_local(loop, good);
  RawUdp peer;
  peer.send_to(*bad_endpoint.transport->get_extra_info<SocketAddress>("sockname"), "one");
  peer.send_to(*good_endpoint.transport->get_extra_info<SocketAddress>("sockname"), "two");
  ASSERT_TRUE(run_until(loop, [&] { return bad->lost == 1 && good->datagrams.size() == 1; }));
  EXPECT_EQ(bad->lost_error, make_error_code(Error::kCallbackRaised));
  ASSERT_EQ(reports.reports.size(), 1u);
  EXPECT_EQ(reports.reports[0].transport, bad_endpoint.transport.get());
  EXPECT_EQ(good->lost, 0);
  good_endpoint.transport->abort();
  ASSERT_TRUE(run_until(loop, [&] { return good->lost == 1; }));
}

// UDP on loopback never makes a sender wait, so the write buffer is exercised
// through the backend seam with a Unix datagram socketpair, whose peer queue
// fills up (EAGAIN) when the peer does not read.
TEST(DatagramFaultTest, FullPeerQueueBuffersPausesAndResumesInOrder) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair), 0);
  RawSocket peer(pair[1]);
  EventLoop loop;
  auto protocol = std::make_shared<RecordingDatagramProtocol>();
  bool made = false;
  auto transport = detail::LoopAccess::backend(loop).start_datagram_transport(
      detail::DatagramSocket{pair[0], protocol, SocketAddress::peer_of(pair[0]), 65536, nullptr},
      [&made] { made = true; });
  ASSERT_TRUE(run_until(loop, [&] { return made; }));
  transport->set_write_buffer_limits(4096);
  std::string datagram(1000, '\0');
  int sent = 0;
  while (protocol->pauses == 0 && sent < 100000) {
    std::snprintf(datagram.data(), datagram.size(), "%d", sent++);
    transport->sendto(datagram);
  }
  ASSERT_EQ(protocol->pauses, 1);
  EXPECT_GT(transport->get_write_buffer_size(), 4096u);
  // The peer drains everything; the buffer follows in order.
  int expected = 0;
  char buffer[2048];
  ASSERT_TRUE(run_until(loop, [&] {
    for (;;) {
      ssize_t n = ::recv(peer.fd(), buffer, sizeof(buffer), MSG_DONTWAIT);
      if (n < 0) break;
      EXPECT_EQ(n, 1000);
      EXPECT_EQ(std::atoi(buffer), expected);
      ++expected;
    }
    return expected == sent;
  }));
  EXPECT_EQ(protocol->resumes, 1);
  EXPECT_EQ(transport->get_write_buffer_size(), 0u);
  // close() with datagrams buffered sends them before connection_lost.
  while (transport->get_write_buffer_size() == 0) transport->sendto(datagram);
  transport->close();
  transport->sendto("dropped after close");
  EXPECT_EQ(protocol->lost, 0);
  ASSERT_TRUE(run_until(loop, [&] {
    while (::recv(peer.fd(), buffer, sizeof(buffer), MSG_DONTWAIT) > 0) {
    }
    return protocol->lost == 1;
  }));
  EXPECT_FALSE(protocol->lost_error);
}

TEST(DatagramFaultTest, AbortDropsBufferedDatagrams) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair), 0);
  RawSocket peer(pair[1]);
  EventLoop loop;
  CapturedLog log;
  auto protocol = std::make_shared<RecordingDatagramProtocol>();
  auto transport = detail::LoopAccess::backend(loop).start_datagram_transport(
      detail::DatagramSocket{pair[0], protocol, SocketAddress::peer_of(pair[0]), 65536, nullptr},
      nullptr);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->made == 1; }));
  std::string datagram(1000, 'a');
  while (transport->get_write_buffer_size() == 0) transport->sendto(datagram);
  transport->abort();
  EXPECT_EQ(transport->get_write_buffer_size(), 0u);
  transport->sendto("late");
  transport->sendto("later");
  EXPECT_EQ(log.count(LogLevel::kWarning), 1u);  // one warning, not one per datagram
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_THROW(transport->set_protocol(
                   std::shared_ptr<StreamProtocol>(std::make_shared<RecordingProtocol>())),
               std::invalid_argument);
  EXPECT_EQ(transport->get_protocol(), nullptr);
}

TEST(DatagramFaultTest, CancelledBeforeOpeningMakesNoProtocol) {
  EventLoop loop;
  int made = 0;
  auto future = loop.create_datagram_endpoint(
      [&made] {
        ++made;
        return std::make_shared<RecordingDatagramProtocol>();
      },
      HostPort{"127.0.0.1", 0});
  future.cancel();
  run_iterations(loop, 5);
  EXPECT_EQ(made, 0);
  EXPECT_TRUE(future.cancelled());
}

}  // namespace
}  // namespace tulip::testing
