// A protocol that replaces itself (transport.set_protocol) from inside its own
// callbacks: the upgrade a real protocol makes (plain text to a binary framing,
// HTTP to WebSocket). The replaced protocol must stay alive until the callback
// that replaced it returns: each test reads the old protocol's members after
// set_protocol, which ASan reports as a use-after-free if it was destroyed.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>

#include "fault/fault_support.hpp"

namespace tulip::testing {
namespace {

// The protocol connections are upgraded to: records what it receives. (Its
// connection_made is never called: set_protocol does not, as in asyncio.)
struct Upgraded : Protocol {
  void data_received(std::string_view data) override {
    EXPECT_EQ(lost, 0);
    received += data;
  }
  bool eof_received() override {
    eof = true;
    return false;
  }
  void connection_lost(std::error_code) override { ++lost; }
  std::string received;
  bool eof = false;
  int lost = 0;
};

// Replaces itself with `next` from inside the callback named by `where`, then
// touches its own members (the use-after-free if it is gone).
class SelfReplacingProtocol : public Protocol {
 public:
  enum class Where { kDataReceived, kEofReceived, kPauseWriting, kResumeWriting };

  SelfReplacingProtocol(Where where, std::shared_ptr<Upgraded> next)
      : where_(where), next_(std::move(next)) {}

  void connection_made(Transport& transport) override { transport_ = &transport; }
  void data_received(std::string_view data) override {
    seen_ += data;
    if (where_ == Where::kDataReceived) upgrade();
  }
  bool eof_received() override {
    if (where_ == Where::kEofReceived) {
      upgrade();
      return true;  // keep writing: the upgraded protocol closes
    }
    return false;
  }
  void pause_writing() override {
    if (where_ == Where::kPauseWriting) upgrade();
  }
  void resume_writing() override {
    if (where_ == Where::kResumeWriting) upgrade();
  }

  std::string seen_;
  int upgrades_ = 0;

 private:
  void upgrade() {
    if (upgrades_ != 0) return;
    transport_->set_protocol(next_);
    // Still running inside the old protocol: its members must be alive.
    ++upgrades_;
    seen_ += "|upgraded";
    next_.reset();
  }

  Where where_;
  std::shared_ptr<Upgraded> next_;
  Transport* transport_ = nullptr;
};

TEST(ProtocolUpgrade, InsideDataReceivedTheNewProtocolGetsTheRestAndTheLoss) {
  EventLoop loop;
  auto next = std::make_shared<Upgraded>();
  auto first =
      std::make_shared<SelfReplacingProtocol>(SelfReplacingProtocol::Where::kDataReceived, next);
  std::weak_ptr<SelfReplacingProtocol> watch = first;
  auto [connection, peer] = connect_to_raw_peer(loop, first);
  first.reset();  // the transport is the only owner now
  connection.protocol.reset();
  peer.send_all("hello");
  ASSERT_TRUE(run_until(loop, [&] { return watch.expired(); }))
      << "the replaced protocol is released on a later iteration";
  peer.send_all("after");
  peer.shutdown_write();
  ASSERT_TRUE(run_until(loop, [&] { return next->lost == 1; }));
  EXPECT_EQ(next->received, "after");
  EXPECT_TRUE(next->eof);
  EXPECT_EQ(connection.transport->get_protocol(), nullptr);
}

TEST(ProtocolUpgrade, InsideEofReceived) {
  EventLoop loop;
  auto next = std::make_shared<Upgraded>();
  auto first =
      std::make_shared<SelfReplacingProtocol>(SelfReplacingProtocol::Where::kEofReceived, next);
  std::weak_ptr<SelfReplacingProtocol> watch = first;
  auto [connection, peer] = connect_to_raw_peer(loop, first);
  first.reset();
  connection.protocol.reset();
  peer.shutdown_write();
  ASSERT_TRUE(run_until(loop, [&] { return watch.expired(); }));
  EXPECT_EQ(connection.transport->get_protocol(), next.get());
  connection.transport->write("bye");
  connection.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return next->lost == 1; }));
  EXPECT_EQ(peer.read_to_eof(), "bye");
}

