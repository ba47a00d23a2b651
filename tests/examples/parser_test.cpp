// The example parsers on fixtures: RESP (examples/redis/resp.hpp) and HTTP/1.1
// (examples/http/http_parser.hpp). Every malformed input must throw the
// parser's own error with a clear message, never crash or hang.
#include <gtest/gtest.h>

#include <ctime>
#include <string>
#include <vector>

#include "http/http_parser.hpp"
#include "redis/resp.hpp"

namespace {

TEST(RespParser, ParsesEveryTypeFedOneByteAtATime) {
  std::string wire =
      "+OK\r\n-ERR wrong\r\n:-42\r\n$5\r\nhe\r\no\r\n$-1\r\n*2\r\n:1\r\n*1\r\n$0\r\n\r\n";
  resp::Parser parser;
  std::vector<resp::Value> values;
  for (char c : wire) {
    parser.feed(std::string_view(&c, 1));
    while (auto value = parser.next()) values.push_back(*value);
  }
  ASSERT_EQ(values.size(), 6u);
  EXPECT_EQ(values[0].type, resp::Value::Type::kSimpleString);
  EXPECT_EQ(values[0].text, "OK");
  EXPECT_EQ(values[1].type, resp::Value::Type::kError);
  EXPECT_EQ(values[1].text, "ERR wrong");
  EXPECT_EQ(values[2].integer, -42);
  EXPECT_EQ(values[3].text, "he\r\no") << "a bulk string may hold CRLF";
  EXPECT_EQ(values[4].type, resp::Value::Type::kNull);
  ASSERT_EQ(values[5].elements.size(), 2u);
  EXPECT_EQ(values[5].elements[1].elements.at(0).text, "");
  EXPECT_FALSE(parser.partial());
}

std::string nested(int depth) {
  std::string wire;
  for (int i = 0; i < depth; ++i) wire += "*1\r\n";
  return wire;
}

TEST(RespParser, MalformedInputThrowsAClearError) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"?what\r\n", "unknown type byte 0x3f"},
      {":12x\r\n", "malformed integer"},
      {"$abc\r\n", "malformed bulk length"},
      {"$-5\r\n", "out of range"},
      {"$3\r\nabcd\r\n", "not followed by CRLF"},
      {"*99999999999\r\n", "out of range"},
      {"\r\n", "empty line"},
      {std::string(70000, 'x'), "line too long"},
      {nested(40), "nested too deeply"},
  };
  for (const auto& [input, message] : cases) {
    resp::Parser parser;
    parser.feed(input);
    try {
      parser.next();
      ADD_FAILURE() << "no error for " << input.substr(0, 20);
    } catch (const resp::ProtocolError& error) {
      EXPECT_NE(std::string(error.what()).find(message), std::string::npos) << error.what();
    }
  }
}

// CPU seconds spent by `work`, which other processes do not stretch as they do
// wall time. The tests below allow 5 s: about 100 times what the linear
// parsers take (room for a sanitizer build), a quarter or less of what the
// quadratic ones took.
template <class Work>
double cpu_seconds(Work&& work) {
  std::clock_t start = std::clock();
  work();
  return static_cast<double>(std::clock() - start) / CLOCKS_PER_SEC;
}

// Regression: a long array arriving in many pieces was parsed again from its
// start with every piece, so its cost grew with the square of its length:
// 300,000 elements in 1 KiB pieces took 22 s of CPU (now 0.05 s).
TEST(RespParser, ALongArrayInManyPiecesIsParsedOnce) {
  constexpr int kElements = 300000;
  std::string wire = "*" + std::to_string(kElements) + "\r\n";
  for (int i = 0; i < kElements; ++i) wire += "$5\r\nvalue\r\n";
  resp::Parser parser;
  std::vector<resp::Value> values;
  double seconds = cpu_seconds([&] {
    for (std::size_t i = 0; i < wire.size(); i += 1024) {
      parser.feed(std::string_view(wire).substr(i, 1024));
      while (auto value = parser.next()) values.push_back(std::move(*value));
      if (i + 1024 < wire.size()) {
        EXPECT_TRUE(parser.partial());
      }
    }
  });
  ASSERT_EQ(values.size(), 1u);
  EXPECT_EQ(values[0].elements.size(), static_cast<std::size_t>(kElements));
  EXPECT_EQ(values[0].elements.back().text, "value");
  EXPECT_FALSE(parser.partial());
  EXPECT_LT(seconds, 5.0) << "parsing grows faster than the reply";
}

