// An application that uses transports out of order: writes after close, abort,
// loss or the loop's end; pauses and resumes reading twice; closes the loop
// while servers, connections, attempts and timers are all still live.
#include <gtest/gtest.h>

#include <future>
#include <string>
#include <thread>
#include <vector>

#include "fault/fault_support.hpp"
#include "loop_access.hpp"
#include "loop_internals.hpp"

namespace tulip::testing {
namespace {

// ---- Writing to a transport that is gone ------------------------------------------------

TEST(WriteAfterTheEnd, EveryWayOfWritingIsDroppedWithOneWarningPerTransport) {
  CapturedLog log;
  auto aborted_protocol = std::make_shared<RecordingProtocol>();
  auto orphaned_protocol = std::make_shared<RecordingProtocol>();
  std::shared_ptr<Transport> orphaned;
  std::string aborted_peer_saw;
  {
    EventLoop loop;
    auto [aborted, aborted_peer] = connect_to_raw_peer(loop, aborted_protocol);
    auto [kept, kept_peer] = connect_to_raw_peer(loop, orphaned_protocol);
    orphaned = kept.transport;
    Transport& transport = *aborted.transport;
    transport.write("sent");
    transport.abort();
    transport.write("after abort");
    transport.write(std::string("moved after abort"));
    transport.writelines({"lines ", "after abort"});
    transport.write_eof();  // a no-op once closing, not an error
    ASSERT_TRUE(run_until(loop, [&] { return aborted_protocol->lost == 1; }));
    transport.write("after loss");
    EXPECT_EQ(transport.get_write_buffer_size(), 0u);
    aborted_peer_saw = aborted_peer.read_to_eof();
  }
  // The loop is gone; the transport object is not, and stays harmless.
  EXPECT_EQ(orphaned_protocol->lost, 1);
  EXPECT_EQ(orphaned_protocol->lost_error, std::errc::connection_aborted);
  orphaned->write("after the loop");
  orphaned->writelines({"still ", "nothing"});
  orphaned->write_eof();
  orphaned->pause_reading();
  orphaned->resume_reading();
  orphaned->set_write_buffer_limits(10);
  EXPECT_FALSE(orphaned->is_reading());
  EXPECT_TRUE(orphaned->is_closing());
  EXPECT_EQ(orphaned->get_write_buffer_size(), 0u);
  EXPECT_EQ(orphaned->get_extra_info<int>("socket"), -1);
  EXPECT_EQ(orphaned->get_protocol(), nullptr);

  EXPECT_EQ(aborted_peer_saw, "sent");
  ASSERT_EQ(log.count(LogLevel::kWarning), 2u) << "one warning per transport, at the first drop";
  EXPECT_NE(log.lines[0].second.find("11 bytes dropped"), std::string::npos) << log.lines[0].second;
  EXPECT_NE(log.lines[1].second.find("14 bytes dropped"), std::string::npos) << log.lines[1].second;
  EXPECT_NE(log.lines[1].second.find("127.0.0.1"), std::string::npos) << log.lines[1].second;
}

// ---- Pausing and resuming reading twice -------------------------------------------------

TEST(PauseReading, TwiceFromInsideDataReceivedNeedsOneResumeAndLosesNothing) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  protocol->on_data = [&](std::string_view) {
    if (protocol->chunks != 1) return;
    protocol->transport->pause_reading();
    protocol->transport->pause_reading();
  };
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  Transport& transport = *connection.transport;
  std::string payload = pattern(1024 * 1024 + 17, 9);
  std::thread sender([&peer = peer, &payload] {
    peer.send_all(payload);
    peer.shutdown_write();
  });
  ASSERT_TRUE(run_until(loop, [&] { return protocol->chunks == 1; }));
  EXPECT_FALSE(transport.is_reading());
  run_iterations(loop, 50);
  EXPECT_EQ(protocol->chunks, 1u);  // paused: nothing more, however much is waiting
  EXPECT_FALSE(protocol->eof);
  transport.resume_reading();
  transport.resume_reading();
  EXPECT_TRUE(transport.is_reading());
  // Resuming twice did not count up either: one pause stops reading again.
  transport.pause_reading();
  EXPECT_FALSE(transport.is_reading());
  std::size_t chunks = protocol->chunks;
  run_iterations(loop, 20);
  EXPECT_EQ(protocol->chunks, chunks);
  transport.resume_reading();
  bool lost = run_until(loop, [&] { return protocol->lost == 1; });
  sender.join();
  ASSERT_TRUE(lost);
  EXPECT_TRUE(protocol->received == payload);
  EXPECT_TRUE(protocol->eof);
}

// A buffered protocol that pauses reading from inside get_buffer.
class PausingInGetBuffer final : public BufferedProtocol {
 public:
  void connection_made(Transport& t) override { transport = &t; }
  std::span<std::byte> get_buffer(std::size_t) override {
    ++buffers;
    if (pause_next) {
      pause_next = false;
      transport->pause_reading();
      transport->pause_reading();
    }
    return std::span<std::byte>(buffer, sizeof(buffer));
  }
  void buffer_updated(std::size_t bytes) override {
    EXPECT_TRUE(transport->is_reading()) << "data delivered while reading is paused";
    received.append(reinterpret_cast<const char*>(buffer), bytes);
  }
  void connection_lost(std::error_code error) override {
    ++lost;
    lost_error = error;
  }

