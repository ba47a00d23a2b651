// WriteBuffer: the bytes a transport accepted and the kernel has not taken yet.
//
// A queue of chunks: small writes are appended into the last chunk (so a
// stream of tiny writes does not become a stream of tiny allocations), large
// ones keep their own chunk, and a moved-in std::string is kept as is. The
// front chunk is consumed through an offset, so a partial send costs no copy.
// The chunks sit in a vector consumed from a moving head rather than in a
// std::deque: an empty vector allocates nothing, while libstdc++'s deque
// allocates over half a kilobyte up front, for every idle connection.
//
// Thread-safety: loop thread only.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "tulip/export.hpp"

namespace tulip::detail {

// Exported from a shared libtulip because the separately linked tulip::testing
// (src/testing/) reuses it: one copy of these rules for every transport.
class TULIP_API WriteBuffer {
 public:
  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }

  void append(std::string_view data);
  void append(std::string&& data);

  /// Fills up to `max` iovecs with the front of the buffer; returns how many.
  std::size_t gather(iovec* buffers, std::size_t max) const;

  /// Drops the first `bytes` bytes (the ones the kernel took).
  void consume(std::size_t bytes);

  void clear() noexcept;

 private:
  // Writes smaller than this are coalesced into the last chunk.
  static constexpr std::size_t kCoalesceLimit = 16 * 1024;

  void pop_front_chunk();

  std::vector<std::string> chunks_;  // chunks_[head_] is the front chunk
  std::size_t head_ = 0;
  std::size_t front_offset_ = 0;  // bytes of the front chunk already consumed
  std::size_t size_ = 0;
};

}  // namespace tulip::detail
