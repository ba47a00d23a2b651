// Peers that misbehave on an established connection: they reset in the middle
// of a stream, half-close, never read, trickle one byte at a time, or never
// answer. Each test drives a transport against a raw socket and checks the
// bytes and the callback sequence.
#include <gtest/gtest.h>

#include <cstdint>
#include <future>
#include <string>
#include <thread>

#include "fault/fault_support.hpp"
#include "loop_access.hpp"
#include "loop_internals.hpp"

namespace tulip::testing {
namespace {

// ---- Reset in the middle of a stream ---------------------------------------------

TEST(PeerReset, WhileWeAreWritingEndsTheConnectionOnceWithTheResetError) {
  EventLoop loop;
  ExceptionLog exceptions(loop);
  CapturedLog log;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
  Transport& transport = *connection.transport;
  // Some traffic in both directions first, so the reset comes mid-stream.
  std::string inbound = pattern(32 * 1024, 1);
  peer.send_all(inbound);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->received.size() == inbound.size(); }));
  EXPECT_TRUE(protocol->received == inbound);
  transport.write(pattern(8 * 1024 * 1024, 2));  // the peer does not read: most stays buffered
  ASSERT_GT(transport.get_write_buffer_size(), 0u);
  peer.reset_connection();  // SO_LINGER 0: RST, with our bytes unread on its side
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_TRUE(is_reset_error(protocol->lost_error)) << protocol->lost_error.message();
  EXPECT_FALSE(protocol->eof);  // a reset is not an end of stream
  EXPECT_EQ(transport.get_write_buffer_size(), 0u);
  EXPECT_TRUE(transport.is_closing());
  // An OS error ends the connection without being reported as a bug.
  EXPECT_TRUE(exceptions.reports.empty());
  EXPECT_EQ(log.count(LogLevel::kError), 0u);
  // Nothing follows connection_lost (RecordingProtocol fails on any callback).
  std::size_t received = protocol->received.size();
  run_iterations(loop, 20);
  EXPECT_EQ(protocol->lost, 1);
  EXPECT_EQ(protocol->received.size(), received);
}

TEST(PeerReset, WhileWeAreReadingDeliversOnlyAPrefixThenTheError) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  std::string outbound = pattern(4 * 1024 * 1024, 3);
  // The peer sends a stream and resets as soon as its kernel took the last
  // byte: what was not yet delivered is lost, what was must be exact.
  std::thread sender([&peer = peer, &outbound] {
    peer.send_all(outbound);
    peer.reset_connection();
  });
  bool lost = run_until(loop, [&] { return protocol->lost == 1; });
  sender.join();
  ASSERT_TRUE(lost);
  EXPECT_EQ(protocol->lost_error, std::errc::connection_reset) << protocol->lost_error.message();
  EXPECT_FALSE(protocol->eof);
  ASSERT_LE(protocol->received.size(), outbound.size());
  EXPECT_TRUE(protocol->received == outbound.substr(0, protocol->received.size()));
}

TEST(PeerReset, ReachesABufferedProtocolTheSameWay) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingBufferedProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  peer.send_all("partial request");
  ASSERT_TRUE(run_until(loop, [&] { return protocol->received == "partial request"; }));
  peer.reset_connection();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_EQ(protocol->lost_error, std::errc::connection_reset);
  EXPECT_FALSE(protocol->eof);
  run_iterations(loop, 10);
  EXPECT_EQ(protocol->lost, 1);
}

TEST(PeerReset, WhileReadingIsPausedIsReportedOnceReadingResumes) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  connection.transport->pause_reading();
  peer.send_all("unread");
  peer.reset_connection();
  run_iterations(loop, 20);
  EXPECT_EQ(protocol->received, "");  // paused: nothing is delivered
  // However soon the reset is noticed, it ends the connection once, and no
  // later than when reading resumes.
  connection.transport->resume_reading();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_EQ(protocol->lost_error, std::errc::connection_reset) << protocol->lost_error.message();
  EXPECT_TRUE(protocol->received == "" || protocol->received == "unread") << protocol->received;
  EXPECT_FALSE(protocol->eof);
}

