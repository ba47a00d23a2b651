// WriteBuffer and WriteFlowControl: the transport's internal bookkeeping.
#include "write_buffer.hpp"

#include <gtest/gtest.h>

#include <string>

#include "flow_control.hpp"

namespace tulip::detail {
namespace {

using Limits = std::pair<std::size_t, std::size_t>;

std::string drain(WriteBuffer& buffer, std::size_t step) {
  std::string out;
  while (!buffer.empty()) {
    iovec vectors[4];
    std::size_t count = buffer.gather(vectors, 4);
    std::size_t taken = 0;
    for (std::size_t i = 0; i < count && taken < step; ++i) {
      std::size_t n = std::min(step - taken, vectors[i].iov_len);
      out.append(static_cast<const char*>(vectors[i].iov_base), n);
      taken += n;
    }
    buffer.consume(taken);
  }
  return out;
}

TEST(WriteBuffer, KeepsOrderAcrossCoalescedAndLargeChunks) {
  WriteBuffer buffer;
  std::string expected;
  for (int i = 0; i < 100; ++i) {
    std::string piece(static_cast<std::size_t>(i % 7 == 0 ? 40000 : 37),
                      static_cast<char>('a' + i % 26));
    expected += piece;
    if (i % 3 == 0) {
      buffer.append(std::string(piece));
    } else {
      buffer.append(std::string_view(piece));
    }
  }
  EXPECT_EQ(buffer.size(), expected.size());
  EXPECT_EQ(drain(buffer, 1000), expected);
  EXPECT_EQ(buffer.size(), 0u);
}

TEST(WriteBuffer, PartialConsumeAndClear) {
  WriteBuffer buffer;
  buffer.append(std::string_view("hello "));
  buffer.append(std::string(20000, 'x'));
  buffer.consume(3);
  EXPECT_EQ(buffer.size(), 20003u);
  iovec first;
  ASSERT_EQ(buffer.gather(&first, 1), 1u);
  EXPECT_EQ(std::string(static_cast<const char*>(first.iov_base), first.iov_len), "lo ");
  buffer.clear();
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ(buffer.gather(&first, 1), 0u);
}

TEST(WriteBuffer, StaysInOrderWhenItNeverDrains) {
  // A writer that stays ahead of the kernel: chunks are consumed from the front
  // while new ones arrive, so the buffer never empties and consumed chunks must
  // be reclaimed without losing or reordering a byte.
  WriteBuffer buffer;
  std::string expected;
  std::string out;
  for (int i = 0; i < 200; ++i) {
    std::string chunk(20 * 1024 + static_cast<std::size_t>(i), static_cast<char>('a' + i % 26));
    expected += chunk;
    buffer.append(std::move(chunk));
    // Take a little less than was added: the buffer grows slowly, never empties.
    std::size_t step = 20 * 1024 - 100;
    while (step > 0) {
      iovec vectors[2];
      std::size_t count = buffer.gather(vectors, 2);
      ASSERT_GT(count, 0u);
      std::size_t n = std::min(step, vectors[0].iov_len);
      out.append(static_cast<const char*>(vectors[0].iov_base), n);
      buffer.consume(n);
      step -= n;
    }
    ASSERT_FALSE(buffer.empty());
    ASSERT_EQ(buffer.size(), expected.size() - out.size());
  }
  out += drain(buffer, 7777);
  EXPECT_EQ(out, expected);
}

TEST(WriteFlowControl, PausesStrictlyOverHighAndResumesAtLow) {
  WriteFlowControl flow;
  flow.set_limits(100, 10);
  EXPECT_FALSE(flow.should_pause(100));
  EXPECT_TRUE(flow.should_pause(101));
  EXPECT_FALSE(flow.should_pause(500));  // once
  EXPECT_FALSE(flow.should_resume(11));
  EXPECT_TRUE(flow.should_resume(10));
  EXPECT_FALSE(flow.should_resume(0));
  EXPECT_THROW(flow.set_limits(5, 6), std::invalid_argument);
  EXPECT_EQ(flow.limits(), Limits(10, 100));
}

}  // namespace
}  // namespace tulip::detail
