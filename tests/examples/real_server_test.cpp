// The example clients against real servers: redis-server and nginx, started on
// a free loopback port by with_server.py, which passes the port (and nginx's
// document root) in the environment. Run alone, without those variables, the
// tests skip.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "http/http_client_protocol.hpp"
#include "redis/redis_protocol.hpp"

namespace {

std::uint16_t port_from(const char* variable) {
  const char* value = std::getenv(variable);
  return value ? static_cast<std::uint16_t>(std::atoi(value)) : 0;
}

#define REQUIRE_SERVER(variable)                  \
  const std::uint16_t port = port_from(variable); \
  if (port == 0) GTEST_SKIP() << variable << " is not set (run through with_server.py)"

tulip::Connection<RedisProtocol> connect_redis(tulip::EventLoop& loop, std::uint16_t port,
                                               double timeout = 10.0) {
  return loop.run_until_complete(loop.create_connection(
      [&] { return std::make_shared<RedisProtocol>(loop, timeout); }, "127.0.0.1", port));
}

TEST(RedisServer, PingSetGetAndAServerError) {
  REQUIRE_SERVER("TULIP_REDIS_PORT");
  tulip::EventLoop loop;
  auto [transport, redis] = connect_redis(loop, port);
  EXPECT_EQ(loop.run_until_complete(redis->command({"PING"})).text, "PONG");
  EXPECT_EQ(loop.run_until_complete(redis->command({"SET", "k", "v\r\nwith CRLF"})).text, "OK");
  EXPECT_EQ(loop.run_until_complete(redis->command({"GET", "k"})).text, "v\r\nwith CRLF");
  EXPECT_EQ(loop.run_until_complete(redis->command({"GET", "missing"})).type,
            resp::Value::Type::kNull);
  try {
    loop.run_until_complete(redis->command({"INCR", "k"}));
    ADD_FAILURE() << "INCR of a string succeeded";
  } catch (const RedisError& error) {
    EXPECT_NE(std::string(error.what()).find("not an integer"), std::string::npos) << error.what();
  }
  EXPECT_EQ(loop.run_until_complete(redis->command({"PING"})).text, "PONG");
}

TEST(RedisServer, PipelinesTenThousandCommands) {
  REQUIRE_SERVER("TULIP_REDIS_PORT");
  tulip::EventLoop loop;
  auto [transport, redis] = connect_redis(loop, port);
  std::vector<tulip::Future<resp::Value>> replies;
  for (int i = 0; i < 10000; ++i) replies.push_back(redis->command({"INCR", "counter"}));
  loop.run_until_complete(replies.back());
  for (int i = 0; i < 10000; ++i) ASSERT_EQ(replies[i].result().integer, i + 1);
}

TEST(RedisServer, ASlowServerTimesOut) {
  REQUIRE_SERVER("TULIP_REDIS_PORT");
  tulip::EventLoop loop;
  auto [transport, redis] = connect_redis(loop, port, 0.2);
  // BLPOP on an empty list holds the reply for 2 s: longer than our timeout.
  auto reply = redis->command({"BLPOP", "empty-list", "2"});
  EXPECT_THROW(loop.run_until_complete(reply), tulip::TimeoutError);
}

TEST(RedisServer, TheServerClosingTheConnectionFailsThePendingCommands) {
  REQUIRE_SERVER("TULIP_REDIS_PORT");
  tulip::EventLoop loop;
  auto [transport, redis] = connect_redis(loop, port);
  // The server kills this very connection; the command queued behind gets no reply.
  auto kill = redis->command({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "no"});
  auto orphan = redis->command({"PING"});
  EXPECT_THROW(loop.run_until_complete(orphan), tulip::ConnectionError);
  EXPECT_TRUE(kill.done());
}

// Each GET below goes over one connection, which stays open (keep-alive).
TEST(NginxServer, KeepAliveContentLengthAndChunkedBodies) {
  REQUIRE_SERVER("TULIP_NGINX_PORT");
  std::string root = std::getenv("TULIP_NGINX_ROOT");
  std::string big(300 * 1024, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i * 7 % 26);
  std::ofstream(root + "/big.txt", std::ios::binary) << big;
  std::ofstream(root + "/small.txt", std::ios::binary) << "hello nginx\n";

  tulip::EventLoop loop;
  int connections = 0;
  auto [transport, client] = loop.run_until_complete(loop.create_connection(
      [&] {
        ++connections;
        return std::make_shared<HttpClientProtocol>(loop, "localhost", 10.0);
      },
      "127.0.0.1", port));
  auto small = client->get("/small.txt");
  auto large = client->get("/big.txt");
  auto missing = client->get("/missing.txt");
  // gzip on: nginx compresses on the fly, so it cannot know the length and chunks.
  auto gzipped = client->get("/big.txt", "Accept-Encoding: gzip\r\n");
  auto again = client->get("/small.txt");
  loop.run_until_complete(again);
  EXPECT_EQ(small.result().body, "hello nginx\n");
  EXPECT_EQ(large.result().headers.get("Content-Length"), std::to_string(big.size()));
  EXPECT_EQ(large.result().body, big);
  EXPECT_EQ(missing.result().status, 404);
  http::Response compressed = gzipped.result();
  EXPECT_EQ(compressed.headers.get("Transfer-Encoding"), "chunked");
  ASSERT_GT(compressed.body.size(), 18u);
  EXPECT_EQ(compressed.body.substr(0, 2), "\x1f\x8b") << "not a gzip stream";
  // A gzip stream ends with the uncompressed size (mod 2^32), little-endian:
  // the chunks were put back together byte for byte.
  std::uint32_t size = 0;
  for (int i = 3; i >= 0; --i) {
    size = size << 8 | static_cast<unsigned char>(compressed.body[compressed.body.size() - 4 + i]);
  }
  EXPECT_EQ(size, big.size());
  EXPECT_EQ(again.result().body, "hello nginx\n");
  EXPECT_EQ(connections, 1);
  EXPECT_FALSE(transport->is_closing()) << "nginx closed a kept-alive connection";
}

}  // namespace