  Transport* transport = nullptr;
  bool pause_next = true;
  int buffers = 0;
  int lost = 0;
  std::error_code lost_error;
  std::string received;
  std::byte buffer[2048];
};

TEST(PauseReading, FromInsideGetBufferDeliversNothingUntilResumed) {
  EventLoop loop;
  auto protocol = std::make_shared<PausingInGetBuffer>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  peer.send_all("first bytes");
  ASSERT_TRUE(run_until(loop, [&] { return protocol->buffers == 1; }));
  run_iterations(loop, 20);
  EXPECT_EQ(protocol->received, "");
  EXPECT_EQ(protocol->buffers, 1);
  connection.transport->resume_reading();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->received == "first bytes"; }));
  peer.shutdown_write();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_FALSE(protocol->lost_error);
}

// ---- Closing the loop with everything still live ------------------------------------------

// Records its own loss into a shared list; optionally misbehaves in connection_lost.
class LossRecorder final : public Protocol {
 public:
  explicit LossRecorder(std::vector<std::error_code>& losses, std::size_t greeting = 0)
      : losses_(losses), greeting_(greeting) {}
  std::function<void(Transport&)> on_lost;
  void connection_made(Transport& t) override {
    transport_ = &t;
    if (greeting_ > 0) t.write(pattern(greeting_));
  }
  void connection_lost(std::error_code error) override {
    losses_.push_back(error);
    if (on_lost) on_lost(*transport_);
  }

 private:
  std::vector<std::error_code>& losses_;
  std::size_t greeting_;
  Transport* transport_ = nullptr;
};

