// Saturating conversion of std::chrono durations to nanoseconds. Not API.
//
// duration_cast<nanoseconds> overflows (undefined behaviour) for durations such
// as seconds::max(); timers clamp instead, as call_later(double) does.
//
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <type_traits>

namespace tulip::detail {

template <class Rep, class Period>
std::int64_t saturating_nanoseconds(std::chrono::duration<Rep, Period> d) {
  using Nanos = std::chrono::duration<long double, std::nano>;
  long double ns = std::chrono::duration_cast<Nanos>(d).count();
  if constexpr (std::is_floating_point_v<Rep>) {
    if (std::isnan(ns)) throw std::invalid_argument("timer delay is NaN");
  }
  // Bounds a little inside int64's range, so that adding the current time
  // cannot overflow either (the caller saturates that sum too).
  constexpr long double kLimit = 9.2e18L;
  if (ns >= kLimit) return std::numeric_limits<std::int64_t>::max();
  if (ns <= -kLimit) return std::numeric_limits<std::int64_t>::min() / 2;
  if constexpr (std::is_integral_v<Rep> && std::ratio_less_equal_v<std::nano, Period>) {
    // Whole units of a nanosecond or coarser convert exactly.
    return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  } else {
    return static_cast<std::int64_t>(std::llround(ns));
  }
}

}  // namespace tulip::detail
