// SendBufferPool: the memory of large send requests, kept by a loop between
// sends. Not API.
//
// A send request owns its bytes (uring_stream_writing.cpp). A transport keeps
// up to kKeptPerTransport of that memory between sends, so an echo of small
// messages allocates nothing; what a large write made larger is given up when
// the send completes, or an idle connection would hold it. Without a pool a
// stream of 100 KiB messages allocated, page-faulted in and unmapped a fresh
// buffer per message (about 40% of the server's CPU under perf). The pool
// keeps a few large buffers per loop instead: bounded memory per loop, none
// per idle connection.
//
// Thread-safety: none; the loop's thread only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

namespace tulip::detail {

class SendBufferPool {
 public:
  /// The send memory a transport keeps for itself between sends.
  static constexpr std::size_t kKeptPerTransport = 64 * 1024;
  /// The size of the buffers the pool hands out (one send's largest).
  static constexpr std::size_t kBlockSize = 256 * 1024;
  /// How many free buffers the pool keeps (2 MiB per loop at most).
  static constexpr std::size_t kMaxKept = 8;

  SendBufferPool() { spare_.reserve(kMaxKept); }
  SendBufferPool(const SendBufferPool&) = delete;
  SendBufferPool& operator=(const SendBufferPool&) = delete;

  /// Makes `target` able to hold `size` bytes without reallocating, keeping
  /// its contents. Past a transport's own memory it takes a pooled buffer (or
  /// a new one of kBlockSize), not a doubling series of reallocations.
  void reserve(std::string& target, std::size_t size) {
    if (size <= target.capacity()) return;
    if (size <= kKeptPerTransport) {
      target.reserve(std::max(size, std::min(2 * target.capacity(), kKeptPerTransport)));
      return;
    }
    if (size <= kBlockSize && !spare_.empty()) {
      std::string block = std::move(spare_.back());
      spare_.pop_back();
      block.assign(target);
      target.swap(block);
      return;
    }
    target.reserve(std::max(size, kBlockSize));
  }

  /// Takes back `target`'s memory if it is more than a transport keeps;
  /// `target` is then empty.
  void recycle(std::string& target) noexcept {
    target.clear();
    if (target.capacity() <= kKeptPerTransport) return;
    if (target.capacity() >= kBlockSize && spare_.size() < kMaxKept) {
      spare_.push_back(std::move(target));  // no allocation: reserved
      target = std::string();
    } else {
      std::string().swap(target);
    }
  }

  /// The free buffers held (for tests).
  std::size_t kept() const noexcept { return spare_.size(); }

 private:
  std::vector<std::string> spare_;
};

}  // namespace tulip::detail
