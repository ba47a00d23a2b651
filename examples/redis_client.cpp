// A Redis client on tulip: PING, SET/GET, a pipeline of 10,000 commands, and
// what a server error looks like. The protocol is in redis/redis_protocol.hpp,
// the RESP parser in redis/resp.hpp; this file shows how a program uses them.
//
//   redis_client [--host H] [--port P] [--requests N] [--timeout S]
//   redis_client [--host H] [--port P] --pipeline N --count M
//
// Start a server first (redis-server --port 6379). Exit status 0 when every
// step got the reply it expected, 1 with a one-line reason otherwise.
//
// With --count, it runs a fixed workload instead, the one of
// `redis-benchmark -c 1 -P N -t set,get -n M -q`: M SETs, then M GETs, N in
// flight at a time, and prints requests per second for each (bench/README.md).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "redis/redis_protocol.hpp"
#include "tulip/tulip.hpp"

namespace {

struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  int requests = 10000;
  double timeout = 5.0;
  int pipeline = 16;  // --pipeline: commands in flight in the benchmark
  int count = 0;      // --count: commands of each kind in the benchmark (0: the demo)
};

Options parse_arguments(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string name = argv[i];
    const char* value = argv[i + 1];
    if (name == "--host") {
      options.host = value;
    } else if (name == "--port") {
      options.port = static_cast<std::uint16_t>(std::atoi(value));
    } else if (name == "--requests") {
      options.requests = std::atoi(value);
    } else if (name == "--timeout") {
      options.timeout = std::atof(value);
    } else if (name == "--pipeline") {
      options.pipeline = std::max(1, std::atoi(value));
    } else if (name == "--count") {
      options.count = std::atoi(value);
    } else {
      std::fprintf(stderr, "redis_client: unknown option %s\n", name.c_str());
      std::exit(2);
    }
  }
  return options;
}

void expect(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("unexpected reply: " + what);
}

// The benchmark: `count` commands in batches of `pipeline`; a batch is sent in
// one write and the next leaves once its last reply is in, as redis-benchmark
// -P does. Returns requests per second.
double benchmark(tulip::EventLoop& loop, RedisProtocol& redis, const Options& options,
                 std::initializer_list<std::string_view> command, std::string_view expected) {
  std::vector<tulip::Future<resp::Value>> batch;
  auto start = std::chrono::steady_clock::now();
  for (int sent = 0; sent < options.count; sent += options.pipeline) {
    batch.clear();
    for (int i = sent; i < std::min(options.count, sent + options.pipeline); ++i) {
      batch.push_back(redis.command(command));
    }
    loop.run_until_complete(batch.back());  // replies come in order: all of them are in
    for (auto& reply : batch) expect(reply.result().text == expected, "benchmark reply");
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return options.count / seconds;
}

int run(const Options& options) {
  tulip::EventLoop loop;

  // create_connection calls the factory once the TCP connection is up; the
  // Future completes after the protocol's connection_made has run.
  auto [transport, redis] = loop.run_until_complete(
      loop.create_connection([&] { return std::make_shared<RedisProtocol>(loop, options.timeout); },
                             options.host, options.port));

  if (options.count > 0) {
    // The same key and 3-byte value as redis-benchmark, and its -q output.
    double set = benchmark(loop, *redis, options, {"SET", "key:__rand_int__", "xxx"}, "OK");
    std::printf("SET: %.2f requests per second\n", set);
    double get = benchmark(loop, *redis, options, {"GET", "key:__rand_int__"}, "xxx");
    std::printf("GET: %.2f requests per second\n", get);
    transport->close();
    return 0;
  }

  // One command, one reply: run the loop until its Future is done.
  resp::Value pong = loop.run_until_complete(redis->command({"PING"}));
  expect(pong.text == "PONG", "PING -> " + pong.text);
  std::printf("PING -> %s\n", pong.text.c_str());

  loop.run_until_complete(redis->command({"SET", "tulip:greeting", "hello"}));
  resp::Value greeting = loop.run_until_complete(redis->command({"GET", "tulip:greeting"}));
  expect(greeting.text == "hello", "GET -> " + greeting.text);
  std::printf("GET tulip:greeting -> %s\n", greeting.text.c_str());

  // Pipelining: issue every command before waiting for any reply. They leave
  // in one write at the end of this iteration; replies come back in order, so
  // waiting for the last Future waits for all of them.
  auto start = std::chrono::steady_clock::now();
  std::vector<tulip::Future<resp::Value>> replies;
  replies.reserve(static_cast<std::size_t>(options.requests));
  for (int i = 0; i < options.requests; ++i) {
    std::string value = std::to_string(i);
    replies.push_back(redis->command({"SET", "tulip:key:" + value, value}));
  }
  replies.push_back(redis->command({"GET", "tulip:key:" + std::to_string(options.requests - 1)}));
  resp::Value last = loop.run_until_complete(replies.back());
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (std::size_t i = 0; i + 1 < replies.size(); ++i) {
    expect(replies[i].result().text == "OK", "pipelined SET -> " + replies[i].result().text);
  }
  expect(last.text == std::to_string(options.requests - 1), "pipelined GET -> " + last.text);
  std::printf("pipelined %zu commands in %.3f s (%.0f requests/s)\n", replies.size(), seconds,
              static_cast<double>(replies.size()) / seconds);

  // A server error is an exception from that command's Future, nothing more:
  // the connection goes on.
  try {
    loop.run_until_complete(redis->command({"INCR", "tulip:greeting"}));
    throw std::runtime_error("INCR of a string did not fail");
  } catch (const RedisError& error) {
    std::printf("INCR tulip:greeting -> %s\n", error.what());
  }
  expect(loop.run_until_complete(redis->command({"PING"})).text == "PONG", "PING after an error");

  transport->close();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse_arguments(argc, argv);
  try {
    return run(options);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "redis_client: %s\n", error.what());
    return 1;
  }
}
