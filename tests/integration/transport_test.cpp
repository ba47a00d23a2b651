// Transport and protocol rules over real loopback sockets.
#include <gtest/gtest.h>

#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/loopback.hpp"

namespace tulip::testing {
namespace {

using Limits = std::pair<std::size_t, std::size_t>;

TEST(Transport, ConnectionMadeThenDataThenLost) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  EXPECT_EQ(protocol->made, 1);  // the Future completes after connection_made ran
  EXPECT_EQ(connection.protocol, protocol);
  peer.send_all("hello");
  ASSERT_TRUE(run_until(loop, [&] { return protocol->received == "hello"; }));
  peer.reset();  // clean close: FIN
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_TRUE(protocol->eof);
  EXPECT_FALSE(protocol->lost_error);
  EXPECT_TRUE(connection.transport->is_closing());
  EXPECT_EQ(protocol->transport, nullptr);
}

TEST(Transport, ExtraInfo) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  Transport& transport = *connection.transport;
  auto peername = transport.get_extra_info<SocketAddress>("peername");
  auto sockname = transport.get_extra_info<SocketAddress>("sockname");
  ASSERT_TRUE(peername && sockname);
  EXPECT_EQ(*peername, SocketAddress::local_of(peer.fd()));
  EXPECT_EQ(peername->to_string(), "('127.0.0.1', " + std::to_string(peername->port()) + ")");
  EXPECT_EQ(*sockname, SocketAddress::peer_of(peer.fd()));
  int fd = transport.get_extra_info<int>("socket").value_or(-1);
  EXPECT_GE(fd, 0);
  int nodelay = 0;
  socklen_t length = sizeof(nodelay);
  ::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &length);
  EXPECT_EQ(nodelay, 1);  // on by default, as in asyncio
  EXPECT_FALSE(transport.get_extra_info("no such key").has_value());
  transport.close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  // peername and sockname stay available after close, as in asyncio.
  EXPECT_EQ(transport.get_extra_info<SocketAddress>("peername"), peername);
  EXPECT_EQ(transport.get_extra_info<int>("socket"), -1);
}

// sockname is read from the socket only when first asked (most connections
// never are); a transport someone still holds when it closes keeps it, so
// that it is still available after close, as asyncio's.
TEST(Transport, SocknameAfterCloseThoughNeverAskedBefore) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  connection.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_EQ(connection.transport->get_extra_info<int>("socket"), -1);
  auto sockname = connection.transport->get_extra_info<SocketAddress>("sockname");
  ASSERT_TRUE(sockname.has_value());
  EXPECT_EQ(*sockname, SocketAddress::peer_of(peer.fd()));
}

TEST(Transport, SocknameInConnectionLost) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  std::optional<SocketAddress> seen;
  protocol->on_lost = [&](std::error_code) {
    seen = protocol->transport->get_extra_info<SocketAddress>("sockname");
  };
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  SocketAddress expected = SocketAddress::peer_of(peer.fd());
  connection = {};  // only the loop holds the transport now
  peer.reset();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(*seen, expected);
}

TEST(Transport, CloseFlushesTheBufferThenLosesTheConnection) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
  std::string payload = pattern(8 * 1024 * 1024);
  connection.transport->write(payload);
  EXPECT_GT(connection.transport->get_write_buffer_size(), 0u);  // the kernel could not take it all
  connection.transport->close();
  EXPECT_TRUE(connection.transport->is_closing());
  EXPECT_FALSE(connection.transport->is_reading());
  EXPECT_EQ(protocol->lost, 0);  // never inside close()
  auto received = std::async(std::launch::async, [&peer = peer] { return peer.read_to_eof(); });
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_FALSE(protocol->lost_error);
  EXPECT_TRUE(received.get() == payload);
}

TEST(Transport, AbortDropsTheBuffer) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
  connection.transport->write(pattern(8 * 1024 * 1024));
  ASSERT_GT(connection.transport->get_write_buffer_size(), 0u);
  connection.transport->abort();
  EXPECT_EQ(connection.transport->get_write_buffer_size(), 0u);
  EXPECT_EQ(protocol->lost, 0);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_FALSE(protocol->lost_error);
  std::string received = peer.read_to_eof();
  EXPECT_LT(received.size(), 8u * 1024 * 1024);
  connection.transport->abort();  // idempotent
  connection.transport->close();
  EXPECT_EQ(protocol->lost, 1);
}

