// The tools' helpers: Python byte literals, argument values, the payload pattern.
#include "tool_support.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace tulip::tools {
namespace {

TEST(PythonBytesRepr, MatchesPython) {
  using namespace std::string_literals;
  EXPECT_EQ(python_bytes_repr("Hello World!"), "b'Hello World!'");
  EXPECT_EQ(python_bytes_repr(""), "b''");
  EXPECT_EQ(python_bytes_repr("it's"), "b\"it's\"");
  EXPECT_EQ(python_bytes_repr("it's \"quoted\""), "b'it\\'s \"quoted\"'");
  EXPECT_EQ(python_bytes_repr("a\tb\nc\rd\\e"), "b'a\\tb\\nc\\rd\\\\e'");
  EXPECT_EQ(python_bytes_repr("\x00\x7f\xff\x1b"s), "b'\\x00\\x7f\\xff\\x1b'");
  EXPECT_EQ(python_bytes_repr("\xc3\xa9"), "b'\\xc3\\xa9'");
}

TEST(PythonBytesRepr, TruncatesLongDataWithItsLength) {
  std::string data(100, 'z');
  EXPECT_EQ(python_bytes_repr(data, 4), "b'zzzz'... (100 bytes)");
  EXPECT_EQ(python_bytes_repr("abcd", 4), "b'abcd'");
}

TEST(ParseSize, UnitsAndErrors) {
  EXPECT_EQ(parse_size("1234"), 1234u);
  EXPECT_EQ(parse_size("64K"), 65536u);
  EXPECT_EQ(parse_size("64KiB"), 65536u);
  EXPECT_EQ(parse_size("64 MiB"), 64u << 20);
  EXPECT_EQ(parse_size("64M"), 64u << 20);
  EXPECT_EQ(parse_size("1G"), 1ull << 30);
  EXPECT_FALSE(parse_size(""));
  EXPECT_FALSE(parse_size("abc"));
  EXPECT_FALSE(parse_size("12 parsecs"));
  EXPECT_FALSE(parse_size("-5"));
  EXPECT_FALSE(parse_size("99999999999999999999"));
}

TEST(ParsePort, Range) {
  EXPECT_EQ(parse_port("8888", 1), 8888);
  EXPECT_EQ(parse_port("0", 0), 0);
  EXPECT_FALSE(parse_port("0", 1));
  EXPECT_FALSE(parse_port("70000", 1));
  EXPECT_FALSE(parse_port("abc", 1));
  EXPECT_FALSE(parse_port("", 1));
  EXPECT_FALSE(parse_port("-1", 0));
}

TEST(ParseSeconds, PositiveFiniteOnly) {
  EXPECT_EQ(parse_seconds("2"), 2.0);
  EXPECT_EQ(parse_seconds("0.5"), 0.5);
  EXPECT_FALSE(parse_seconds("0"));
  EXPECT_FALSE(parse_seconds("-1"));
  EXPECT_FALSE(parse_seconds("inf"));
  EXPECT_FALSE(parse_seconds("nan"));
  EXPECT_FALSE(parse_seconds("1s"));
}

TEST(Pattern, CoversEveryByteValueAndShiftsEachRun) {
  std::set<unsigned char> values;
  for (std::uint64_t i = 0; i < 256; ++i)
    values.insert(static_cast<unsigned char>(pattern_byte(i)));
  EXPECT_EQ(values.size(), 256u);
  EXPECT_NE(pattern_byte(0), pattern_byte(256));
  char block[300];
  fill_pattern(block, 1000, sizeof(block));
  for (std::size_t i = 0; i < sizeof(block); ++i) EXPECT_EQ(block[i], pattern_byte(1000 + i));
}

}  // namespace
}  // namespace tulip::tools