TEST(ProtocolUpgrade, InsidePauseAndResumeWriting) {
  for (auto where : {SelfReplacingProtocol::Where::kPauseWriting,
                     SelfReplacingProtocol::Where::kResumeWriting}) {
    EventLoop loop;
    auto next = std::make_shared<Upgraded>();
    auto first = std::make_shared<SelfReplacingProtocol>(where, next);
    std::weak_ptr<SelfReplacingProtocol> watch = first;
    auto [connection, peer] = connect_to_raw_peer(loop, first, "127.0.0.1", kSmallReceiveBuffer);
    first.reset();
    connection.protocol.reset();
    Transport& transport = *connection.transport;
    transport.set_write_buffer_limits(1024);
    std::string payload = pattern(4 * 1024 * 1024);
    transport.write(payload);  // over the high-water mark: pause_writing now
    transport.close();         // flushes, then connection_lost
    std::string received;
    std::thread reader([&peer = peer, &received] { received = peer.read_to_eof(); });
    bool lost = run_until(loop, [&] { return next->lost == 1; });
    reader.join();
    ASSERT_TRUE(lost);
    EXPECT_TRUE(watch.expired());
    EXPECT_EQ(received, payload);
  }
}

// A BufferedProtocol that switches to a plain Protocol in get_buffer: no byte
// may land in the old protocol's buffer after it was replaced, and the new one
// gets every byte.
class SwitchingBufferedProtocol : public BufferedProtocol {
 public:
  explicit SwitchingBufferedProtocol(std::shared_ptr<Upgraded> next) : next_(std::move(next)) {}
  void connection_made(Transport& transport) override { transport_ = &transport; }
  std::span<std::byte> get_buffer(std::size_t) override {
    if (next_) transport_->set_protocol(std::exchange(next_, nullptr));
    ++asked_;  // a member of the replaced protocol, after set_protocol
    return std::span<std::byte>(buffer_, sizeof(buffer_));
  }
  void buffer_updated(std::size_t) override { ++updated_; }

  int asked_ = 0;
  int updated_ = 0;

 private:
  std::shared_ptr<Upgraded> next_;
  Transport* transport_ = nullptr;
  std::byte buffer_[64];
};

TEST(ProtocolUpgrade, InsideGetBufferTheBytesGoToTheNewProtocol) {
  EventLoop loop;
  auto next = std::make_shared<Upgraded>();
  auto first = std::make_shared<SwitchingBufferedProtocol>(next);
  auto [connection, peer] = connect_to_raw_peer(loop, first);
  peer.send_all("all of it");
  peer.shutdown_write();
  ASSERT_TRUE(run_until(loop, [&] { return next->lost == 1; }));
  EXPECT_EQ(first->asked_, 1);
  EXPECT_EQ(first->updated_, 0) << "bytes went to the replaced protocol";
  EXPECT_EQ(next->received, "all of it");
}

TEST(ProtocolUpgrade, NullIsRefusedAndTheConnectionGoesOn) {
  EventLoop loop;
  auto protocol = std::make_shared<RecordingProtocol>();
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  EXPECT_THROW(connection.transport->set_protocol(nullptr), std::invalid_argument);
  peer.send_all("still here");
  ASSERT_TRUE(run_until(loop, [&] { return protocol->received == "still here"; }));
}

// A class derived from StreamProtocol alone cannot receive bytes: it cannot be
// constructed at all (and a factory returning one does not compile).
struct StreamOnly : StreamProtocol {};
static_assert(!std::is_default_constructible_v<StreamOnly>);
static_assert(std::is_default_constructible_v<RecordingProtocol>);
static_assert(std::is_default_constructible_v<RecordingBufferedProtocol>);

}  // namespace
}  // namespace tulip::testing
