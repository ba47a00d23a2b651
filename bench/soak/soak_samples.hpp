// The soak's samples and the two ways it reads them: the means of the first
// and last thirds (the pass/fail judgement), and a least-squares slope (how
// fast something grows, to put a figure on "nothing grows"). Plain functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tulip::soak {

/// One line of the soak's output.
struct Sample {
  double at = 0;  // seconds since the steady phase began
  long rss_kib = 0;
  long fds = 0;
  long server_rss_kib = 0;
  long server_fds = 0;
  std::size_t timers = 0;
  std::uint64_t messages = 0;
  std::uint64_t churned = 0;  // short connections completed
};

struct Thirds {
  double first = 0;
  double last = 0;
};

/// The mean of `field` over the first and over the last third of `samples`
/// (at least three samples).
template <class Field>
Thirds thirds(const std::vector<Sample>& samples, Field field) {
  std::size_t third = samples.size() / 3;
  Thirds t;
  if (third == 0) return t;
  for (std::size_t i = 0; i < third; ++i) t.first += static_cast<double>(field(samples[i]));
  for (std::size_t i = samples.size() - third; i < samples.size(); ++i) {
    t.last += static_cast<double>(field(samples[i]));
  }
  t.first /= static_cast<double>(third);
  t.last /= static_cast<double>(third);
  return t;
}

/// The least-squares slope of `field` against time (units per second) over
/// the samples from index `from` on; 0 with fewer than two.
template <class Field>
double slope(const std::vector<Sample>& samples, Field field, std::size_t from = 0) {
  if (samples.size() < from + 2) return 0;
  double n = static_cast<double>(samples.size() - from);
  double mean_t = 0, mean_y = 0;
  for (std::size_t i = from; i < samples.size(); ++i) {
    mean_t += samples[i].at;
    mean_y += static_cast<double>(field(samples[i]));
  }
  mean_t /= n;
  mean_y /= n;
  double covariance = 0, variance = 0;
  for (std::size_t i = from; i < samples.size(); ++i) {
    double dt = samples[i].at - mean_t;
    covariance += dt * (static_cast<double>(field(samples[i])) - mean_y);
    variance += dt * dt;
  }
  return variance > 0 ? covariance / variance : 0;
}

}  // namespace tulip::soak
