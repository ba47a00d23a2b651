// What the loop-driving fuzzers (transport_fuzzer.cpp, tls_fuzzer.cpp) share:
// how an input is read as a script, how a broken invariant is reported, and
// the byte streams both ends send, whose every byte says where it belongs.
// See docs/fuzzing.md.
#pragma once

#include <algorithm>
#include <cerrno>  // program_invocation_short_name
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace fuzz {

/// The fuzzer's input, read front to back; past its end every byte reads as 0.
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool done() const { return offset_ >= size_; }
  std::uint8_t byte() { return offset_ < size_ ? data_[offset_++] : 0; }
  /// Up to `count` raw bytes of the input itself.
  std::string_view bytes(std::size_t count) {
    count = std::min(count, size_ - std::min(offset_, size_));
    std::string_view taken(reinterpret_cast<const char*>(data_) + offset_, count);
    offset_ += count;
    return taken;
  }
  /// A size from one byte: mostly small (1..192), sometimes 1..64 KiB.
  std::size_t chunk() {
    std::uint8_t b = byte();
    return b < 0xc0 ? std::size_t{b} + 1 : std::size_t(b - 0xbf) * 1024;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t offset_ = 0;
};

/// Prints "<program>: invariant broken: <what>[: <detail>]" and aborts, which
/// libFuzzer reports as a crash with the input that caused it.
[[noreturn]] inline void fail(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "%s: invariant broken: %s%s%s\n", program_invocation_short_name, what,
               detail.empty() ? "" : ": ", detail.c_str());
  std::abort();
}

inline void check(bool condition, const char* what) {
  if (!condition) fail(what);
}

/// `detail` is a callable returning the explanation; it only runs on failure,
/// so that the checks on every delivered chunk stay cheap.
template <class Detail>
void check(bool condition, const char* what, Detail&& detail) {
  if (!condition) fail(what, detail());
}

/// The byte at `offset` of a stream: differs at every offset of a 256-byte
/// window and shifts with the stream, so loss, duplication and reordering show.
/// `salt` tells the two directions apart.
inline char stream_byte(std::size_t offset, unsigned salt) {
  return static_cast<char>((offset * 131 + (offset >> 8) * 7 + salt) & 0xff);
}

/// `size` bytes of the stream from `offset`. Not instrumented for coverage: it
/// is the harnesses' hottest loop and its branches say nothing about the library.
__attribute__((no_sanitize("coverage"))) inline std::string stream_bytes(std::size_t offset,
                                                                         std::size_t size,
                                                                         unsigned salt) {
  std::string data(size, '\0');
  for (std::size_t i = 0; i < size; ++i) data[i] = stream_byte(offset + i, salt);
  return data;
}

/// True if `prefix` is where `of` begins.
inline bool is_prefix(std::string_view prefix, std::string_view of) {
  return prefix.size() <= of.size() && of.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace fuzz