TEST(Transport, WriteAfterCloseIsDroppedWithOneWarning) {
  std::vector<std::string> warnings;
  LogSink previous = set_log_sink([&](LogLevel level, std::string_view text) {
    if (level == LogLevel::kWarning) warnings.emplace_back(text);
  });
  {
    EventLoop loop;
    auto protocol = std::make_shared<RecordingProtocol>();
    auto [connection, peer] = connect_to_raw_peer(loop, protocol);
    connection.transport->write("before");
    connection.transport->close();
    connection.transport->write("after close");
    connection.transport->write("again");
    ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
    connection.transport->write("after loss");
    EXPECT_EQ(peer.read_to_eof(), "before");
  }
  set_log_sink(std::move(previous));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("11 bytes dropped"), std::string::npos) << warnings[0];
}

TEST(Transport, WriteAfterWriteEofThrows) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  EXPECT_TRUE(connection.transport->can_write_eof());
  connection.transport->write("last words");
  connection.transport->write_eof();
  connection.transport->write_eof();  // idempotent
  EXPECT_THROW(connection.transport->write("more"), RuntimeError);
  EXPECT_EQ(peer.read_to_eof(), "last words");  // the peer sees EOF after the data
  // Reading goes on after a half-close.
  peer.send_all("reply");
  ASSERT_TRUE(run_until(loop, [&] { return protocol->received == "reply"; }));
}

TEST(Transport, EmptyWriteIsANoOp) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  connection.transport->write("");
  connection.transport->writelines({"", ""});
  EXPECT_EQ(connection.transport->get_write_buffer_size(), 0u);
}

TEST(Transport, WritelinesSendsEveryBufferInOrder) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  connection.transport->writelines({"one ", "", "two ", "three"});
  connection.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_EQ(peer.read_to_eof(), "one two three");
}

TEST(Transport, WritelinesAppliesFlowControlLikeWrite) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
  std::string block = pattern(1024 * 1024);
  std::vector<std::string_view> pieces(8, block);
  connection.transport->writelines(pieces);
  EXPECT_EQ(protocol->pauses, 1);  // asyncio 3.12 forgot this (gh-127655)
  std::string expected;
  for (int i = 0; i < 8; ++i) expected += block;
  auto received = std::async(std::launch::async, [&peer = peer] { return peer.read_to_eof(); });
  connection.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_EQ(protocol->resumes, 1);
  EXPECT_TRUE(received.get() == expected);
}

TEST(Transport, MovedStringIsSentIntact) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
  std::string payload = pattern(4 * 1024 * 1024, 3);
  std::string copy = payload;
  connection.transport->write(std::move(copy));
  connection.transport->write(std::string(pattern(100000, 5)));
  connection.transport->close();
  auto received = std::async(std::launch::async, [&peer = peer] { return peer.read_to_eof(); });
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_TRUE(received.get() == payload + pattern(100000, 5));
}

TEST(FlowControl, DefaultsAndDerivedLimits) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  Transport& transport = *connection.transport;
  EXPECT_EQ(transport.get_write_buffer_limits(), Limits(16384, 65536));
  transport.set_write_buffer_limits(1000);
  EXPECT_EQ(transport.get_write_buffer_limits(), Limits(250, 1000));
  transport.set_write_buffer_limits(std::nullopt, 100);
  EXPECT_EQ(transport.get_write_buffer_limits(), Limits(100, 400));
  transport.set_write_buffer_limits(10, 20 - 10);
  EXPECT_EQ(transport.get_write_buffer_limits(), Limits(10, 10));
  EXPECT_THROW(transport.set_write_buffer_limits(10, 11), std::invalid_argument);
  transport.set_write_buffer_limits();
  EXPECT_EQ(transport.get_write_buffer_limits(), Limits(16384, 65536));
}

TEST(FlowControl, PauseOverHighResumeAtLowAndEveryByteArrives) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
  Transport& transport = *connection.transport;
  std::string sent;
  std::size_t buffered_at_pause = 0;
  protocol->on_pause = [&] { buffered_at_pause = transport.get_write_buffer_size(); };
  // Write until the protocol is told to pause (the peer is not reading).
  for (unsigned i = 0; protocol->pauses == 0 && i < 100000; ++i) {
    std::string chunk = pattern(4096, i);
    sent += chunk;
    transport.write(chunk);
  }
  ASSERT_EQ(protocol->pauses, 1);
  EXPECT_GT(buffered_at_pause, 65536u);  // strictly over the high-water mark
  std::size_t buffered_at_resume = 0;
  protocol->on_resume = [&] { buffered_at_resume = transport.get_write_buffer_size(); };
  auto received = std::async(std::launch::async,
                             [&peer = peer, n = sent.size()] { return peer.read_exactly(n); });
  ASSERT_TRUE(run_until(loop, [&] { return protocol->resumes == 1; }));
  EXPECT_LE(buffered_at_resume, 16384u);
  ASSERT_TRUE(run_until(loop, [&] { return transport.get_write_buffer_size() == 0; }));
  EXPECT_TRUE(received.get() == sent);
  EXPECT_EQ(protocol->pauses, 1);
}

