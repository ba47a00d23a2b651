// SendBufferPool: the io_uring backend's memory for large send requests.
#include "uring/send_buffer_pool.hpp"

#include <gtest/gtest.h>

#include <string>

namespace tulip::detail {
namespace {

constexpr std::size_t kKept = SendBufferPool::kKeptPerTransport;
constexpr std::size_t kBlock = SendBufferPool::kBlockSize;

TEST(SendBufferPool, SmallSendsStayInTheTransportsOwnMemory) {
  SendBufferPool pool;
  std::string sent;
  pool.reserve(sent, 1024);
  EXPECT_GE(sent.capacity(), 1024u);
  EXPECT_LE(sent.capacity(), kKept);
  sent.assign(1024, 'x');
  const char* memory = sent.data();
  pool.recycle(sent);
  EXPECT_TRUE(sent.empty());
  EXPECT_EQ(sent.data(), memory) << "a transport keeps up to kKeptPerTransport between sends";
  EXPECT_EQ(pool.kept(), 0u);
}

TEST(SendBufferPool, GrowingPastTheTransportsShareKeepsTheBytes) {
  SendBufferPool pool;
  std::string sent(3000, 'a');
  sent.append(40'000, 'b');
  pool.reserve(sent, kKept + 1);
  EXPECT_GE(sent.capacity(), kBlock) << "one block, not a doubling series";
  ASSERT_EQ(sent.size(), 43'000u);
  EXPECT_EQ(sent.substr(0, 3000), std::string(3000, 'a'));
  EXPECT_EQ(sent.substr(3000), std::string(40'000, 'b'));
}

TEST(SendBufferPool, ALargeBufferComesBackToTheNextLargeSend) {
  SendBufferPool pool;
  std::string first;
  pool.reserve(first, 100 * 1024);
  const char* block = first.data();
  first.assign(100 * 1024, 'x');
  pool.recycle(first);
  EXPECT_TRUE(first.empty());
  EXPECT_LE(first.capacity(), kKept) << "an idle transport holds no large buffer";
  EXPECT_EQ(pool.kept(), 1u);

  std::string second = "head";
  pool.reserve(second, 200 * 1024);
  EXPECT_EQ(second.data(), block) << "the pooled buffer is reused";
  EXPECT_EQ(second, "head") << "the bytes already there move with it";
  EXPECT_EQ(pool.kept(), 0u);
}

TEST(SendBufferPool, KeepsABoundedNumberOfBuffers) {
  SendBufferPool pool;
  for (std::size_t i = 0; i < SendBufferPool::kMaxKept + 3; ++i) {
    std::string sent;
    pool.reserve(sent, kBlock);
    sent.assign(kBlock, 'x');
    pool.recycle(sent);
  }
  // Each iteration took the buffer the one before gave back.
  EXPECT_EQ(pool.kept(), 1u);

  std::string many[SendBufferPool::kMaxKept + 3];
  for (std::string& sent : many) pool.reserve(sent, kBlock);
  for (std::string& sent : many) pool.recycle(sent);
  EXPECT_EQ(pool.kept(), SendBufferPool::kMaxKept);
  for (const std::string& sent : many) EXPECT_LE(sent.capacity(), kKept);
}

TEST(SendBufferPool, ABufferLargerThanABlockIsStillMadeAndFreed) {
  SendBufferPool pool;
  std::string sent;
  pool.reserve(sent, 2 * kBlock);
  EXPECT_GE(sent.capacity(), 2 * kBlock);
  pool.recycle(sent);
  EXPECT_LE(sent.capacity(), kKept);
  EXPECT_EQ(pool.kept(), 1u) << "larger than a block still serves as one";
}

}  // namespace
}  // namespace tulip::detail
