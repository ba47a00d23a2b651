// tulip-echo-server --streams, one connection: echo_over_streams over
// tulip::testing::MemoryTransport, wired as start_server wires it. The
// scenarios of echo_server_protocol_test.cpp, byte for byte, and the log lines
// compared with the Protocol server's for the same peer.
#include "echo_server/echo_server_streams.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "echo_server/echo_server_protocol.hpp"
#include "support/loopback.hpp"
#include "tulip/testing/memory_transport.hpp"

namespace tulip::testing {
namespace {

using tools::echo_over_streams;
using tools::EchoServerProtocol;

// One connection served by echo_over_streams: a StreamReaderProtocol on a
// MemoryTransport whose connection_made starts the coroutine as a task, as
// start_server does.
class StreamsEcho {
 public:
  StreamsEcho(EventLoop& loop, bool keep_open, bool quiet = true)
      : reader_(std::make_shared<StreamReader>()),
        peer_(MemoryTransport::connect(loop, make_protocol(loop, keep_open, quiet))) {}
  StreamsEcho(const StreamsEcho&) = delete;
  StreamsEcho& operator=(const StreamsEcho&) = delete;

  MemoryPeer& peer() { return peer_; }
  Transport& transport() { return *peer_.transport(); }
  // True once the coroutine ended without an error.
  bool handler_finished() const {
    return handler_.valid() && handler_.done() && !handler_.cancelled() && !handler_.exception();
  }

 private:
  std::shared_ptr<tulip::detail::StreamReaderProtocol> make_protocol(EventLoop& loop,
                                                                     bool keep_open, bool quiet) {
    auto on_connected = [this, &loop, keep_open, quiet](
                            std::shared_ptr<Transport> transport,
                            std::shared_ptr<tulip::detail::StreamReaderProtocol> protocol) {
      auto writer =
          std::make_shared<StreamWriter>(std::move(transport), std::move(protocol), reader_);
      handler_ = loop.create_task(echo_over_streams(reader_, writer, keep_open, quiet));
    };
    return std::make_shared<tulip::detail::StreamReaderProtocol>(loop, reader_, on_connected);
  }

