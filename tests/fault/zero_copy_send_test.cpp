// Zero-copy sends (EventLoopOptions::zero_copy_send_threshold; io_uring only,
// docs/backends.md "Zero-copy sends"): the kernel holds a zero-copy send's
// memory until its notification, past the send's completion and past the
// transport's close, abort or loop close. These tests write around the
// threshold, close, abort and close the loop with such a send in flight, and
// fill the peer so that flow control counts the bytes of one; ASan checks that
// no memory the kernel reads is freed early and none is leaked. On epoll the
// option has no effect and the same expectations hold.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "fault/fault_support.hpp"
#include "loop_access.hpp"
#if TULIP_TEST_WITH_URING
#include "uring/uring_backend.hpp"
#endif

namespace tulip::testing {
namespace {

constexpr std::size_t kThreshold = 16 * 1024;

EventLoopOptions zero_copy_options(std::size_t threshold = kThreshold) {
  EventLoopOptions options;
  options.zero_copy_send_threshold = threshold;
  return options;
}

// How many zero-copy sends the loop's transports made; 0 on epoll.
std::uint64_t zero_copy_sends(EventLoop& loop) {
#if TULIP_TEST_WITH_URING
  if (std::string_view(loop.backend_name()) == "io_uring") {
    return static_cast<detail::UringBackend&>(detail::LoopAccess::backend(loop)).zero_copy_sends();
  }
#endif
  (void)loop;
  return 0;
}

bool on_io_uring(EventLoop& loop) { return std::string_view(loop.backend_name()) == "io_uring"; }

// Reads the peer to EOF on a thread of its own, so that the loop can go on
// sending while it does.
class PeerReader {
 public:
  explicit PeerReader(const RawSocket& peer)
      : thread_([this, &peer] { received_ = peer.read_to_eof(); }) {}
  ~PeerReader() {
    if (thread_.joinable()) thread_.join();
  }
  PeerReader(const PeerReader&) = delete;
  PeerReader& operator=(const PeerReader&) = delete;
  /// Waits for EOF; what arrived.
  const std::string& received() {
    if (thread_.joinable()) thread_.join();
    return received_;
  }

 private:
  std::string received_;
  std::thread thread_;
};

TEST(ZeroCopySend, WritesAroundTheThresholdArriveIntactAndInOrder) {
  EventLoop loop(zero_copy_options());
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->made == 1; }));
  const std::size_t sizes[] = {kThreshold - 1, kThreshold,     kThreshold + 1, 1,
                               3 * kThreshold, 256 * 1024 + 5, kThreshold,     7};
  std::string expected;
  unsigned seed = 0;
  // From outside the loop: moved strings (zero-copy from the caller's own
  // memory) alternate with copied views.
  for (std::size_t size : sizes) {
    std::string piece = pattern(size, ++seed);
    expected += piece;
    if (seed % 2 == 0) {
      connection.transport->write(std::move(piece));
    } else {
      connection.transport->write(std::string_view(piece));
    }
  }
  // From a completion handler (a send request deferred to the loop's next
  // submission): the peer's byte asks for more.
  std::string from_handler;
  for (std::size_t size : sizes) from_handler += pattern(size, ++seed);
  expected += from_handler;
  protocol->on_data = [&](std::string_view) {
    for (std::size_t offset = 0, i = 0; i < std::size(sizes); offset += sizes[i], ++i) {
      protocol->transport->write(std::string_view(from_handler).substr(offset, sizes[i]));
    }
    protocol->transport->close();
  };
  PeerReader reader(peer);
  peer.send_all("!");
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_FALSE(protocol->lost_error) << protocol->lost_error.message();
  const std::string& received = reader.received();
  ASSERT_EQ(received.size(), expected.size());
  EXPECT_TRUE(received == expected) << "the bytes differ";
  if (on_io_uring(loop)) {
    EXPECT_GT(zero_copy_sends(loop), 0u);
  }
}

TEST(ZeroCopySend, TheOptionOffNeverSendsZeroCopy) {
  EventLoop loop(zero_copy_options(0));
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->made == 1; }));
  std::string data = pattern(512 * 1024);
  connection.transport->write(std::string(data));
  connection.transport->close();
  PeerReader reader(peer);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_TRUE(reader.received() == data);
  EXPECT_EQ(zero_copy_sends(loop), 0u);
}

