// The transport fuzzer's script (transport_fuzzer.cpp): the bounds of one
// input, how its first two bytes set the protocol's behaviour, and the events
// the rest of it decodes to. See docs/fuzzing.md.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "harness.hpp"

namespace fuzz {

// Bounds that keep every input small and fast.
constexpr std::size_t kMaxEvents = 256;
constexpr std::size_t kMaxPeerBytes = 128 * 1024;   // the peer sends at most this much per input
constexpr std::size_t kMaxWriteBytes = 128 * 1024;  // the protocol writes at most this much

// The first byte: how the protocol behaves for the whole input.
struct Behaviour {
  bool buffered = false;          // a BufferedProtocol instead of a Protocol
  bool keep_open_on_eof = false;  // eof_received returns true
  bool echo = false;              // data_received writes back what it got
  bool pause_on_data = false;     // data_received pauses reading after each chunk
  bool small_limits = false;      // write-buffer limits from the second byte
  bool small_buffers = false;     // both sockets' kernel buffers at their minimum
  bool close_on_data = false;     // data_received calls close() once it has the first chunk
  bool abort_on_data = false;     // data_received calls abort() once it has the first chunk
  std::size_t parameter = 0;      // the second byte

  static Behaviour decode(Input& input) {
    std::uint8_t flags = input.byte();
    Behaviour b;
    b.buffered = flags & 0x01;
    b.keep_open_on_eof = flags & 0x02;
    b.echo = flags & 0x04;
    b.pause_on_data = flags & 0x08;
    b.small_limits = flags & 0x10;
    b.small_buffers = flags & 0x20;
    b.close_on_data = flags & 0x40;
    b.abort_on_data = flags & 0x80;
    b.parameter = input.byte();
    return b;
  }
  // BufferedProtocol: the size of the buffer get_buffer returns (1..4096).
  std::size_t buffer_size() const {
    return parameter < 128 ? parameter + 1 : (parameter - 127) * 32;
  }
  // What the peer may send: a BufferedProtocol with a tiny buffer takes one
  // loop iteration per buffer, so its input is bounded to 2048 buffers' worth.
  std::size_t peer_limit() const {
    return buffered ? std::min(kMaxPeerBytes, buffer_size() * 2048) : kMaxPeerBytes;
  }
  // The high-water mark used when small_limits is set (0..16320).
  std::size_t high_water() const { return parameter * 64; }
};

enum class Op : std::uint8_t {
  kPeerWrite,
  kPeerShutdown,
  kPeerReset,
  kPeerRead,
  kPauseReading,
  kResumeReading,
  kWrite,
  kWriteEof,
  kClose,
  kAbort,
  kRunOnce,
  kCount,
};

}  // namespace fuzz
