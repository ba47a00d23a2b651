// tulip-echo-server's protocol, tested over tulip::testing::MemoryTransport:
// what the tool's end-to-end tests check over sockets, here without a socket,
// iteration by iteration. (tests/e2e/ still runs the tool itself.)
#include "echo_server/echo_server_protocol.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "support/loopback.hpp"
#include "tulip/testing/memory_transport.hpp"

namespace tulip::testing {
namespace {

using tools::EchoServerProtocol;

TEST(EchoServerProtocol, DefaultModeEchoesTheFirstChunkThenCloses) {
  EventLoop loop;
  auto connection =
      MemoryTransport::connect(loop, std::make_shared<EchoServerProtocol>(false, true));
  connection.feed("Hello World!");
  connection.feed("ignored");
  run_until_idle(loop);
  EXPECT_EQ(connection.written(), "Hello World!");
  EXPECT_TRUE(connection.peer_eof_seen()) << "the server must close after the first echo";
  EXPECT_TRUE(connection.connection_lost());
  EXPECT_EQ(connection.unread_size(), 0u) << "closing drops what was not read";
}

TEST(EchoServerProtocol, KeepOpenEchoesEveryFragmentInOrderUntilEof) {
  EventLoop loop;
  auto connection =
      MemoryTransport::connect(loop, std::make_shared<EchoServerProtocol>(true, true));
  std::string payload = pattern(100000);
  connection.feed(payload, 777);
  run_until_idle(loop);
  EXPECT_EQ(connection.written(), payload);
  EXPECT_FALSE(connection.connection_lost());
  connection.feed_eof();
  run_until_idle(loop);
  EXPECT_TRUE(connection.peer_eof_seen());
  EXPECT_TRUE(connection.connection_lost());
}

TEST(EchoServerProtocol, KeepOpenStopsReadingWhileThePeerDoesNotRead) {
  EventLoop loop;
  auto connection =
      MemoryTransport::connect(loop, std::make_shared<EchoServerProtocol>(true, true));
  Transport& transport = *connection.transport;
  connection.set_peer_accepting(false);
  const std::size_t fragment = 16 * 1024;
  std::string payload = pattern(1024 * 1024);
  connection.feed(payload, fragment);
  run_until_idle(loop);
  // Backpressure: the server paused reading as soon as its buffer went over
  // the high-water mark, so most of the payload is still unread.
  auto [low, high] = transport.get_write_buffer_limits();
  EXPECT_FALSE(transport.is_reading());
  EXPECT_GT(transport.get_write_buffer_size(), high);
  EXPECT_LE(transport.get_write_buffer_size(), high + fragment);
  EXPECT_EQ(connection.unread_size(), payload.size() - transport.get_write_buffer_size());
  // A peer that reads slowly gets everything, in order, with bounded memory.
  connection.set_peer_window(fragment);
  connection.set_peer_accepting(true);
  std::string echoed;
  std::size_t most_buffered = 0;
  for (int round = 0; round < 1000 && echoed.size() < payload.size(); ++round) {
    run_until_idle(loop);
    most_buffered = std::max(most_buffered, transport.get_write_buffer_size());
    echoed += connection.take_written();
  }
  EXPECT_EQ(echoed, payload);
  EXPECT_LE(most_buffered, high + fragment);
  EXPECT_TRUE(transport.is_reading());
  (void)low;
}

TEST(EchoServerProtocol, APeerResetEndsTheConnectionWithTheError) {
  EventLoop loop;
  auto connection =
      MemoryTransport::connect(loop, std::make_shared<EchoServerProtocol>(true, true));
  connection.feed("partial");
  connection.reset();
  run_until_idle(loop);
  EXPECT_TRUE(connection.connection_lost());
  EXPECT_EQ(connection.written(), "") << "the reset came before the fragment was read";
}

}  // namespace
}  // namespace tulip::testing