TEST(FlowControl, LimitBelowTheCurrentBufferPausesAtOnce) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
  Transport& transport = *connection.transport;
  transport.set_write_buffer_limits(64 * 1024 * 1024);
  transport.write(pattern(4 * 1024 * 1024));
  ASSERT_GT(transport.get_write_buffer_size(), 1000u);
  EXPECT_EQ(protocol->pauses, 0);
  transport.set_write_buffer_limits(1000);
  EXPECT_EQ(protocol->pauses, 1);  // synchronously, inside set_write_buffer_limits
  transport.abort();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
}

TEST(FlowControl, ThrowingPauseWritingIsReportedAndTheTransportGoesOn) {
  EventLoop loop;
  std::vector<std::string> reports;
  loop.set_exception_handler(
      [&](EventLoop&, const ExceptionContext& context) { reports.push_back(context.message); });
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
  protocol->on_pause = [] { throw std::runtime_error("pause failed"); };
  connection.transport->set_write_buffer_limits(1);
  connection.transport->write(pattern(4 * 1024 * 1024));
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0], "protocol.pause_writing() failed");
  EXPECT_FALSE(connection.transport->is_closing());
}

TEST(Reading, PauseAndResumeAreIdempotent) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  Transport& transport = *connection.transport;
  EXPECT_TRUE(transport.is_reading());
  transport.pause_reading();
  transport.pause_reading();
  EXPECT_FALSE(transport.is_reading());
  peer.send_all("held back");
  // A zero-timeout poll happens each time the loop is stopped and started:
  // run a few iterations and check nothing was read while paused.
  for (int i = 0; i < 5; ++i) {
    loop.stop();
    loop.run_forever();
  }
  EXPECT_EQ(protocol->received, "");
  transport.resume_reading();
  transport.resume_reading();
  EXPECT_TRUE(transport.is_reading());
  ASSERT_TRUE(run_until(loop, [&] { return protocol->received == "held back"; }));
  transport.close();
  transport.resume_reading();  // no effect once closing
  EXPECT_FALSE(transport.is_reading());
}

TEST(Reading, PausingInConnectionMadeReadsNothing) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  protocol->on_made = [](Transport& t) { t.pause_reading(); };
  RawSocket listener = RawSocket::listen_on();
  SocketAddress address = listener.address();
  auto future =
      loop.create_connection([protocol] { return protocol; }, "127.0.0.1", address.port());
  RawSocket peer;
  std::thread acceptor([&] {
    peer = listener.accept_one();
    peer.send_all("early data");
  });
  Connection<RecordingProtocol> connection = loop.run_until_complete(future);
  acceptor.join();
  for (int i = 0; i < 5; ++i) {
    loop.stop();
    loop.run_forever();
  }
  EXPECT_EQ(protocol->received, "");
  connection.transport->resume_reading();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->received == "early data"; }));
}

TEST(Reading, ReadsLargerThanTheBufferArriveInBoundedChunks) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  std::string payload = pattern(3 * 1024 * 1024 + 7);
  std::thread sender([&peer = peer, &payload] {
    peer.send_all(payload);
    peer.shutdown_write();
  });
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  sender.join();
  EXPECT_TRUE(protocol->received == payload);
  EXPECT_LE(protocol->largest_chunk, 256u * 1024);
  EXPECT_GT(protocol->chunks, 1u);
}

TEST(Eof, ReturningFalseClosesTheTransport) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  peer.send_all("bye");
  peer.shutdown_write();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_TRUE(protocol->eof);
  EXPECT_EQ(protocol->received, "bye");
  EXPECT_TRUE(peer.at_eof() || peer.read_to_eof().empty());
}

TEST(Eof, ReturningTrueKeepsTheTransportOpenForWriting) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  protocol->on_eof = [] { return true; };
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  peer.send_all("question");
  peer.shutdown_write();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->eof; }));
  EXPECT_FALSE(connection.transport->is_closing());
  EXPECT_EQ(protocol->lost, 0);
  connection.transport->write("answer after eof");
  connection.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_EQ(peer.read_to_eof(), "answer after eof");
}