// ---- Half-close -------------------------------------------------------------------

TEST(PeerHalfClose, EofReturningFalseStillFlushesWhatWeHadBuffered) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
  std::string reply = pattern(4 * 1024 * 1024, 4);
  connection.transport->write(reply);
  ASSERT_GT(connection.transport->get_write_buffer_size(), 0u);
  // The peer finishes sending while our reply is still mostly buffered; the
  // default eof_received (false) closes, and close() must flush first.
  peer.send_all("request");
  peer.shutdown_write();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->eof; }));
  EXPECT_EQ(protocol->received, "request");
  EXPECT_TRUE(connection.transport->is_closing());
  EXPECT_EQ(protocol->lost, 0);  // not before the buffer is sent
  auto drained = std::async(std::launch::async, [&peer = peer] { return peer.read_to_eof(); });
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_FALSE(protocol->lost_error);
  EXPECT_TRUE(drained.get() == reply);
}

TEST(PeerHalfClose, EofReturningTrueLetsUsAnswerWithMoreThanTheKernelHolds) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  std::string request = pattern(2 * 1024 * 1024 + 5, 5);
  std::string answer = pattern(6 * 1024 * 1024 + 3, 6);
  protocol->on_eof = [&] {
    // Everything the peer sent came before its EOF, in order.
    EXPECT_TRUE(protocol->received == request);
    protocol->transport->write(answer);
    protocol->transport->close();
    return true;
  };
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  std::thread sender([&peer = peer, &request] {
    peer.send_all(request);
    peer.shutdown_write();
  });
  auto drained = std::async(std::launch::async, [&peer = peer] { return peer.read_to_eof(); });
  bool lost = run_until(loop, [&] { return protocol->lost == 1; });
  sender.join();
  ASSERT_TRUE(lost);
  EXPECT_TRUE(protocol->eof);
  EXPECT_FALSE(protocol->lost_error);
  EXPECT_TRUE(drained.get() == answer);
}

TEST(PeerHalfClose, EofWhileReadingIsPausedWaitsBehindTheData) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  connection.transport->pause_reading();
  peer.send_all("held back");
  peer.shutdown_write();
  run_iterations(loop, 20);
  EXPECT_EQ(protocol->received, "");
  EXPECT_FALSE(protocol->eof);  // the EOF is not seen before the data it follows
  EXPECT_EQ(protocol->lost, 0);
  connection.transport->resume_reading();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_EQ(protocol->received, "held back");
  EXPECT_TRUE(protocol->eof);
  EXPECT_FALSE(protocol->lost_error);
}

// ---- A peer that never reads ------------------------------------------------------

// Writes `total` bytes of a stream in `chunk`-sized pieces, honouring flow
// control: stops on pause_writing, goes on from resume_writing.
class BulkWriter final : public Protocol {
 public:
  BulkWriter(const PeriodicStream& stream, std::uint64_t total, std::size_t chunk)
      : stream_(stream), total_(total), chunk_(chunk) {}

  void connection_made(Transport& t) override { transport_ = &t; }
  void pause_writing() override {
    EXPECT_FALSE(paused);
    paused = true;
    ++pauses;
  }
  void resume_writing() override {
    EXPECT_TRUE(paused);
    paused = false;
    ++resumes;
    pump();
  }
  void connection_lost(std::error_code error) override {
    ++lost;
    lost_error = error;
    transport_ = nullptr;
  }

  void pump() {
    while (!paused && written < total_) {
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_, total_ - written));
      transport_->write(stream_.window(written, n));
      written += n;
      largest_buffer = std::max(largest_buffer, transport_->get_write_buffer_size());
    }
  }

  bool paused = false;
  int pauses = 0;
  int resumes = 0;
  int lost = 0;
  std::error_code lost_error;
  std::uint64_t written = 0;
  std::size_t largest_buffer = 0;

 private:
  const PeriodicStream& stream_;
  std::uint64_t total_;
  std::size_t chunk_;
  Transport* transport_ = nullptr;
};