TEST(RespParser, EncodesCommandsAsArraysOfBulkStrings) {
  std::vector<std::string_view> arguments = {"SET", "k", ""};
  EXPECT_EQ(resp::encode_command(arguments), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
}

TEST(HttpResponseParser, ContentLengthAndChunkedBodiesFedInPieces) {
  std::string wire =
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello"
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\n"
      "HTTP/1.1 204 No Content\r\n\r\n";
  for (std::size_t piece : {1u, 3u, 7u, 1000u}) {
    http::ResponseParser parser;
    std::vector<http::Response> responses;
    for (std::size_t i = 0; i < wire.size(); i += piece) {
      parser.feed(std::string_view(wire).substr(i, piece));
      while (auto response = parser.next()) responses.push_back(*response);
    }
    ASSERT_EQ(responses.size(), 3u) << "pieces of " << piece;
    EXPECT_EQ(responses[0].body, "hello");
    EXPECT_EQ(responses[0].headers.get("x-a"), "1");
    EXPECT_EQ(responses[1].body, "Wikipedia in \r\n\r\nchunks.");
    EXPECT_EQ(responses[2].status, 204);
    EXPECT_TRUE(responses[2].keep_alive);
    EXPECT_FALSE(parser.in_progress());
  }
}

// Regression: every chunk erased its bytes from the front of the buffer, so a
// body of many small chunks received in one piece cost the square of its size
// (200,000 one-byte chunks, 1.2 MB: 4.8 s of CPU; 500,000: some 30 s; now
// 0.05 s), a way for a server to stall the client.
TEST(HttpResponseParser, ManySmallChunksInOnePieceAreParsedInLinearTime) {
  constexpr int kChunks = 500000;
  std::string wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < kChunks; ++i) wire += "1\r\nx\r\n";
  wire += "0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
  http::ResponseParser parser;
  std::vector<http::Response> responses;
  double seconds = cpu_seconds([&] {
    parser.feed(wire);
    while (auto response = parser.next()) responses.push_back(std::move(*response));
  });
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_EQ(responses[0].body, std::string(kChunks, 'x'));
  EXPECT_EQ(responses[1].status, 204);
  EXPECT_FALSE(parser.in_progress());
  EXPECT_LT(seconds, 5.0) << "parsing grows faster than the body";
}

TEST(HttpResponseParser, ABodyWithoutLengthRunsUntilTheClose) {
  http::ResponseParser parser;
  parser.feed("HTTP/1.0 200 OK\r\n\r\npart one, ");
  EXPECT_FALSE(parser.next());
  parser.feed("part two");
  EXPECT_FALSE(parser.next());
  auto response = parser.finish_at_eof();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->body, "part one, part two");
  EXPECT_FALSE(response->keep_alive);
  http::ResponseParser cut;
  cut.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort");
  EXPECT_FALSE(cut.next());
  EXPECT_THROW(cut.finish_at_eof(), http::ParseError);
}

TEST(HttpResponseParser, MalformedResponsesThrowAClearError) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"SMTP/1.1 200 OK\r\n\r\n", "malformed status line"},
      {"HTTP/1.1 2x0 OK\r\n\r\n", "bad status"},
      {"HTTP/1.1 999 Odd\r\n\r\n", "bad status code"},
      {"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line"},
      {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "conflicting"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "unsupported Transfer-Encoding"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY", "not ended by CRLF"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
       "bad chunk size"},
      {"HTTP/1.1 200 OK\r\n" + std::string(70000, 'a'), "head too large"},
  };
  for (const auto& [input, message] : cases) {
    http::ResponseParser parser;
    parser.feed(input);
    try {
      while (parser.next()) {
      }
      ADD_FAILURE() << "no error for " << input.substr(0, 40);
    } catch (const http::ParseError& error) {
      EXPECT_NE(std::string(error.what()).find(message), std::string::npos) << error.what();
    }
  }
}

TEST(HttpRequestParser, PipelinedRequestsAndKeepAlive) {
  http::RequestParser parser;
  parser.feed(
      "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
      "POST /form HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
      "GET /bye HTTP/1.0\r\n\r\n");
  auto first = parser.next();
  auto second = parser.next();
  auto third = parser.next();
  ASSERT_TRUE(first && second && third);
  EXPECT_TRUE(first->keep_alive);
  EXPECT_EQ(second->body, "abc");
  EXPECT_EQ(third->target, "/bye");
  EXPECT_FALSE(third->keep_alive);
  EXPECT_FALSE(parser.next());
  for (std::string bad : {"GET\r\n\r\n", "GET / HTTP/2\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n",
                          "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                          "GET / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"}) {
    http::RequestParser strict;
    strict.feed(bad);
    EXPECT_THROW(strict.next(), http::ParseError) << bad;
  }
}

}  // namespace