  std::shared_ptr<StreamReader> reader_;
  Task<void> handler_;
  MemoryPeer peer_;
};

TEST(EchoServerStreams, DefaultModeEchoesTheFirstChunkThenCloses) {
  EventLoop loop;
  StreamsEcho echo(loop, false);
  echo.peer().feed("Hello World!");
  echo.peer().feed("ignored");
  run_until_idle(loop);
  EXPECT_EQ(echo.peer().written(), "Hello World!");
  EXPECT_TRUE(echo.peer().peer_eof_seen()) << "the server must close after the first echo";
  EXPECT_TRUE(echo.peer().connection_lost());
  EXPECT_EQ(echo.peer().dropped_writes(), 0u);
  EXPECT_TRUE(echo.handler_finished());
}

TEST(EchoServerStreams, KeepOpenEchoesEveryFragmentInOrderUntilEof) {
  EventLoop loop;
  StreamsEcho echo(loop, true);
  std::string payload = pattern(100000);
  echo.peer().feed(payload, 777);
  run_until_idle(loop);
  EXPECT_EQ(echo.peer().written(), payload);
  EXPECT_FALSE(echo.peer().connection_lost());
  echo.peer().feed_eof();
  run_until_idle(loop);
  EXPECT_TRUE(echo.peer().peer_eof_seen());
  EXPECT_TRUE(echo.peer().connection_lost());
  EXPECT_TRUE(echo.handler_finished());
}

TEST(EchoServerStreams, KeepOpenStopsReadingWhileThePeerDoesNotRead) {
  EventLoop loop;
  StreamsEcho echo(loop, true);
  Transport& transport = echo.transport();
  echo.peer().set_peer_accepting(false);
  const std::size_t fragment = 16 * 1024;
  std::string payload = pattern(4 * 1024 * 1024);
  echo.peer().feed(payload, fragment);
  run_until_idle(loop);
  // Backpressure: drain() waits while the write buffer is over its high-water
  // mark, the reader stops reading once it holds twice its limit: most of the
  // payload is still unread, and what the server holds is bounded.
  EXPECT_FALSE(transport.is_reading());
  std::size_t held = payload.size() - echo.peer().unread_size();
  EXPECT_LE(held, 1024u * 1024) << "the server kept reading from a peer that does not read";
  // A peer that reads slowly gets everything, in order.
  echo.peer().set_peer_window(fragment);
  echo.peer().set_peer_accepting(true);
  std::string echoed;
  for (int round = 0; round < 10000 && echoed.size() < payload.size(); ++round) {
    run_until_idle(loop);
    echoed += echo.peer().take_written();
  }
  EXPECT_EQ(echoed.size(), payload.size());
  EXPECT_TRUE(echoed == payload) << "the echo differs from what was sent";
  EXPECT_TRUE(transport.is_reading());
}

TEST(EchoServerStreams, APeerResetEndsTheConnectionWithTheError) {
  EventLoop loop;
  StreamsEcho echo(loop, true);
  echo.peer().feed("partial");
  echo.peer().reset();
  run_until_idle(loop);
  EXPECT_TRUE(echo.peer().connection_lost());
  EXPECT_EQ(echo.peer().written(), "") << "the reset came before the fragment was read";
  EXPECT_TRUE(echo.handler_finished()) << "a reset is the peer's business, not an error";
}

TEST(EchoServerStreams, ClosedByTheServerItEchoesNothingMore) {
  // Shutting down, the server closes its connections (Server::close_clients):
  // like the Protocol server, which reads nothing after close(), the
  // coroutine echoes nothing that was still waiting in the reader.
  EventLoop loop;
  StreamsEcho echo(loop, true);
  echo.peer().set_peer_accepting(false);
  echo.peer().feed(pattern(1024 * 1024), 64 * 1024);
  run_until_idle(loop);  // blocked in drain(), with bytes waiting in the reader
  std::size_t buffered = echo.transport().get_write_buffer_size();
  ASSERT_GT(buffered, 0u);
  echo.transport().close();
  echo.peer().set_peer_accepting(true);
  run_until_idle(loop);
  EXPECT_EQ(echo.peer().written().size(), buffered) << "only what was echoed before the close";
  EXPECT_EQ(echo.peer().dropped_writes(), 0u) << "nothing written after the close";
  EXPECT_TRUE(echo.peer().connection_lost());
  EXPECT_TRUE(echo.handler_finished());
}

// The log lines (stderr, the thread id removed) of one scripted peer against
// the Protocol server and against the streams one.
template <class Script>
std::pair<std::string, std::string> logs_of_both(bool keep_open, Script script) {
  auto strip = [](const std::string& text) {
    std::string out;
    std::size_t start = 0;
    while (start < text.size()) {
      std::size_t end = text.find('\n', start);
      std::string line = text.substr(start, end - start);
      out += line.substr(line.find("] ") + 2) + "\n";
      start = end + 1;
    }
    return out;
  };
  std::string protocol_log;
  {
    EventLoop loop;
    ::testing::internal::CaptureStderr();
    MemoryPeer peer =
        MemoryTransport::connect(loop, std::make_shared<EchoServerProtocol>(keep_open, false));
    script(loop, peer);
    protocol_log = strip(::testing::internal::GetCapturedStderr());
  }
  std::string streams_log;
  {
    EventLoop loop;
    ::testing::internal::CaptureStderr();
    StreamsEcho echo(loop, keep_open, false);
    script(loop, echo.peer());
    streams_log = strip(::testing::internal::GetCapturedStderr());
  }
  return {protocol_log, streams_log};
}

TEST(EchoServerStreams, LogsWhatTheProtocolServerLogs) {
  auto hello = [](EventLoop& loop, MemoryPeer& peer) {
    peer.feed("Hello World!");
    run_until_idle(loop);
  };
  auto [protocol, streams] = logs_of_both(false, hello);
  EXPECT_EQ(protocol,
            "connection from ('127.0.0.1', 40000)\n"
            "recv: b'Hello World!'\n"
            "sent: b'Hello World!'\n"
            "close the client socket\n"
            "connection from ('127.0.0.1', 40000) closed\n");
  EXPECT_EQ(streams, protocol);

  auto until_eof = [](EventLoop& loop, MemoryPeer& peer) {
    peer.feed(std::string("\x00\xff it's", 7));
    run_until_idle(loop);
    peer.feed_eof();
    run_until_idle(loop);
  };
  std::tie(protocol, streams) = logs_of_both(true, until_eof);
  EXPECT_EQ(protocol,
            "connection from ('127.0.0.1', 40000)\n"
            "recv: b\"\\x00\\xff it's\"\n"
            "sent: b\"\\x00\\xff it's\"\n"
            "the peer finished sending\n"
            "connection from ('127.0.0.1', 40000) closed\n");
  EXPECT_EQ(streams, protocol);

  auto reset = [](EventLoop& loop, MemoryPeer& peer) {
    run_until_idle(loop);
    peer.reset();
    run_until_idle(loop);
  };
  std::tie(protocol, streams) = logs_of_both(true, reset);
  EXPECT_EQ(protocol,
            "connection from ('127.0.0.1', 40000)\n"
            "connection from ('127.0.0.1', 40000) closed: Connection reset by peer\n");
  EXPECT_EQ(streams, protocol);
}

}  // namespace
}  // namespace tulip::testing