TEST(PeerNeverReads, HundredsOfMiBStayBoundedByFlowControlAndArriveExactly) {
  constexpr std::uint64_t kTotal = 256ull * 1024 * 1024;
  constexpr std::size_t kChunk = 256 * 1024;
  PeriodicStream stream(4 * 1024 * 1024 + 7);
  EventLoop loop;
  auto protocol = std::make_shared<BulkWriter>(stream, kTotal, kChunk);
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  Transport& transport = *connection.transport;
  const std::size_t high = transport.get_write_buffer_limits().second;
  protocol->pump();
  // The peer reads nothing: once the kernel's buffers are full, the buffer
  // goes over the high-water mark and the protocol is told to stop.
  ASSERT_TRUE(run_until(loop, [&] { return protocol->paused; }));
  EXPECT_EQ(protocol->pauses, 1);
  EXPECT_LT(protocol->written, kTotal);
  EXPECT_GT(transport.get_write_buffer_size(), high);
  // A protocol that honours pause_writing never has more buffered than the
  // high-water mark plus the one write that crossed it.
  EXPECT_LE(transport.get_write_buffer_size(), high + kChunk);
  // However the kernel drains meanwhile, the bound holds at every write.
  run_iterations(loop, 50);
  EXPECT_LE(protocol->largest_buffer, high + kChunk);

  // Now the peer reads and checks every byte as it comes.
  auto reader = std::async(std::launch::async, [&peer = peer, &stream] {
    std::string buffer(256 * 1024, '\0');
    std::uint64_t offset = 0;
    for (;;) {
      ssize_t n = ::recv(peer.fd(), buffer.data(), buffer.size(), 0);
      if (n <= 0) return offset;
      if (!stream.matches(offset, std::string_view(buffer.data(), static_cast<std::size_t>(n)))) {
        ADD_FAILURE() << "the bytes at offset " << offset << " differ";
        return offset;
      }
      offset += static_cast<std::uint64_t>(n);
    }
  });
  bool all_sent = run_until(
      loop, [&] { return protocol->written == kTotal && transport.get_write_buffer_size() == 0; },
      100.0);
  transport.close();
  bool lost = run_until(loop, [&] { return protocol->lost == 1; });
  if (!lost) transport.abort();  // lets the reader see EOF so the test ends
  ASSERT_TRUE(all_sent);
  ASSERT_TRUE(lost);
  EXPECT_EQ(reader.get(), kTotal);
  EXPECT_FALSE(protocol->lost_error);
  EXPECT_GE(protocol->pauses, 1);
  EXPECT_EQ(protocol->resumes, protocol->pauses);
  EXPECT_LE(protocol->largest_buffer, high + kChunk);
}

// ---- A peer that sends one byte at a time -------------------------------------------

TEST(PeerTrickles, ThousandsOfOneByteSendsArriveInOrder) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  // Our side echoes byte by byte too: thousands of 1-byte writes.
  protocol->on_data = [&](std::string_view data) {
    for (char c : data) protocol->transport->write(std::string_view(&c, 1));
  };
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  int one = 1;
  ::setsockopt(peer.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  std::string message = pattern(5000, 7);
  std::thread sender([&peer = peer, &message] {
    for (char c : message) peer.send_all(std::string_view(&c, 1));
    peer.shutdown_write();
  });
  auto echoed = std::async(std::launch::async, [&peer = peer] { return peer.read_to_eof(); });
  bool lost = run_until(loop, [&] { return protocol->lost == 1; });
  sender.join();
  ASSERT_TRUE(lost);
  EXPECT_TRUE(protocol->received == message);
  EXPECT_TRUE(protocol->eof);
  EXPECT_TRUE(echoed.get() == message);
}

