// tulip::testing::MemoryTransport: the call order and lifetime rules of a
// socket transport, checked iteration by iteration, without a descriptor.
#include "tulip/testing/memory_transport.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "support/loopback.hpp"
#include "tulip/tulip.hpp"

namespace tulip::testing {
namespace {

using Recording = RecordingProtocol;

// Collects what the loop's exception handler is told.
struct HandlerLog {
  explicit HandlerLog(EventLoop& loop) {
    loop.set_exception_handler([this](EventLoop&, const ExceptionContext& context) {
      messages.push_back(context.message);
    });
  }
  std::vector<std::string> messages;
};

// Collects tulip's log lines (for the write-after-close warning).
struct LogCapture {
  LogCapture() {
    previous = set_log_sink([this](LogLevel, std::string_view line) { lines.emplace_back(line); });
  }
  ~LogCapture() { set_log_sink(previous); }
  LogSink previous;
  std::vector<std::string> lines;
};

TEST(MemoryTransport, ConnectionMadeRunsOnTheNextIterationAndReadingOnlyAfterIt) {
  EventLoop loop;
  auto protocol = std::make_shared<Recording>();
  std::string seen_at_made = "unset";
  protocol->on_made = [&](Transport&) { seen_at_made = protocol->received; };
  auto connection = MemoryTransport::connect(loop, protocol);
  connection.feed("early");
  EXPECT_EQ(protocol->made, 0) << "connection_made ran inside connect()";
  run_one_iteration(loop);
  EXPECT_EQ(protocol->made, 1);
  EXPECT_EQ(seen_at_made, "") << "bytes were read before connection_made";
  EXPECT_EQ(protocol->received, "");
  run_one_iteration(loop);
  EXPECT_EQ(protocol->received, "early");
  EXPECT_EQ(connection.protocol.get(), protocol.get());
  EXPECT_EQ(connection.transport->get_protocol(), protocol.get());
  EXPECT_EQ(&connection.transport->get_loop(), &loop);
}

TEST(MemoryTransport, FactoryFormCallsTheFactoryOnce) {
  EventLoop loop;
  int calls = 0;
  auto connection = MemoryTransport::connect(loop, [&] {
    ++calls;
    return std::make_unique<Recording>();
  });
  EXPECT_EQ(calls, 1);
  run_until_idle(loop);
  EXPECT_EQ(connection.protocol->made, 1);
}

TEST(MemoryTransport, EachFragmentIsOneReadOnALaterIteration) {
  EventLoop loop;
  auto protocol = std::make_shared<Recording>();
  auto connection = MemoryTransport::connect(loop, protocol);
  run_until_idle(loop);
  connection.feed("abcdefghij", 3);
  connection.feed("XY");
  EXPECT_EQ(protocol->chunks, 0u) << "feed() delivered synchronously";
  EXPECT_EQ(connection.unread_size(), 12u);
  std::vector<std::string> reads;
  protocol->on_data = [&](std::string_view data) { reads.emplace_back(data); };
  run_one_iteration(loop);
  EXPECT_EQ(reads, std::vector<std::string>({"abc"}));
  run_until_idle(loop);
  EXPECT_EQ(reads, std::vector<std::string>({"abc", "def", "ghi", "j", "XY"}));
  EXPECT_EQ(connection.unread_size(), 0u);
  EXPECT_THROW(connection.feed("x", 0), std::invalid_argument);
}

TEST(MemoryTransport, AFragmentOverTheReadSizeTakesTwoReads) {
  EventLoop loop;
  auto protocol = std::make_shared<Recording>();
  auto connection = MemoryTransport::connect(loop, protocol);
  std::string big = pattern(256 * 1024 + 10);
  connection.feed(big);
  run_until_idle(loop);
  EXPECT_EQ(protocol->chunks, 2u);
  EXPECT_EQ(protocol->largest_chunk, 256u * 1024);
  EXPECT_EQ(protocol->received, big);
}

TEST(MemoryTransport, PauseReadingInConnectionMadeReadsNothingUntilResumed) {
  EventLoop loop;
  auto protocol = std::make_shared<Recording>();
  protocol->on_made = [](Transport& transport) { transport.pause_reading(); };
  auto connection = MemoryTransport::connect(loop, protocol);
  connection.feed("data");
  connection.feed_eof();
  run_until_idle(loop);
  EXPECT_EQ(protocol->received, "");
  EXPECT_FALSE(protocol->eof);
  EXPECT_FALSE(connection.transport->is_reading());
  connection.transport->resume_reading();
  connection.transport->resume_reading();  // idempotent
  EXPECT_TRUE(connection.transport->is_reading());
  EXPECT_EQ(protocol->received, "") << "resume_reading() delivered synchronously";
  run_until_idle(loop);
  EXPECT_EQ(protocol->received, "data");
  EXPECT_TRUE(protocol->eof);
  EXPECT_EQ(protocol->lost, 1);
}

TEST(MemoryTransport, PauseReadingInDataReceivedStopsTheNextFragment) {
  EventLoop loop;
  auto protocol = std::make_shared<Recording>();
  protocol->on_data = [&](std::string_view) { protocol->transport->pause_reading(); };
  auto connection = MemoryTransport::connect(loop, protocol);
  connection.feed("one");
  connection.feed("two");
  run_until_idle(loop);
  EXPECT_EQ(protocol->received, "one");
  EXPECT_EQ(connection.unread_size(), 3u);
  connection.transport->resume_reading();
  run_until_idle(loop);
  EXPECT_EQ(protocol->received, "onetwo");
}

TEST(MemoryTransport, EofReceivedFalseClosesAndTheLossIsClean) {
  EventLoop loop;
  auto protocol = std::make_shared<Recording>();
  auto connection = MemoryTransport::connect(loop, protocol);
  connection.feed("last words");
  connection.feed_eof();
  connection.feed_eof();  // idempotent
  EXPECT_THROW(connection.feed("more"), std::logic_error);
  run_until_idle(loop);
  EXPECT_EQ(protocol->received, "last words");
  EXPECT_TRUE(protocol->eof);
  EXPECT_EQ(protocol->lost, 1);
  EXPECT_FALSE(protocol->lost_error);
  EXPECT_TRUE(connection.peer_eof_seen());
  EXPECT_TRUE(connection.connection_lost());
  EXPECT_EQ(connection.transport->get_protocol(), nullptr);
}

TEST(MemoryTransport, EofReceivedTrueKeepsTheTransportOpenForWriting) {
  EventLoop loop;
  auto protocol = std::make_shared<Recording>();
  protocol->on_eof = [] { return true; };
  auto connection = MemoryTransport::connect(loop, protocol);
  connection.feed_eof();
  run_until_idle(loop);
  EXPECT_TRUE(protocol->eof);
  EXPECT_EQ(protocol->lost, 0);
  EXPECT_FALSE(connection.transport->is_closing());
  connection.transport->write("reply");
  EXPECT_EQ(connection.written(), "reply");
  connection.transport->close();
  EXPECT_EQ(protocol->lost, 0) << "connection_lost inside close()";
  run_until_idle(loop);
  EXPECT_EQ(protocol->lost, 1);
}

TEST(MemoryTransport, CloseInsideDataReceivedLosesOnAFreshStackExactlyOnce) {
  EventLoop loop;
  auto protocol = std::make_shared<Recording>();
  bool inside = false;
  protocol->on_data = [&](std::string_view) {
    inside = true;
    protocol->transport->close();
    protocol->transport->close();
    protocol->transport->abort();
    inside = false;
  };
  protocol->on_lost = [&](std::error_code) { EXPECT_FALSE(inside) << "nested connection_lost"; };
  auto connection = MemoryTransport::connect(loop, protocol);
  connection.feed("a");
  connection.feed("b");
  run_until_idle(loop);
  EXPECT_EQ(protocol->received, "a") << "read after close()";
  EXPECT_EQ(protocol->lost, 1);  // RecordingProtocol fails the test on a second call
}

TEST(MemoryTransport, CloseFlushesTheBufferThenLoses) {
  EventLoop loop;
  auto protocol = std::make_shared<Recording>();
  auto connection = MemoryTransport::connect(loop, protocol, {.peer_window = 4});
  run_until_idle(loop);
  connection.transport->write("0123456789");
  EXPECT_EQ(connection.written(), "0123");
  EXPECT_EQ(connection.transport->get_write_buffer_size(), 6u);
  connection.transport->close();
  EXPECT_FALSE(connection.transport->is_reading());
  run_until_idle(loop);
  EXPECT_EQ(protocol->lost, 0) << "lost before the buffer drained";
  EXPECT_EQ(connection.take_written(), "0123");
  EXPECT_EQ(connection.written(), "") << "the drain ran inside take_written()";
  run_until_idle(loop);
  EXPECT_EQ(connection.take_written(), "4567");
  EXPECT_FALSE(connection.peer_eof_seen());
  EXPECT_EQ(protocol->lost, 0);
  run_one_iteration(loop);  // the drain: the last bytes, then the EOF
  EXPECT_EQ(connection.take_written(), "89");
  EXPECT_TRUE(connection.peer_eof_seen());
  EXPECT_EQ(protocol->lost, 0) << "connection_lost inside the drain";
  run_until_idle(loop);
  EXPECT_EQ(protocol->lost, 1);
  EXPECT_FALSE(protocol->lost_error);
  EXPECT_TRUE(connection.peer_eof_seen());
}

TEST(MemoryTransport, AbortDropsTheBuffer) {
  EventLoop loop;
  auto protocol = std::make_shared<Recording>();
  auto connection = MemoryTransport::connect(loop, protocol);
  run_until_idle(loop);
  connection.set_peer_accepting(false);
  connection.transport->write("never sent");
  connection.transport->abort();
  EXPECT_EQ(connection.transport->get_write_buffer_size(), 0u);
  EXPECT_TRUE(connection.transport->is_closing());
  connection.set_peer_accepting(true);
  run_until_idle(loop);
  EXPECT_EQ(connection.written(), "");
  EXPECT_EQ(protocol->lost, 1);
  EXPECT_FALSE(connection.peer_eof_seen());
}

TEST(MemoryTransport, WriteAfterCloseWarnsOnceAndDrops) {
  EventLoop loop;
  LogCapture logs;
  auto protocol = std::make_shared<Recording>();
  auto connection = MemoryTransport::connect(loop, protocol);
  run_until_idle(loop);
  connection.transport->close();
  connection.transport->write("late");
  connection.transport->write(std::string("later"));
  run_until_idle(loop);
  connection.transport->write("after the loss");
  EXPECT_EQ(connection.written(), "");
  EXPECT_EQ(connection.dropped_writes(), 3u);
  ASSERT_EQ(logs.lines.size(), 1u);
  EXPECT_NE(logs.lines[0].find("4 bytes dropped"), std::string::npos) << logs.lines[0];
}

TEST(MemoryTransport, WriteEofSendsEofAfterTheBufferAndRefusesLaterWrites) {
  EventLoop loop;
  auto protocol = std::make_shared<Recording>();
  auto connection = MemoryTransport::connect(loop, protocol, {.peer_window = 2});
  run_until_idle(loop);
  EXPECT_TRUE(connection.transport->can_write_eof());
  connection.transport->write("abcd");
  connection.transport->write_eof();
  EXPECT_FALSE(connection.peer_eof_seen());
  EXPECT_THROW(connection.transport->write("x"), RuntimeError);
  connection.set_peer_window(std::nullopt);
  run_until_idle(loop);
  EXPECT_EQ(connection.written(), "abcd");
  EXPECT_TRUE(connection.peer_eof_seen());
  EXPECT_EQ(protocol->lost, 0) << "write_eof() closed the transport";
  connection.feed("still reading");
  run_until_idle(loop);
  EXPECT_EQ(protocol->received, "still reading");
}

TEST(MemoryTransport, FlowControlPausesOverHighAndResumesAtLow) {
  EventLoop loop;
  auto protocol = std::make_shared<Recording>();
  std::size_t buffered_at_pause = 0;
  std::size_t buffered_at_resume = 0;
  protocol->on_pause = [&] { buffered_at_pause = protocol->transport->get_write_buffer_size(); };
  protocol->on_resume = [&] { buffered_at_resume = protocol->transport->get_write_buffer_size(); };
  auto connection = MemoryTransport::connect(loop, protocol);
  run_until_idle(loop);
  connection.set_peer_accepting(false);
  auto [low, high] = connection.transport->get_write_buffer_limits();
  EXPECT_EQ(low, 16u * 1024);
  EXPECT_EQ(high, 64u * 1024);
  connection.transport->write(std::string(high, 'a'));
  EXPECT_EQ(protocol->pauses, 0) << "paused at exactly the high-water mark";
  connection.transport->write("b");
  EXPECT_EQ(protocol->pauses, 1) << "pause_writing is called inside write()";
  EXPECT_EQ(buffered_at_pause, high + 1);
  // The peer accepts all but `low` bytes: the drain stops at the low-water mark.
  connection.set_peer_window(high + 1 - low);
  connection.set_peer_accepting(true);
  EXPECT_EQ(protocol->resumes, 0) << "resume_writing inside the peer's call";
  run_until_idle(loop);
  EXPECT_EQ(protocol->resumes, 1);
  EXPECT_EQ(buffered_at_resume, low);
  connection.set_peer_window(std::nullopt);
  run_until_idle(loop);
  EXPECT_EQ(connection.written().size(), high + 1);
  EXPECT_EQ(protocol->resumes, 1);
}

TEST(MemoryTransport, WritelinesAndNewLimitsApplyFlowControl) {
  EventLoop loop;
  auto protocol = std::make_shared<Recording>();
  auto connection = MemoryTransport::connect(loop, protocol, {.peer_window = 3});
  run_until_idle(loop);
  connection.transport->set_write_buffer_limits(8);
  EXPECT_EQ(connection.transport->get_write_buffer_limits(),
            (std::pair<std::size_t, std::size_t>(2, 8)));
  connection.transport->writelines({"abc", "defg", "", "hijkl"});
  EXPECT_EQ(connection.written(), "abc");
  EXPECT_EQ(connection.transport->get_write_buffer_size(), 9u);
  EXPECT_EQ(protocol->pauses, 1);
  EXPECT_THROW(connection.transport->set_write_buffer_limits(1, 2), std::invalid_argument);
  connection.set_peer_window(std::nullopt);
  run_until_idle(loop);
  EXPECT_EQ(connection.written(), "abcdefghijkl");
  EXPECT_EQ(protocol->resumes, 1);
  // Lowering the high mark under what is buffered pauses at once.
  connection.set_peer_accepting(false);
  connection.transport->write("12345");
  EXPECT_EQ(protocol->pauses, 1);
  connection.transport->set_write_buffer_limits(4, 0);
  EXPECT_EQ(protocol->pauses, 2);
}

TEST(MemoryTransport, ResetDropsUnreadBytesAndLosesWithTheError) {
  EventLoop loop;
  auto protocol = std::make_shared<Recording>();
  auto connection = MemoryTransport::connect(loop, protocol);
  run_until_idle(loop);
  connection.feed("unread");
  connection.set_peer_accepting(false);
  connection.transport->write("buffered");
  connection.reset();
  EXPECT_EQ(protocol->lost, 0) << "reset() called the protocol";
  run_until_idle(loop);
  EXPECT_EQ(protocol->received, "");
  EXPECT_EQ(protocol->lost, 1);
  EXPECT_EQ(protocol->lost_error, std::errc::connection_reset);
  EXPECT_EQ(connection.transport->get_write_buffer_size(), 0u);
  connection.feed("ignored");  // a peer writing to a closed socket
  connection.reset();
  run_until_idle(loop);
  EXPECT_EQ(protocol->lost, 1);
}

TEST(MemoryTransport, SetProtocolInsideACallbackKeepsTheOldOneAliveAndSwitchesReads) {
  EventLoop loop;
  auto first = std::make_shared<Recording>();
  auto second = std::make_shared<Recording>();
  std::weak_ptr<Recording> first_alive = first;
  Recording* raw_first = first.get();
  first->on_data = [&, raw_first](std::string_view) {
    // The transport lets the first protocol go; the loop keeps it until this returns.
    raw_first->transport->set_protocol(second);
  };
  second->made = 1;  // set_protocol does not call connection_made, as in asyncio
  auto connection = MemoryTransport::connect(loop, std::shared_ptr<Recording>(first));
  connection.protocol.reset();
  first.reset();
  connection.feed("upgrade");
  connection.feed("payload");
  run_one_iteration(loop);  // connection_made
  run_one_iteration(loop);  // "upgrade" reaches the first protocol, which switches
  EXPECT_FALSE(first_alive.expired()) << "the old protocol died inside its own callback";
  EXPECT_EQ(connection.transport->get_protocol(), second.get());
  run_until_idle(loop);
  EXPECT_TRUE(first_alive.expired());
  EXPECT_EQ(second->received, "payload");
  EXPECT_THROW(connection.transport->set_protocol(nullptr), std::invalid_argument);
}

// Reads into a small buffer of its own.
class SmallBuffers : public BufferedProtocol {
 public:
  explicit SmallBuffers(std::size_t size) : buffer_(size) {}
  void connection_made(Transport& transport) override { transport_ = &transport; }
  std::span<std::byte> get_buffer(std::size_t size_hint) override {
    EXPECT_GT(size_hint, 0u);
    ++buffers_given;
    return buffer_;
  }
  void buffer_updated(std::size_t bytes) override {
    pieces.emplace_back(reinterpret_cast<const char*>(buffer_.data()), bytes);
  }
  bool eof_received() override {
    eof = true;
    return false;
  }
  void connection_lost(std::error_code error) override {
    ++lost;
    lost_error = error;
  }