TEST(ZeroCopySend, ALargeWriteThenCloseDeliversEverythingBeforeConnectionLost) {
  EventLoop loop(zero_copy_options());
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->made == 1; }));
  std::string data = pattern(2 * 1024 * 1024, 3);
  connection.transport->write(std::string(data));
  connection.transport->close();
  EXPECT_EQ(protocol->lost, 0);  // never inside close()
  PeerReader reader(peer);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_FALSE(protocol->lost_error) << protocol->lost_error.message();
  EXPECT_EQ(connection.transport->get_write_buffer_size(), 0u);
  const std::string& received = reader.received();
  ASSERT_EQ(received.size(), data.size());
  EXPECT_TRUE(received == data);
  if (on_io_uring(loop)) {
    EXPECT_GT(zero_copy_sends(loop), 0u);
  }
}

TEST(ZeroCopySend, ALargeWriteThenAbortDropsTheRestAndFreesNothingEarly) {
  EventLoop loop(zero_copy_options());
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->made == 1; }));
  std::string data = pattern(8 * 1024 * 1024, 5);
  connection.transport->write(std::string(data));
  // More than the socket's buffer takes (at most 4 MiB): the rest waits, in
  // the request and the buffer.
  ASSERT_GT(connection.transport->get_write_buffer_size(), 0u);
  connection.transport->abort();
  EXPECT_EQ(protocol->lost, 0);
  EXPECT_EQ(connection.transport->get_write_buffer_size(), 0u);
  PeerReader reader(peer);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  // What reached the peer is a prefix of what was written, intact.
  const std::string& received = reader.received();
  ASSERT_LE(received.size(), data.size());
  EXPECT_TRUE(received == std::string_view(data).substr(0, received.size()));
  // Notifications still due arrive with the loop's next runs, or when it closes.
  run_iterations(loop, 3);
}

TEST(ZeroCopySend, TheLoopClosedWithAZeroCopySendInFlight) {
  auto protocol = std::make_shared<RecordingProtocol>();
  std::string data = pattern(8 * 1024 * 1024, 7);
  RawSocket peer;
  std::unique_ptr<PeerReader> reader;
  std::uint64_t sends = 0;
  bool uring = false;
  {
    EventLoop loop(zero_copy_options());
    auto [connection, accepted] =
        connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
    peer = std::move(accepted);
    ASSERT_TRUE(run_until(loop, [&] { return protocol->made == 1; }));
    connection.transport->write(std::string(data));
    loop.stop();
    loop.run_forever();  // the send request is in the kernel's hands now
    sends = zero_copy_sends(loop);
    uring = on_io_uring(loop);
    ASSERT_GT(connection.transport->get_write_buffer_size(), 0u);
    // The peer reads from now on: the kernel can send what it queued from the
    // request's memory, and then lets it go (its notification comes).
    reader = std::make_unique<PeerReader>(peer);
    // The loop goes without running again, with the request in flight: the
    // transport ends (connection_lost), the request is cancelled, and its
    // memory stays until the kernel's notification, which the loop's close
    // waits for. (ASan: nothing is read after it is freed, nothing leaks.)
  }
  EXPECT_EQ(protocol->lost, 1);
  const std::string& received = reader->received();
  ASSERT_LE(received.size(), data.size());
  EXPECT_TRUE(received == std::string_view(data).substr(0, received.size()));
  if (uring) {
    EXPECT_GT(sends, 0u);
  }
}

TEST(ZeroCopySend, FlowControlCountsTheBytesOfAZeroCopySendInFlight) {
  EventLoop loop(zero_copy_options());
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol, "127.0.0.1", kSmallReceiveBuffer);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->made == 1; }));
  connection.transport->set_write_buffer_limits(64 * 1024, 16 * 1024);
  std::string data = pattern(8 * 1024 * 1024, 9);
  connection.transport->write(std::string(data));
  // The kernel took at most what the peer's small window and the socket's
  // buffer hold; the rest, in the request and the buffer, counts.
  EXPECT_GE(connection.transport->get_write_buffer_size(), 64 * 1024u);
  EXPECT_EQ(protocol->pauses, 1);
  // More writes while paused join the buffer, in order.
  std::string more = pattern(3 * kThreshold, 10);
  connection.transport->write(std::string_view(more));
  EXPECT_EQ(protocol->pauses, 1);
  loop.stop();
  loop.run_forever();
  EXPECT_EQ(protocol->resumes, 0);  // the peer has not read yet
  PeerReader reader(peer);
  ASSERT_TRUE(run_until(loop, [&] { return protocol->resumes == 1; }));
  connection.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  EXPECT_EQ(connection.transport->get_write_buffer_size(), 0u);
  EXPECT_TRUE(reader.received() == data + more);
  if (on_io_uring(loop)) {
    EXPECT_GT(zero_copy_sends(loop), 0u);
  }
}

}  // namespace
}  // namespace tulip::testing