TEST(Errors, PeerResetReachesConnectionLost) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  peer.reset_connection();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_EQ(protocol->lost_error, std::errc::connection_reset);
}

TEST(Errors, WritingToAClosedPeerNeverRaisesSigpipe) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  protocol->on_eof = [] { return true; };  // keep writing after the peer left
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  peer.reset();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->eof; }));
  // The first write may still be accepted by the kernel; later ones meet the
  // reset. Either way the process must survive and the protocol must learn.
  for (int i = 0; i < 50 && protocol->lost == 0 && !connection.transport->is_closing(); ++i) {
    connection.transport->write(pattern(65536));
    loop.stop();
    loop.run_forever();
  }
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_TRUE(protocol->lost_error == std::errc::broken_pipe ||
              protocol->lost_error == std::errc::connection_reset)
      << protocol->lost_error.message();
}

TEST(Errors, ThrowingDataReceivedClosesOnlyThatConnection) {
  EventLoop loop;
  std::vector<ExceptionContext> reports;
  loop.set_exception_handler(
      [&](EventLoop&, const ExceptionContext& context) { reports.push_back(context); });
  auto bad = std::make_shared<RecordingProtocol>();
  auto good = std::make_shared<RecordingProtocol>();
  bad->on_data = [](std::string_view) { throw std::runtime_error("protocol bug"); };
  auto [bad_connection, bad_peer] = connect_to_raw_peer(loop, bad);
  auto [good_connection, good_peer] = connect_to_raw_peer(loop, good);
  bad_peer.send_all("x");
  good_peer.send_all("y");
  ASSERT_TRUE(run_until(loop, [&] { return bad->lost == 1 && good->received == "y"; }));
  EXPECT_EQ(bad->lost_error, Error::kCallbackRaised);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].message, "Fatal error: protocol.data_received() call failed.");
  EXPECT_EQ(reports[0].transport, bad_connection.transport.get());
  EXPECT_EQ(reports[0].protocol, static_cast<BaseProtocol*>(bad.get()));
  EXPECT_EQ(describe(reports[0]),
            "Fatal error: protocol.data_received() call failed.: protocol bug");
  EXPECT_EQ(good->lost, 0);
  EXPECT_FALSE(good_connection.transport->is_closing());
  good_peer.send_all("z");
  ASSERT_TRUE(run_until(loop, [&] { return good->received == "yz"; }));
}

TEST(Errors, ThrowingEofReceivedIsFatalForThatConnection) {
  EventLoop loop;
  int reports = 0;
  loop.set_exception_handler([&](EventLoop&, const ExceptionContext&) { ++reports; });
  auto protocol = std::make_shared<RecordingProtocol>();
  protocol->on_eof = []() -> bool { throw std::runtime_error("eof bug"); };
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  peer.shutdown_write();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_EQ(protocol->lost_error, Error::kCallbackRaised);
  EXPECT_EQ(reports, 1);
}

TEST(Errors, ThrowingConnectionLostIsReported) {
  EventLoop loop;
  std::vector<std::string> reports;
  loop.set_exception_handler(
      [&](EventLoop&, const ExceptionContext& context) { reports.push_back(context.message); });
  auto protocol = std::make_shared<RecordingProtocol>();
  protocol->on_lost = [](std::error_code) { throw std::runtime_error("lost bug"); };
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  connection.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return !reports.empty(); }));
  EXPECT_EQ(reports[0], "Exception in protocol.connection_lost()");
  EXPECT_EQ(protocol->lost, 1);
}

TEST(Ipv6, ConnectsAndReportsAddressesLikePython) {
  int probe = ::socket(AF_INET6, SOCK_STREAM, 0);
  auto loopback6 = SocketAddress::parse("::1", 0);
  bool available = probe >= 0 && ::bind(probe, loopback6->data(), loopback6->size()) == 0;
  if (probe >= 0) ::close(probe);
  if (!available) GTEST_SKIP() << "no IPv6 loopback on this machine";
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol, "::1");
  auto peername = connection.transport->get_extra_info<SocketAddress>("peername");
  ASSERT_TRUE(peername);
  EXPECT_EQ(peername->family(), AF_INET6);
  EXPECT_EQ(peername->to_string(), "('::1', " + std::to_string(peername->port()) + ", 0, 0)");
  peer.send_all("over v6");
  ASSERT_TRUE(run_until(loop, [&] { return protocol->received == "over v6"; }));
}

}  // namespace
}  // namespace tulip::testing
