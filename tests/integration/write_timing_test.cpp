// When the bytes of a write() reach the kernel, and how a BufferedProtocol is
// read. A completion backend may turn a write() made inside an I/O handler
// into a request submitted with the loop's next wait (docs/backends.md, "When
// a write reaches the kernel"); these tests hold every backend to what a
// protocol or the code around the loop can observe: whatever runs after the
// handler (a ready callback, a due timer, the code after run_forever
// returns) finds the bytes at the peer, as after a send(). They run on both
// backends (the uring.* registrations).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>

#include "support/loopback.hpp"
#include "tulip/tulip.hpp"

namespace tulip::testing {
namespace {

// What the peer has received by now, waiting at most a few seconds for the
// first byte: a write the loop only queued never arrives, and the test fails
// instead of hanging. (Loopback delivers within the sender's system call, so
// the wait only ever ends early.)
std::string read_available(const RawSocket& peer, std::size_t expected) {
  std::string got;
  while (got.size() < expected) {
    pollfd readable{peer.fd(), POLLIN, 0};
    if (::poll(&readable, 1, 5000) <= 0) break;
    char buffer[4096];
    ssize_t n = ::recv(peer.fd(), buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n <= 0) break;
    got.append(buffer, static_cast<std::size_t>(n));
  }
  return got;
}

// Writes what arrives back with a prefix, from inside data_received.
std::shared_ptr<RecordingProtocol> echoing_protocol() {
  auto protocol = std::make_shared<RecordingProtocol>();
  protocol->on_data = [raw = protocol.get()](std::string_view data) {
    raw->transport->write("echo:" + std::string(data));
  };
  return protocol;
}

TEST(WriteTiming, AWriteInADataHandlerReachesThePeerBeforeRunReturns) {
  EventLoop loop;
  auto protocol = echoing_protocol();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->made == 1; }));
  peer.send_all("ping");
  // The loop stops inside the very handler that writes: no later wait would
  // submit a queued send.
  protocol->on_data = [raw = protocol.get(), &loop](std::string_view data) {
    raw->transport->write(std::string_view("echo:"));
    raw->transport->write(data);
    loop.stop();
  };
  loop.run_forever();
  ASSERT_EQ(protocol->received, "ping");
  EXPECT_EQ(read_available(peer, 9), "echo:ping");
  connection.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
}

TEST(WriteTiming, AWriteInADataHandlerIsAtThePeerForTheNextCallback) {
  EventLoop loop;
  auto protocol = echoing_protocol();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->made == 1; }));
  std::string seen_by_callback;
  protocol->on_data = [raw = protocol.get(), &loop, &seen_by_callback,
                       &peer = peer](std::string_view data) {
    raw->transport->write("echo:" + std::string(data));
    loop.call_soon([&] { seen_by_callback = read_available(peer, 9); });
  };
  peer.send_all("ping");
  ASSERT_TRUE(run_until(loop, [&] { return !seen_by_callback.empty(); }));
  EXPECT_EQ(seen_by_callback, "echo:ping");
  connection.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
}

TEST(WriteTiming, AWriteInADataHandlerIsAtThePeerForADueTimer) {
  EventLoop loop;
  auto protocol = echoing_protocol();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->made == 1; }));
  std::string seen_by_timer;
  protocol->on_data = [raw = protocol.get(), &loop, &seen_by_timer,
                       &peer = peer](std::string_view data) {
    raw->transport->write("echo:" + std::string(data));
    loop.call_later(0, [&] { seen_by_timer = read_available(peer, 9); });
  };
  peer.send_all("ping");
  ASSERT_TRUE(run_until(loop, [&] { return !seen_by_timer.empty(); }));
  EXPECT_EQ(seen_by_timer, "echo:ping");
  connection.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
}

TEST(WriteTiming, WritesInAndOutOfHandlersKeepTheirOrder) {
  EventLoop loop;
  auto protocol = echoing_protocol();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->made == 1; }));
  // The handler's write may still be a request in flight when the callback
  // after it writes with a plain send(): the second must not overtake it.
  protocol->on_data = [raw = protocol.get(), &loop](std::string_view data) {
    raw->transport->write("echo:" + std::string(data));
    loop.call_soon([raw] { raw->transport->write(std::string_view("|")); });
  };
  for (int round = 0; round < 20; ++round) {
    std::string message{'m', static_cast<char>('0' + round % 10)};
    std::size_t before = protocol->received.size();
    peer.send_all(message);
    ASSERT_TRUE(run_until(loop, [&] { return protocol->received.size() == before + 2; }));
    loop.stop();
    loop.run_forever();  // one more iteration: the callback has run
    std::string expected = "echo:";
    expected += message;
    expected += '|';
    EXPECT_EQ(read_available(peer, expected.size()), expected);
  }
  connection.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
}

// Keeps what get_buffer() memory received, and the largest single update.
class LargeBufferProtocol final : public BufferedProtocol {
 public:
  std::span<std::byte> get_buffer(std::size_t) override {
    return std::span<std::byte>(buffer.get(), kSize);
  }
  void buffer_updated(std::size_t bytes) override {
    received.append(reinterpret_cast<const char*>(buffer.get()), bytes);
    largest = std::max(largest, bytes);
  }
  void connection_lost(std::error_code) override { ++lost; }

  static constexpr std::size_t kSize = 256 * 1024;
  std::unique_ptr<std::byte[]> buffer = std::make_unique<std::byte[]>(kSize);
  std::string received;
  std::size_t largest = 0;
  int lost = 0;
};

TEST(WriteTiming, ABufferedProtocolReceivesStraightIntoItsMemory) {
  EventLoop loop;
  auto protocol = std::make_shared<LargeBufferProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  // 40 KiB waits in the socket before the loop reads: one recv() into the
  // protocol's 256 KiB takes it whole. (Through a ring of 16 KiB buffers it
  // would arrive in pieces of at most 16 KiB.)
  std::string payload = pattern(40 * 1024);
  peer.send_all(payload);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->received.size() == payload.size(); }));
  EXPECT_TRUE(protocol->received == payload);
  EXPECT_GT(protocol->largest, std::size_t{16 * 1024});
  connection.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
}

}  // namespace
}  // namespace tulip::testing