TEST(LoopClose, WithServersConnectionsAttemptsAndTimersLiveTellsEachProtocolOnce) {
  std::vector<std::error_code> server_losses;
  std::vector<std::error_code> client_losses;
  std::weak_ptr<Transport> held_by_timer;
  std::weak_ptr<Server> weak_server;
  int late_factory_calls = 0;
  RawSocket full = RawSocket::listen_on("127.0.0.1", 0);
  std::vector<RawSocket> fillers;
  std::vector<RawSocket> clients;
  RawSocket listener = RawSocket::listen_on("127.0.0.1", 16, kSmallReceiveBuffer);
  std::vector<RawSocket> client_peers;
  CapturedLog log;
  StuckLookup stuck;  // the name lookup is still in flight when the loop closes
  {
    EventLoop loop;
    detail::LoopAccess::internals(loop).resolver.set_lookup_for_testing(stuck.lookup());
    ExceptionLog exceptions(loop);
    // A server with three accepted connections, each with megabytes still buffered.
    auto server = loop.run_until_complete(loop.create_server(
        [&] { return std::make_shared<LossRecorder>(server_losses, 8 * 1024 * 1024); }, "127.0.0.1",
        0));
    weak_server = server;
    auto address = *SocketAddress::parse("127.0.0.1", server->sockets().at(0).sockname.port());
    for (int i = 0; i < 3; ++i) clients.push_back(RawSocket::connect_to(address));
    ASSERT_TRUE(run_until(loop, [&] { return server->connection_count() == 3; }));
    Future<void> closed = server->wait_closed();

    // Two client connections; the first misbehaves when told the loop is closing.
    std::vector<std::shared_ptr<Transport>> transports;
    for (int i = 0; i < 2; ++i) {
      auto protocol = std::make_shared<LossRecorder>(client_losses, i == 0 ? 0 : 8 * 1024 * 1024);
      if (i == 0) {
        protocol->on_lost = [&](Transport& t) {
          t.write("from connection_lost");
          t.close();
          // Even a new connection attempt, on a loop that is closing.
          loop.create_connection(
              [&] {
                ++late_factory_calls;
                return std::make_shared<RecordingProtocol>();
              },
              "127.0.0.1", listener.address().port());
        };
      }
      auto future = loop.create_connection([protocol] { return protocol; }, "127.0.0.1",
                                           listener.address().port());
      transports.push_back(loop.run_until_complete(future).transport);
      client_peers.push_back(listener.accept_one());
    }
    // A timer that keeps a transport alive through its capture.
    held_by_timer = transports[1];
    loop.call_later(3600.0, [keep = transports[1]] { keep->close(); });
    transports.clear();
    // A connection attempt that will never complete (full accept queue) and a lookup.
    for (int i = 0; i < 4; ++i) {
      RawSocket filler(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      ::connect(filler.fd(), full.address().data(), full.address().size());
      fillers.push_back(std::move(filler));
    }
    auto hanging = loop.create_connection(
        [&] {
          ++late_factory_calls;
          return std::make_shared<RecordingProtocol>();
        },
        "127.0.0.1", full.address().port());
    auto lookup = loop.create_connection(
        [&] {
          ++late_factory_calls;
          return std::make_shared<RecordingProtocol>();
        },
        "nosuch.invalid", 80);
    run_iterations(loop, 5);

    loop.close();
    EXPECT_TRUE(loop.is_closed());
    EXPECT_FALSE(server->is_serving());
    EXPECT_TRUE(server->sockets().empty());
    EXPECT_EQ(server->connection_count(), 0u);
    EXPECT_FALSE(hanging.done());
    EXPECT_TRUE(closed.done());  // closed, and every connection is gone
    EXPECT_TRUE(exceptions.reports.empty());
    EXPECT_TRUE(detail::LoopAccess::internals(loop).registry.transports.empty());
  }
  // Every protocol that was started heard once, with the documented error.
  ASSERT_EQ(server_losses.size(), 3u);
  for (std::error_code error : server_losses) EXPECT_EQ(error, std::errc::connection_aborted);
  ASSERT_EQ(client_losses.size(), 2u);
  for (std::error_code error : client_losses) EXPECT_EQ(error, std::errc::connection_aborted);
  EXPECT_EQ(late_factory_calls, 0);
  EXPECT_EQ(log.count(LogLevel::kWarning), 1u);  // the write from connection_lost
  EXPECT_EQ(log.count(LogLevel::kError), 0u);
  // Nothing outlives the loop but what the test itself holds.
  EXPECT_TRUE(held_by_timer.expired());
  EXPECT_TRUE(weak_server.expired());
  // The peers see the connections end.
  for (RawSocket& client : clients) {
    std::string greeting = client.read_to_eof();
    EXPECT_TRUE(greeting == pattern(8 * 1024 * 1024).substr(0, greeting.size()));
  }
  for (RawSocket& peer : client_peers) peer.read_to_eof();
}

}  // namespace
}  // namespace tulip::testing
