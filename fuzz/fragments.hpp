// How the parser fuzzers (resp_fuzzer.cpp, http_fuzzer.cpp) cut one input
// into a byte stream and the fragments it arrives in. See docs/fuzzing.md.
//
//   byte 0        n = byte & 7: how many fragment-size bytes follow (0 to 7)
//   bytes 1..n    fragment sizes, 1 + (byte & 63) bytes each, used in turn and
//                 cyclically until the stream is used up ('@' is 1, 'A' 2 ...)
//   the rest      the stream, as a server (or client) would send it
//
// With n = 0 the stream arrives in one piece. The layout keeps seeds
// readable: "0+OK\r\n" is "+OK\r\n" in one piece, "1@+OK\r\n" the same one
// byte at a time.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace fuzz {

struct Script {
  std::string_view stream;
  std::vector<std::size_t> fragments;  // sizes, summing to stream.size()
};

inline Script decode(const std::uint8_t* data, std::size_t size) {
  Script script;
  if (size == 0) return script;
  std::size_t count = data[0] & 7u;
  if (count > size - 1) count = size - 1;
  std::vector<std::size_t> sizes;
  for (std::size_t i = 0; i < count; ++i) sizes.push_back(1 + (data[1 + i] & 63u));
  script.stream =
      std::string_view(reinterpret_cast<const char*>(data) + 1 + count, size - 1 - count);
  if (sizes.empty()) sizes.push_back(script.stream.size());
  for (std::size_t offset = 0, i = 0; offset < script.stream.size(); ++i) {
    std::size_t piece = std::min(sizes[i % sizes.size()], script.stream.size() - offset);
    script.fragments.push_back(piece);
    offset += piece;
  }
  return script;
}

}  // namespace fuzz
