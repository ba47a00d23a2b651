// Streams: StreamReader parsing (fed directly, deterministic) and
// open_connection / start_server over real loopback sockets.
#include "tulip/streams.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "support/loopback.hpp"
#include "support/temp_dir.hpp"
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

TEST(StreamReader, ReadIntoCopiesWhatIsBufferedUpToTheBufferSize) {
  EventLoop loop;
  auto body = []() -> Task<std::vector<std::string>> {
    StreamReader reader;
    reader.feed_data("0123456789");
    reader.feed_data("abc");
    std::vector<std::string> out;
    char buffer[8];
    std::size_t n = co_await reader.read_into(buffer);
    out.emplace_back(buffer, n);  // a full buffer
    n = co_await reader.read_into(buffer);
    out.emplace_back(buffer, n);  // what is left, across both feeds
    n = co_await reader.read_into(std::span<char>(buffer, 0));
    out.push_back(std::to_string(n));  // an empty buffer reads nothing
    reader.feed_eof();
    n = co_await reader.read_into(buffer);
    out.push_back(std::to_string(n));  // EOF
    EXPECT_TRUE(reader.at_eof());
    co_return out;
  };
  EXPECT_EQ(run_until_complete(loop, body()),
            (std::vector<std::string>{"01234567", "89abc", "0", "0"}));
}

TEST(StreamReader, ReadIntoWaitsForDataAndReportsTheConnectionError) {
  EventLoop loop;
  StreamReader reader;
  char buffer[16];
  Task<std::size_t> read = loop.create_task(reader.read_into(buffer));
  loop.stop();
  loop.run_forever();
  EXPECT_FALSE(read.done());
  loop.call_soon([&] { reader.feed_data("late"); });
  EXPECT_EQ(run_until_complete(loop, read), 4u);
  EXPECT_EQ(std::string(buffer, 4), "late");

  Task<std::size_t> failing = loop.create_task(reader.read_into(buffer));
  loop.stop();
  loop.run_forever();
  reader.set_exception(std::make_exception_ptr(
      ConnectionError(std::make_error_code(std::errc::connection_reset), "reset")));
  EXPECT_THROW(run_until_complete(loop, failing), ConnectionError);
  EXPECT_THROW(run_until_complete(loop, reader.read_into(buffer)), ConnectionError);
}

// Runs one iteration of the loop.
void run_once(EventLoop& loop) {
  loop.stop();
  loop.run_forever();
}

TEST(StreamReader, ReadCancelledWhileWaitingLeavesTheReaderUsable) {
  EventLoop loop;
  StreamReader reader;
  Task<std::string> read = loop.create_task(reader.read(10));
  run_once(loop);
  ASSERT_FALSE(read.done());
  EXPECT_TRUE(read.cancel("stop reading"));
  try {
    run_until_complete(loop, read);
    ADD_FAILURE() << "expected CancelledError";
  } catch (const CancelledError& e) {
    EXPECT_STREQ(e.what(), "stop reading");
  }
  // The cancelled read no longer waits: a new one gets the data.
  Task<std::string> next = loop.create_task(reader.read(10));
  run_once(loop);
  reader.feed_data("kept");
  EXPECT_EQ(run_until_complete(loop, next), "kept");
}

TEST(StreamReader, CancelAfterTheDataCameStillCancelsAndKeepsTheData) {
  EventLoop loop;
  StreamReader reader;
  Task<std::string> read = loop.create_task(reader.read(10));
  run_once(loop);
  reader.feed_data("abc");  // wakes the read: its step is queued
  EXPECT_TRUE(read.cancel());
  EXPECT_THROW(run_until_complete(loop, read), CancelledError);
  EXPECT_EQ(run_until_complete(loop, reader.read(10)), "abc");
}

TEST(StreamReader, AnErrorAfterTheDataCameDoesNotHideTheData) {
  EventLoop loop;
  StreamReader reader;
  char buffer[8];
  Task<std::size_t> read = loop.create_task(reader.read_into(buffer));
  run_once(loop);
  reader.feed_data("abc");
  reader.set_exception(std::make_exception_ptr(
      ConnectionError(std::make_error_code(std::errc::connection_reset), "reset")));
  EXPECT_EQ(run_until_complete(loop, read), 3u);  // woken by the data first
  EXPECT_THROW(run_until_complete(loop, reader.read_into(buffer)), ConnectionError);
}

TEST(StreamReader, ReadDestroyedWhileWaitingUnregistersItself) {
  StreamReader reader;  // outlives the first loop
  {
    EventLoop loop;
    Task<std::string> read = loop.create_task(reader.readline());
    run_once(loop);
    ASSERT_FALSE(read.done());
  }  // closing the loop destroys the waiting frame
  EventLoop loop;
  Task<std::string> read = loop.create_task(reader.readline());
  run_once(loop);
  EXPECT_FALSE(read.done()) << "a second waiter was refused: the first is still registered";
  reader.feed_data("line\n");
  EXPECT_EQ(run_until_complete(loop, read), "line\n");
}