  std::vector<std::string> pieces;
  int buffers_given = 0;
  bool eof = false;
  int lost = 0;
  std::error_code lost_error;

 private:
  std::vector<std::byte> buffer_;
  Transport* transport_ = nullptr;
};

TEST(MemoryTransport, BufferedProtocolGetsDataSplitAcrossItsBuffers) {
  EventLoop loop;
  auto protocol = std::make_shared<SmallBuffers>(4);
  auto connection = MemoryTransport::connect(loop, protocol);
  connection.feed("0123456789");
  connection.feed("ab");
  connection.feed_eof();
  run_until_idle(loop);
  EXPECT_EQ(protocol->pieces, std::vector<std::string>({"0123", "4567", "89", "ab"}));
  EXPECT_TRUE(protocol->eof);
  EXPECT_EQ(protocol->buffers_given, 5) << "as over a socket, EOF is found after a get_buffer()";
  EXPECT_EQ(protocol->lost, 1);
  EXPECT_FALSE(protocol->lost_error);
}

TEST(MemoryTransport, AnEmptyBufferIsFatalForThatConnection) {
  EventLoop loop;
  HandlerLog handler(loop);
  auto protocol = std::make_shared<SmallBuffers>(0);
  auto connection = MemoryTransport::connect(loop, protocol);
  connection.feed("x");
  run_until_idle(loop);
  EXPECT_EQ(protocol->lost, 1);
  EXPECT_EQ(protocol->lost_error, make_error_code(Error::kEmptyBuffer));
  ASSERT_EQ(handler.messages.size(), 1u);
}

TEST(MemoryTransport, AThrowingCallbackIsReportedAndClosesThatConnection) {
  EventLoop loop;
  HandlerLog handler(loop);
  auto protocol = std::make_shared<Recording>();
  protocol->on_data = [](std::string_view) { throw std::runtime_error("bad input"); };
  protocol->on_pause = [] { throw std::runtime_error("pause failed"); };
  auto connection = MemoryTransport::connect(loop, protocol);
  run_until_idle(loop);
  connection.transport->set_write_buffer_limits(0);
  connection.set_peer_accepting(false);
  connection.transport->write("x");  // a throwing pause_writing is reported only
  EXPECT_FALSE(connection.transport->is_closing());
  connection.feed("boom");
  connection.feed("never read");
  run_until_idle(loop);
  EXPECT_EQ(protocol->lost, 1);
  EXPECT_EQ(protocol->lost_error, make_error_code(Error::kCallbackRaised));
  ASSERT_EQ(handler.messages.size(), 2u);
  EXPECT_EQ(handler.messages[1], "Fatal error: protocol.data_received() call failed.");
  EXPECT_EQ(protocol->received, "boom");
}

TEST(MemoryTransport, ExtraInfoIsConfigurable) {
  EventLoop loop;
  MemoryTransportOptions options;
  options.peername = *SocketAddress::parse("::1", 443);
  auto connection = MemoryTransport::connect(loop, std::make_shared<Recording>(), options);
  auto peer = connection.transport->get_extra_info<SocketAddress>("peername");
  ASSERT_TRUE(peer);
  EXPECT_EQ(peer->to_string(), "('::1', 443, 0, 0)");
  EXPECT_EQ(connection.transport->get_extra_info<SocketAddress>("sockname")->port(), 50000);
  EXPECT_EQ(connection.transport->get_extra_info<int>("socket"), -1);
  EXPECT_FALSE(connection.transport->get_extra_info("cipher").has_value());
  run_until_idle(loop);
  connection.transport->close();
  run_until_idle(loop);
  EXPECT_TRUE(connection.transport->get_extra_info<SocketAddress>("peername"))
      << "peername must survive the close";
}

TEST(MemoryTransport, ClosingTheLoopAbortsALiveConnection) {
  auto protocol = std::make_shared<Recording>();
  std::weak_ptr<Transport> transport;
  {
    EventLoop loop;
    auto connection = MemoryTransport::connect(loop, protocol);
    transport = connection.transport;
    run_until_idle(loop);
    EXPECT_THROW(MemoryTransport::connect(loop, std::shared_ptr<Recording>()),
                 std::invalid_argument);
    loop.close();
    EXPECT_EQ(protocol->lost, 1);
    EXPECT_EQ(protocol->lost_error, std::errc::connection_aborted);
    EXPECT_THROW(MemoryTransport::connect(loop, std::make_shared<Recording>()), RuntimeError);
  }
  EXPECT_TRUE(transport.expired()) << "the loop kept the transport after closing";
}

TEST(MemoryTransport, DroppingTheHandleLeavesTheConnectionToTheLoop) {
  EventLoop loop;
  auto protocol = std::make_shared<Recording>();
  std::weak_ptr<Transport> transport;
  {
    auto connection = MemoryTransport::connect(loop, protocol);
    transport = connection.transport;
  }
  run_until_idle(loop);
  ASSERT_FALSE(transport.expired()) << "the loop must own a live transport";
  transport.lock()->close();
  run_until_idle(loop);
  EXPECT_EQ(protocol->lost, 1);
  EXPECT_TRUE(transport.expired()) << "the transport outlived connection_lost";
}

TEST(MemoryTransport, RunUntilIdleReportsAProtocolThatNeverSettles) {
  EventLoop loop;
  std::function<void()> again = [&] { loop.call_soon(again); };
  loop.call_soon(again);
  EXPECT_THROW(run_until_idle(loop, 50), RuntimeError);
}

}  // namespace
}  // namespace tulip::testing
