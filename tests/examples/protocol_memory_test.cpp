// The example clients' protocols over tulip::testing::MemoryTransport: the
// failures a real server rarely produces on demand (a malformed reply, a close
// in the middle of a reply, silence), scripted byte by byte.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "http/http_client_protocol.hpp"
#include "redis/redis_protocol.hpp"
#include "tulip/testing/memory_transport.hpp"

namespace {

using tulip::testing::MemoryTransport;
using tulip::testing::run_until_idle;

// Runs until `future` is done (bounded by the protocols' own timeouts).
template <class T>
void settle(tulip::EventLoop& loop, tulip::Future<T>& future) {
  try {
    loop.run_until_complete(future);
  } catch (...) {
  }
}

TEST(RedisProtocolMemory, PipelinedCommandsLeaveInOneWriteAndRepliesComeInOrder) {
  tulip::EventLoop loop;
  auto connection = MemoryTransport::connect(loop, std::make_shared<RedisProtocol>(loop));
  run_until_idle(loop);
  auto first = connection.protocol->command({"SET", "a", "1"});
  auto second = connection.protocol->command({"GET", "a"});
  auto third = connection.protocol->command({"INCR", "a", "b"});
  EXPECT_EQ(connection.written(), "") << "commands must wait for the end of the iteration";
  run_until_idle(loop);
  EXPECT_EQ(connection.take_written(),
            "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n"
            "*3\r\n$4\r\nINCR\r\n$1\r\na\r\n$1\r\nb\r\n");
  connection.feed("+OK\r\n$1\r\n1\r\n-ERR wrong number of arguments\r\n", 2);
  run_until_idle(loop);
  EXPECT_EQ(first.result().text, "OK");
  EXPECT_EQ(second.result().text, "1");
  EXPECT_THROW(third.result(), RedisError);
  EXPECT_EQ(connection.protocol->pending(), 0u);
}

TEST(RedisProtocolMemory, AMalformedReplyFailsEveryPendingCommandAndAborts) {
  tulip::EventLoop loop;
  auto connection = MemoryTransport::connect(loop, std::make_shared<RedisProtocol>(loop));
  run_until_idle(loop);
  auto first = connection.protocol->command({"PING"});
  auto second = connection.protocol->command({"PING"});
  run_until_idle(loop);
  connection.feed("+PONG\r\n%garbage\r\n");
  run_until_idle(loop);
  EXPECT_EQ(first.result().text, "PONG");
  try {
    second.result();
    ADD_FAILURE() << "no error";
  } catch (const resp::ProtocolError& error) {
    EXPECT_STREQ(error.what(), "RESP: unknown type byte 0x25");
  }
  EXPECT_TRUE(connection.connection_lost());
  auto later = connection.protocol->command({"PING"});
  EXPECT_THROW(later.result(), resp::ProtocolError) << "later commands fail with the same reason";
}

TEST(RedisProtocolMemory, TheServerGoingAwayMidReplyIsAConnectionError) {
  tulip::EventLoop loop;
  auto connection = MemoryTransport::connect(loop, std::make_shared<RedisProtocol>(loop));
  run_until_idle(loop);
  auto reply = connection.protocol->command({"GET", "big"});
  run_until_idle(loop);
  connection.feed("$100\r\nonly part of it");
  connection.feed_eof();
  run_until_idle(loop);
  try {
    reply.result();
    ADD_FAILURE() << "no error";
  } catch (const tulip::ConnectionError& error) {
    EXPECT_NE(std::string(error.what()).find("in the middle of a reply"), std::string::npos)
        << error.what();
  }
}

TEST(RedisProtocolMemory, ASilentServerTimesOut) {
  tulip::EventLoop loop;
  auto connection = MemoryTransport::connect(loop, std::make_shared<RedisProtocol>(loop, 0.05));
  run_until_idle(loop);
  auto reply = connection.protocol->command({"PING"});
  settle(loop, reply);
  EXPECT_THROW(reply.result(), tulip::TimeoutError);
  run_until_idle(loop);
  EXPECT_TRUE(connection.connection_lost()) << "a timed-out connection is aborted";
}

TEST(HttpClientProtocolMemory, KeepAliveResponsesWithBothFramings) {
  tulip::EventLoop loop;
  auto connection =
      MemoryTransport::connect(loop, std::make_shared<HttpClientProtocol>(loop, "example"));
  run_until_idle(loop);
  auto first = connection.protocol->get("/a");
  auto second = connection.protocol->get("/b", "Accept-Encoding: gzip\r\n");
  EXPECT_EQ(connection.take_written(),
            "GET /a HTTP/1.1\r\nHost: example\r\nUser-Agent: tulip-example\r\n\r\n"
            "GET /b HTTP/1.1\r\nHost: example\r\nUser-Agent: tulip-example\r\n"
            "Accept-Encoding: gzip\r\n\r\n");
  connection.feed(
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ndef\r\n2\r\ngh\r\n0\r\n\r\n",
      5);
  run_until_idle(loop);
  EXPECT_EQ(first.result().body, "abc");
  EXPECT_EQ(second.result().body, "defgh");
  EXPECT_FALSE(connection.connection_lost()) << "keep-alive: the connection stays";
}

TEST(HttpClientProtocolMemory, MalformedCutShortAndSilentResponsesFailClearly) {
  tulip::EventLoop loop;
  auto bad = MemoryTransport::connect(loop, std::make_shared<HttpClientProtocol>(loop, "h"));
  auto cut = MemoryTransport::connect(loop, std::make_shared<HttpClientProtocol>(loop, "h"));
  auto silent =
      MemoryTransport::connect(loop, std::make_shared<HttpClientProtocol>(loop, "h", 0.05));
  run_until_idle(loop);
  auto bad_response = bad.protocol->get("/");
  auto cut_response = cut.protocol->get("/");
  auto silent_response = silent.protocol->get("/");
  bad.feed("HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n");
  cut.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
  cut.feed_eof();
  run_until_idle(loop);
  EXPECT_THROW(bad_response.result(), http::ParseError);
  EXPECT_TRUE(bad.connection_lost());
  EXPECT_THROW(cut_response.result(), http::ParseError);
  settle(loop, silent_response);
  EXPECT_THROW(silent_response.result(), tulip::TimeoutError);
}

}  // namespace
