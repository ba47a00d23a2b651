// Streams: StreamReader parsing (fed directly, deterministic) and
// open_connection / start_server over real loopback sockets.
#include "tulip/streams.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "support/loopback.hpp"
#include "tulip/sleep.hpp"
#include "tulip/task.hpp"
#include "tulip/timeouts.hpp"

namespace tulip {
namespace {

using testing::RawSocket;

// ---- StreamReader fed by hand ------------------------------------------------------

TEST(StreamReader, ReadlineReadexactlyReaduntil) {
  EventLoop loop;
  auto body = []() -> Task<std::vector<std::string>> {
    StreamReader reader;
    reader.feed_data("first line\nsecond");
    reader.feed_data(" line\n12345abcXYZ--rest");
    reader.feed_eof();
    std::vector<std::string> out;
    out.push_back(co_await reader.readline());
    out.push_back(co_await reader.readline());
    out.push_back(co_await reader.readexactly(5));
    out.push_back(co_await reader.readuntil("XYZ"));
    out.push_back(co_await reader.read(2));
    out.push_back(co_await reader.read());
    out.push_back(co_await reader.readline());  // EOF: ""
    EXPECT_TRUE(reader.at_eof());
    co_return out;
  };
  EXPECT_EQ(run_until_complete(loop, body()),
            (std::vector<std::string>{"first line\n", "second line\n", "12345", "abcXYZ", "--",
                                      "rest", ""}));
}

TEST(StreamReader, WaitsForDataFedLater) {
  EventLoop loop;
  StreamReader reader;
  Task<std::string> line = loop.create_task(reader.readline());
  loop.stop();
  loop.run_forever();
  EXPECT_FALSE(line.done());
  reader.feed_data("par");
  loop.call_soon([&] { reader.feed_data("tial\n"); });
  EXPECT_EQ(run_until_complete(loop, line), "partial\n");
}

TEST(StreamReader, OnlyOneWaiterAtATime) {
  EventLoop loop;
  StreamReader reader;
  Task<std::string> first = loop.create_task(reader.read(10));
  Task<std::string> second = loop.create_task(reader.read(10));
  loop.stop();
  loop.run_forever();
  EXPECT_THROW(second.result(), RuntimeError);
  reader.feed_data("x");
  EXPECT_EQ(run_until_complete(loop, first), "x");
}

TEST(StreamReader, LineLongerThanLimit) {
  EventLoop loop;
  auto body = []() -> Task<std::string> {
    StreamReader reader(16);
    reader.feed_data(std::string(40, 'x') + "\nok\n");
    try {
      co_await reader.readline();
      ADD_FAILURE() << "expected LimitOverrunError";
    } catch (const LimitOverrunError& e) {
      EXPECT_EQ(e.consumed(), 40u);
    }
    // The overlong line was dropped with its newline.
    co_return co_await reader.readline();
  };
  EXPECT_EQ(run_until_complete(loop, body()), "ok\n");

  auto no_separator = []() -> Task<std::size_t> {
    StreamReader reader(16);
    reader.feed_data(std::string(40, 'y'));
    try {
      co_await reader.readuntil("\n");
    } catch (const LimitOverrunError& e) {
      EXPECT_GT(e.consumed(), 16u);
      co_return 1;  // readuntil leaves the data buffered
    }
    co_return 0;
  };
  EXPECT_EQ(run_until_complete(loop, no_separator()), 1u);
}

TEST(StreamReader, EofInTheMiddleOfReadexactly) {
  EventLoop loop;
  auto body = []() -> Task<std::string> {
    StreamReader reader;
    reader.feed_data("abc");
    reader.feed_eof();
    try {
      co_await reader.readexactly(10);
    } catch (const IncompleteReadError& e) {
      EXPECT_EQ(e.expected(), std::optional<std::size_t>(10));
      co_return e.partial();
    }
    co_return "no error";
  };
  EXPECT_EQ(run_until_complete(loop, body()), "abc");
}

TEST(StreamReader, ErrorReachesTheWaitingReader) {
  EventLoop loop;
  StreamReader reader;
  Task<std::string> read = loop.create_task(reader.readexactly(4));
  loop.stop();
  loop.run_forever();
  reader.set_exception(std::make_exception_ptr(
      ConnectionError(std::make_error_code(std::errc::connection_reset), "reset")));
  EXPECT_THROW(run_until_complete(loop, read), ConnectionError);
  EXPECT_THROW(run_until_complete(loop, reader.read(1)), ConnectionError);
}

// ---- Over loopback sockets ------------------------------------------------------------

Task<void> echo_client_handler(std::shared_ptr<StreamReader> reader,
                               std::shared_ptr<StreamWriter> writer) {
  for (;;) {
    std::string line = co_await reader->readline();
    if (line.empty()) break;
    writer->write(line);
    co_await writer->drain();
  }
  writer->close();
  co_await writer->wait_closed();
}

TEST(Streams, EchoServerAndClient) {
  EventLoop loop;
  auto body = [](EventLoop* l) -> Task<std::vector<std::string>> {
    std::shared_ptr<Server> server = co_await start_server(*l, echo_client_handler, "127.0.0.1", 0);
    std::uint16_t port = server->sockets().at(0).sockname.port();
    auto [reader, writer] = co_await open_connection(*l, "127.0.0.1", port);
    EXPECT_TRUE(writer->get_extra_info<SocketAddress>("peername").has_value());
    EXPECT_TRUE(writer->can_write_eof());
    std::vector<std::string> replies;
    for (const char* line : {"one\n", "two\n"}) {
      writer->write(line);
      co_await writer->drain();
      replies.push_back(co_await reader->readline());
    }
    writer->writelines({"thr", "ee\n"});
    writer->write_eof();
    replies.push_back(co_await reader->readline());
    replies.push_back(co_await reader->read());  // the server closes: EOF
    EXPECT_TRUE(reader->at_eof());
    writer->close();
    EXPECT_TRUE(writer->is_closing());
    co_await writer->wait_closed();
    server->close();
    co_return replies;
  };
  EXPECT_EQ(run_until_complete(loop, body(&loop)),
            (std::vector<std::string>{"one\n", "two\n", "three\n", ""}));
}

TEST(Streams, PeerSendsALineLongerThanTheLimit) {
  EventLoop loop;
  RawSocket listener = RawSocket::listen_on();
  std::uint16_t port = listener.address().port();
  auto body = [](EventLoop* l, RawSocket* lst, std::uint16_t p) -> Task<bool> {
    auto [reader, writer] = co_await open_connection(*l, "127.0.0.1", p, {}, 64);
    RawSocket peer = lst->accept_one();
    peer.send_all(std::string(1000, 'z') + "\n");
    peer.reset();
    bool overrun = false;
    try {
      co_await reader->readline();
    } catch (const LimitOverrunError&) {
      overrun = true;
    }
    while (!reader->at_eof()) (void)co_await reader->read(100);
    co_return overrun;
  };
  EXPECT_TRUE(run_until_complete(loop, body(&loop, &listener, port)));
}

TEST(Streams, EofInTheMiddleOfReadexactly) {
  EventLoop loop;
  RawSocket listener = RawSocket::listen_on();
  std::uint16_t port = listener.address().port();
  auto body = [](EventLoop* l, RawSocket* lst, std::uint16_t p) -> Task<std::string> {
    auto [reader, writer] = co_await open_connection(*l, "127.0.0.1", p);
    RawSocket peer = lst->accept_one();
    peer.send_all("12345");
    peer.reset();
    try {
      co_await reader->readexactly(10);
    } catch (const IncompleteReadError& e) {
      co_return e.partial();
    }
    co_return "no error";
  };
  EXPECT_EQ(run_until_complete(loop, body(&loop, &listener, port)), "12345");
}

TEST(Streams, DrainOnAConnectionThePeerReset) {
  EventLoop loop;
  RawSocket listener = RawSocket::listen_on();
  std::uint16_t port = listener.address().port();
  auto body = [](EventLoop* l, RawSocket* lst, std::uint16_t p) -> Task<bool> {
    auto [reader, writer] = co_await open_connection(*l, "127.0.0.1", p);
    RawSocket peer = lst->accept_one();
    peer.reset_connection();  // RST
    std::string chunk(64 * 1024, 'd');
    bool failed = false;
    try {
      // Bounded: the error must come long before this many bytes.
      for (int i = 0; i < 10'000; ++i) {
        writer->write(chunk);
        co_await writer->drain();
      }
    } catch (const ConnectionError&) {
      failed = true;
    }
    if (!failed) co_return false;
    // drain() keeps raising once the connection is lost.
    try {
      co_await writer->drain();
    } catch (const ConnectionError&) {
      co_return true;
    }
    co_return false;
  };
  EXPECT_TRUE(run_until_complete(loop, body(&loop, &listener, port)));
}

TEST(Streams, DrainWaitsForFlowControl) {
  EventLoop loop;
  RawSocket listener = RawSocket::listen_on("127.0.0.1", 16, testing::kSmallReceiveBuffer);
  std::uint16_t port = listener.address().port();
  auto body = [](EventLoop* l, RawSocket* lst, std::uint16_t p) -> Task<bool> {
    auto [reader, writer] = co_await open_connection(*l, "127.0.0.1", p);
    RawSocket peer = lst->accept_one();
    // More than the kernel absorbs with the peer's small window (its send buffer
    // may be a few MiB; shrinking it instead stalls loopback TCP).
    std::string big(8 * 1024 * 1024, 'f');
    writer->write(big);
    EXPECT_GT(writer->transport()->get_write_buffer_size(), 64u * 1024);
    Task<void> drain = l->create_task(writer->drain());
    for (int i = 0; i < 3; ++i) co_await sleep(0);  // the peer reads nothing yet
    bool waited = !drain.done();
    // The peer reads everything: drain completes. drain() returns at the
    // low-water mark, before the last bytes are sent; the loop must keep
    // running until the peer has them all, so the loop hears of that through
    // a Future rather than by blocking in join().
    Future<void> all_read = l->create_future<void>();
    std::thread drainer([&peer, l, all_read, size = big.size()]() mutable {
      (void)peer.read_exactly(size);
      l->call_soon_threadsafe([all_read]() mutable { all_read.set_result(); });
    });
    co_await drain;
    co_await all_read;
    drainer.join();
    co_return waited;
  };
  EXPECT_TRUE(run_until_complete(loop, body(&loop, &listener, port)));
}

TEST(Streams, FailingClientHandlerIsReportedAndClosesTheConnection) {
  EventLoop loop;
  std::vector<std::string> messages;
  loop.set_exception_handler(
      [&](EventLoop&, const ExceptionContext& c) { messages.push_back(c.message); });
  auto handler = [](std::shared_ptr<StreamReader> reader,
                    std::shared_ptr<StreamWriter>) -> Task<void> {
    co_await reader->readline();
    throw std::runtime_error("handler failed");
  };
  auto body = [&](EventLoop* l) -> Task<std::string> {
    std::shared_ptr<Server> server = co_await start_server(*l, handler, "127.0.0.1", 0);
    auto [reader, writer] =
        co_await open_connection(*l, "127.0.0.1", server->sockets().at(0).sockname.port());
    writer->write("boom\n");
    std::string rest = co_await reader->read();  // EOF: the server closed it
    server->close();
    co_return rest;
  };
  EXPECT_EQ(run_until_complete(loop, body(&loop)), "");
  EXPECT_EQ(messages, (std::vector<std::string>{"Unhandled exception in client_connected_cb"}));
}

}  // namespace
}  // namespace tulip