TEST(PeerTrickles, LockStepSingleBytesAreEachDeliveredAlone) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  protocol->on_data = [&](std::string_view data) { protocol->transport->write(data); };
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  constexpr int kRounds = 2000;
  std::string message = pattern(kRounds, 8);
  // The peer sends the next byte only once the previous one came back, so
  // every read can find exactly one byte: as many data_received calls as bytes.
  auto peer_done = std::async(std::launch::async, [&peer = peer, &message] {
    for (char c : message) {
      peer.send_all(std::string_view(&c, 1));
      if (peer.read_exactly(1) != std::string(1, c)) return false;
    }
    peer.shutdown_write();
    return true;
  });
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_TRUE(peer_done.get());
  EXPECT_TRUE(protocol->received == message);
  EXPECT_EQ(protocol->chunks, static_cast<std::size_t>(kRounds));
  EXPECT_EQ(protocol->largest_chunk, 1u);
}

// ---- A peer that accepts and never answers ------------------------------------------

TEST(PeerSilent, AUserTimeoutAbortsTheConnectionAndCleansUp) {
  EventLoop loop;
  CapturedLog log;
  auto protocol = std::make_shared<RecordingProtocol>();
  TimerHandle deadline;
  bool timed_out = false;
  protocol->on_made = [&](Transport& t) {
    t.write("request that is never answered");
    deadline = loop.call_later(0.2, [&] {
      timed_out = true;
      protocol->transport->abort();
    });
  };
  protocol->on_lost = [&](std::error_code) { deadline.cancel(); };
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  std::weak_ptr<Transport> weak = connection.transport;
  connection.transport.reset();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_TRUE(timed_out);
  EXPECT_FALSE(protocol->lost_error);  // abort() is a clean local close
  EXPECT_TRUE(protocol->received.empty());
  // The peer got the request, then the end of the connection.
  EXPECT_EQ(peer.read_to_eof(), "request that is never answered");
  // The loop let the transport go: the captures of the fired timer were dropped.
  EXPECT_TRUE(weak.expired());
  EXPECT_EQ(detail::LoopAccess::internals(loop).registry.transports.size(), 0u);
  EXPECT_TRUE(log.lines.empty());
}

// Serves connections that must send something within `idle` seconds.
class IdleTimeoutProtocol final : public Protocol {
 public:
  IdleTimeoutProtocol(EventLoop& loop, double idle, int& timeouts, int& losses)
      : loop_(loop), idle_(idle), timeouts_(timeouts), losses_(losses) {}
  void connection_made(Transport& t) override {
    transport_ = &t;
    timer_ = loop_.call_later(idle_, [this] {
      ++timeouts_;
      transport_->write("idle timeout\n");
      transport_->close();
    });
  }
  void data_received(std::string_view) override { timer_.cancel(); }
  void connection_lost(std::error_code) override {
    timer_.cancel();  // the timer's capture of `this` must never run after this
    ++losses_;
  }

 private:
  EventLoop& loop_;
  double idle_;
  int& timeouts_;
  int& losses_;
  Transport* transport_ = nullptr;
  TimerHandle timer_;
};

TEST(PeerSilent, AServerTimesOutClientsThatConnectAndSayNothing) {
  EventLoop loop;
  int timeouts = 0;
  int losses = 0;
  auto server = loop.run_until_complete(loop.create_server(
      [&] { return std::make_shared<IdleTimeoutProtocol>(loop, 0.1, timeouts, losses); },
      "127.0.0.1", 0));
  auto address = *SocketAddress::parse("127.0.0.1", server->sockets().at(0).sockname.port());
  std::vector<RawSocket> silent;
  for (int i = 0; i < 5; ++i) silent.push_back(RawSocket::connect_to(address));
  RawSocket talker = RawSocket::connect_to(address);
  talker.send_all("hi");
  ASSERT_TRUE(run_until(loop, [&] { return timeouts == 5 && losses == 5; }));
  for (RawSocket& client : silent) EXPECT_EQ(client.read_to_eof(), "idle timeout\n");
  EXPECT_EQ(server->connection_count(), 1u);  // the client that spoke is still served
  talker.reset();
  ASSERT_TRUE(run_until(loop, [&] { return server->connection_count() == 0; }));
  EXPECT_EQ(timeouts, 5);
}

}  // namespace
}  // namespace tulip::testing