TEST(StreamReader, AWaitingReadIntoReceivesWithoutACopy) {
  EventLoop loop;
  StreamReader reader;
  EXPECT_TRUE(reader.receive_buffer().empty()) << "nobody waits";
  char buffer[16];
  Task<std::size_t> read = loop.create_task(reader.read_into(buffer));
  run_once(loop);
  std::span<char> direct = reader.receive_buffer();
  ASSERT_EQ(direct.data(), buffer) << "the waiting read's own memory";
  ASSERT_EQ(direct.size(), sizeof(buffer));
  std::memcpy(direct.data(), "direct", 6);  // what a transport's receive does
  reader.feed_received(6);
  EXPECT_TRUE(reader.receive_buffer().empty()) << "the read has its bytes";
  reader.feed_data("later");  // buffered for the next read
  EXPECT_EQ(run_until_complete(loop, read), 6u);
  EXPECT_EQ(std::string(buffer, 6), "direct");
  EXPECT_TRUE(reader.receive_buffer().empty()) << "bytes are buffered: they come first";
  EXPECT_EQ(run_until_complete(loop, reader.read(10)), "later");
}

TEST(StreamReader, BytesDeliveredToACancelledReadIntoGoBackInOrder) {
  EventLoop loop;
  StreamReader reader;
  char buffer[4];
  Task<std::size_t> read = loop.create_task(reader.read_into(buffer));
  run_once(loop);
  reader.feed_data("abcdef");  // "abcd" into the read's buffer, "ef" buffered
  reader.feed_data("gh");
  EXPECT_TRUE(read.cancel());
  EXPECT_THROW(run_until_complete(loop, read), CancelledError);
  reader.feed_eof();
  EXPECT_EQ(run_until_complete(loop, reader.read()), "abcdefgh");
}

TEST(StreamReader, BytesDeliveredToADestroyedReadIntoGoBack) {
  StreamReader reader;  // outlives the loop
  char buffer[8];
  {
    EventLoop loop;
    Task<std::size_t> read = loop.create_task(reader.read_into(buffer));
    run_once(loop);
    reader.feed_data("xyz");  // delivered; the loop closes before the read resumes
  }
  reader.feed_eof();
  EventLoop loop;
  EXPECT_EQ(run_until_complete(loop, reader.read()), "xyz");
}

// Reads three lines, one byte arriving per loop iteration, and is cancelled
// after `k` iterations, for every k: the task ends cancelled (or done with the
// right lines if k is past the end), and no byte is lost or read twice.
TEST(StreamReader, CancelledAtEveryPointOfAReadLoop) {
  const std::string input = "ab\ncd\nef\ntail";
  for (int k = 0; k <= static_cast<int>(input.size()) + 2; ++k) {
    SCOPED_TRACE("cancelled after " + std::to_string(k) + " iterations");
    EventLoop loop;
    StreamReader reader;
    std::string consumed;
    auto body = [](StreamReader* r, std::string* out) -> Task<void> {
      for (int i = 0; i < 3; ++i) *out += co_await r->readline();
    };
    Task<void> task = loop.create_task(body(&reader, &consumed));
    std::size_t fed = 0;
    for (int i = 0; i < k; ++i) {
      if (fed < input.size()) reader.feed_data(input.substr(fed++, 1));
      run_once(loop);
    }
    bool cancelling = task.cancel();
    while (!task.done()) run_once(loop);
    if (cancelling) {
      EXPECT_TRUE(task.cancelled());
    } else {
      EXPECT_EQ(consumed, "ab\ncd\nef\n");
    }
    // What was read plus what is left is the input, in order.
    reader.feed_data(input.substr(fed));
    reader.feed_eof();
    EXPECT_EQ(consumed + run_until_complete(loop, reader.read()), input);
  }
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

TEST(Streams, UnixServerAndClient) {
  EventLoop loop;
  testing::TempDir dir;
  auto body = [](EventLoop* l, std::string path) -> Task<std::string> {
    std::shared_ptr<Server> server = co_await start_unix_server(*l, echo_client_handler, path);
    auto [reader, writer] = co_await open_unix_connection(*l, path);
    EXPECT_EQ(writer->get_extra_info<SocketAddress>("peername")->path(), path);
    writer->write("over unix\n");
    writer->write_eof();
    std::string echoed = co_await reader->read();  // until the server closes
    writer->close();
    co_await writer->wait_closed();
    server->close();
    co_await server->wait_closed();
    co_return echoed;
  };
  EXPECT_EQ(run_until_complete(loop, body(&loop, dir.file("s.sock"))), "over unix\n");
  EXPECT_NE(::access(dir.file("s.sock").c_str(), F_OK), 0) << "the socket file is removed";
}

TEST(Streams, OpenUnixConnectionToNothingFailsWithTheCause) {
  EventLoop loop;
  testing::TempDir dir;
  std::string path = dir.file("nobody.sock");
  try {
    (void)run_until_complete(loop, open_unix_connection(loop, path));
    ADD_FAILURE() << "expected an error";
  } catch (const OSError& e) {
    EXPECT_EQ(e.code(), std::make_error_code(std::errc::no_such_file_or_directory)) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
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
