#include "flow_control.hpp"

#include <stdexcept>
#include <string>

namespace tulip::detail {

void WriteFlowControl::set_limits(std::optional<std::size_t> high, std::optional<std::size_t> low) {
  std::size_t new_high;
  std::size_t new_low;
  if (!high && !low) {
    new_high = kDefaultHigh;
    new_low = kDefaultHigh / 4;
  } else if (!low) {
    new_high = *high;
    new_low = *high / 4;
  } else if (!high) {
    new_low = *low;
    new_high = *low * 4;
  } else {
    new_high = *high;
    new_low = *low;
  }
  if (new_low > new_high) {
    throw std::invalid_argument("high (" + std::to_string(new_high) + ") must be >= low (" +
                                std::to_string(new_low) + ") must be >= 0");
  }
  high_ = new_high;
  low_ = new_low;
}

}  // namespace tulip::detail
