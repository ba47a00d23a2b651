// Transport and protocol rules over real loopback sockets: BufferedProtocol
// reads, and who outlives whom (the loop, the transport, the protocol) when a
// connection ends from any callback.
#include <gtest/gtest.h>

#include <future>
#include <string>
#include <thread>
#include <vector>

#include "support/loopback.hpp"

namespace tulip::testing {
namespace {

// A protocol that reads straight into its own memory, in small pieces.
class SmallBufferProtocol final : public BufferedProtocol {
 public:
  std::span<std::byte> get_buffer(std::size_t size_hint) override {
    hint = size_hint;
    return std::span<std::byte>(buffer, sizeof(buffer));
  }
  void buffer_updated(std::size_t bytes) override {
    EXPECT_LE(bytes, sizeof(buffer));
    received.append(reinterpret_cast<const char*>(buffer), bytes);
  }
  void connection_lost(std::error_code error) override {
    ++lost;
    lost_error = error;
  }
  std::byte buffer[1000];
  std::size_t hint = 0;
  std::string received;
  int lost = 0;
  std::error_code lost_error;
};

TEST(BufferedProtocol, ReceivesEveryByteIntoItsOwnBuffer) {
  EventLoop loop;
  auto protocol = std::make_shared<SmallBufferProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  std::string payload = pattern(300000);
  std::thread sender([&peer = peer, &payload] {
    peer.send_all(payload);
    peer.shutdown_write();
  });
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  sender.join();
  EXPECT_EQ(protocol->hint, 256u * 1024);
  EXPECT_TRUE(protocol->received == payload);
  EXPECT_FALSE(protocol->lost_error);
}

class EmptyBufferProtocol final : public BufferedProtocol {
 public:
  std::span<std::byte> get_buffer(std::size_t) override { return {}; }
  void buffer_updated(std::size_t) override { ADD_FAILURE() << "no buffer, no update"; }
  void connection_lost(std::error_code error) override { lost_error = error; }
  std::error_code lost_error;
};

TEST(BufferedProtocol, EmptyBufferIsFatal) {
  EventLoop loop;
  int reports = 0;
  loop.set_exception_handler([&](EventLoop&, const ExceptionContext&) { ++reports; });
  auto protocol = std::make_shared<EmptyBufferProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  peer.send_all("data");
  ASSERT_TRUE(run_until(loop, [&] { return bool(protocol->lost_error); }));
  EXPECT_EQ(protocol->lost_error, Error::kEmptyBuffer);
  EXPECT_EQ(reports, 1);
}

TEST(Lifetime, LoopDestroyedWithLiveTransportsTellsTheProtocols) {
  auto protocol = std::make_shared<RecordingProtocol>();
  std::shared_ptr<Transport> kept;
  int fds_before = open_fd_count();
  {
    EventLoop loop;
    auto [connection, peer] = connect_to_raw_peer(loop, protocol);
    kept = connection.transport;
    connection.transport->write("unsent?");
  }
  EXPECT_EQ(protocol->lost, 1);
  EXPECT_EQ(protocol->lost_error, std::errc::connection_aborted);
  // The transport object outlives its loop safely: every method is a no-op.
  EXPECT_TRUE(kept->is_closing());
  kept->close();
  kept->abort();
  EXPECT_EQ(open_fd_count(), fds_before);
}

TEST(Lifetime, ConnectionLostRunsOnAFreshStack) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  int depth = 0;
  int depth_at_loss = -1;
  protocol->on_data = [&](std::string_view) {
    ++depth;
    protocol->transport->close();
    protocol->transport->abort();
    --depth;
  };
  protocol->on_lost = [&](std::error_code) { depth_at_loss = depth; };
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  peer.send_all("trigger");
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_EQ(depth_at_loss, 0);  // not nested inside data_received
}

// Close or abort from inside each protocol callback: always safe, always one loss.
enum class Where { kMade, kData, kEof, kPause };

// More than the kernel's socket buffers can absorb, so pause_writing fires.
constexpr std::size_t kLargePayload = 16 * 1024 * 1024;

void close_from(Where where, bool use_abort) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto finish = [&](Transport& t) {
    if (use_abort) {
      t.abort();
    } else {
      t.close();
    }
    t.write("ignored");  // after close: dropped, never a crash
  };
  if (where == Where::kMade) protocol->on_made = finish;
  if (where == Where::kData)
    protocol->on_data = [&](std::string_view) { finish(*protocol->transport); };
  if (where == Where::kEof) {
    protocol->on_eof = [&] {
      finish(*protocol->transport);
      return true;
    };
  }
  if (where == Where::kPause) protocol->on_pause = [&] { finish(*protocol->transport); };
  std::vector<std::string> warnings;
  LogSink previous =
      set_log_sink([&](LogLevel, std::string_view text) { warnings.emplace_back(text); });
  auto [connection, peer] = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
  if (where == Where::kData) peer.send_all("data");
  if (where == Where::kEof) peer.shutdown_write();
  std::future<std::string> drained;
  if (where == Where::kPause) {
    connection.transport->set_write_buffer_limits(1);
    connection.transport->write(pattern(kLargePayload));
    // close() flushes before the connection is lost, so the peer must read.
    drained = std::async(std::launch::async, [&peer = peer] { return peer.read_to_eof(); });
  }
  bool lost = run_until(loop, [&] { return protocol->lost == 1; });
  if (drained.valid()) {
    std::string received = drained.get();
    if (use_abort) {
      // abort() drops the transport's buffer; what the kernel already took still arrives.
      EXPECT_LT(received.size(), kLargePayload);
      EXPECT_TRUE(received == pattern(kLargePayload).substr(0, received.size()));
    } else {
      EXPECT_TRUE(received == pattern(kLargePayload));
    }
  }
  set_log_sink(std::move(previous));
  ASSERT_TRUE(lost);
  EXPECT_EQ(protocol->made, 1);
  EXPECT_FALSE(protocol->lost_error);
  EXPECT_EQ(warnings.size(), 1u);
}

TEST(Lifetime, CloseFromEveryCallback) {
  for (Where where : {Where::kMade, Where::kData, Where::kEof, Where::kPause}) {
    SCOPED_TRACE(static_cast<int>(where));
    close_from(where, false);
  }
}

TEST(Lifetime, AbortFromEveryCallback) {
  for (Where where : {Where::kMade, Where::kData, Where::kEof, Where::kPause}) {
    SCOPED_TRACE(static_cast<int>(where));
    close_from(where, true);
  }
}

TEST(Lifetime, ProtocolMayKeepItsTransportAlive) {
  // A protocol that keeps transport.shared() makes a cycle; the transport
  // breaks it by releasing its protocol after connection_lost.
  struct Keeper final : Protocol {
    void connection_made(Transport& t) override { self = t.shared(); }
    std::shared_ptr<Transport> self;
  };
  std::weak_ptr<Transport> weak;
  {
    EventLoop loop;
    auto protocol = std::make_shared<Keeper>();
    std::weak_ptr<Keeper> weak_protocol = protocol;
    {
      auto [connection, peer] = connect_to_raw_peer(loop, protocol);
      weak = connection.transport;
      connection.transport->close();
    }
    protocol.reset();
    ASSERT_TRUE(run_until(loop, [&] { return weak_protocol.expired(); }));
  }
  EXPECT_TRUE(weak.expired());
}

}  // namespace
}  // namespace tulip::testing
