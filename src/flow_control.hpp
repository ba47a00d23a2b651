// WriteFlowControl: asyncio's high/low water marks, written once for every transport.
//
// The transport asks after each change of its buffer size whether to pause or
// resume its protocol; this class only decides, the transport calls the
// protocol (so exceptions are handled in one place).
//
// Rules (asyncio's FlowControlMixin): pause when the buffer goes strictly over
// `high`; resume when it drains to `low` or below. Defaults 64 KiB / 16 KiB.
//
// Thread-safety: loop thread only.
#pragma once

#include <cstddef>
#include <optional>
#include <utility>

#include "tulip/export.hpp"

namespace tulip::detail {

// Exported from a shared libtulip because the separately linked tulip::testing
// (src/testing/) reuses it: one copy of these rules for every transport.
class TULIP_API WriteFlowControl {
 public:
  static constexpr std::size_t kDefaultHigh = 64 * 1024;

  /// Validates and sets the marks (see Transport::set_write_buffer_limits).
  void set_limits(std::optional<std::size_t> high, std::optional<std::size_t> low);
  std::pair<std::size_t, std::size_t> limits() const noexcept { return {low_, high_}; }

  /// True if the protocol must be paused now (and records that it is).
  bool should_pause(std::size_t buffered) noexcept {
    if (paused_ || buffered <= high_) return false;
    paused_ = true;
    return true;
  }
  /// True if the protocol must be resumed now (and records that it is).
  bool should_resume(std::size_t buffered) noexcept {
    if (!paused_ || buffered > low_) return false;
    paused_ = false;
    return true;
  }
  bool paused() const noexcept { return paused_; }

 private:
  std::size_t high_ = kDefaultHigh;
  std::size_t low_ = kDefaultHigh / 4;
  bool paused_ = false;
};

}  // namespace tulip::detail
