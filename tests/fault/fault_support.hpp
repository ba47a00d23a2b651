// What the fault tests share: bounded loop runs, captured diagnostics,
// a long verifiable byte stream, and a buffered protocol that records.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "resolver.hpp"
#include "support/loopback.hpp"

namespace tulip::testing {

/// True for the errors a connection reset by its peer is reported with: the
/// read side sees ECONNRESET, a write racing with the reset may see EPIPE.
inline bool is_reset_error(std::error_code error) {
  return error == std::errc::connection_reset || error == std::errc::broken_pipe;
}

/// Everything the loop's exception handler receives. The borrowed pointers of
/// each context are kept only to compare them with known objects.
/// Uninstalls itself when destroyed, since the loop may outlive it.
struct ExceptionLog {
  explicit ExceptionLog(EventLoop& loop) : loop_(loop) {
    loop.set_exception_handler(
        [this](EventLoop&, const ExceptionContext& context) { reports.push_back(context); });
  }
  ~ExceptionLog() { loop_.set_exception_handler(nullptr); }
  ExceptionLog(const ExceptionLog&) = delete;
  ExceptionLog& operator=(const ExceptionLog&) = delete;

  std::vector<ExceptionContext> reports;

 private:
  EventLoop& loop_;
};

/// Captures tulip's log lines for the lifetime of the object.
class CapturedLog {
 public:
  CapturedLog() {
    previous_ = set_log_sink([this](LogLevel level, std::string_view text) {
      lines.emplace_back(level, std::string(text));
    });
  }
  ~CapturedLog() { set_log_sink(std::move(previous_)); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;

  std::size_t count(LogLevel level) const {
    return static_cast<std::size_t>(std::count_if(
        lines.begin(), lines.end(), [level](const auto& line) { return line.first == level; }));
  }

  std::vector<std::pair<LogLevel, std::string>> lines;

 private:
  LogSink previous_;
};

/// An endless byte stream with a long period: byte i is pattern(period)[i % period].
/// Any window of up to `period` bytes is one contiguous view, so a writer can send
/// hundreds of MiB without holding them and a reader can check them with memcmp.
class PeriodicStream {
 public:
  explicit PeriodicStream(std::size_t period) : period_(period) {
    std::string once = pattern(period, 11);
    doubled_ = once + once;
  }

  std::size_t period() const { return period_; }

  /// The `length` bytes at `offset` (length <= period).
  std::string_view window(std::uint64_t offset, std::size_t length) const {
    return std::string_view(doubled_.data() + offset % period_, length);
  }

  /// True if `bytes` are exactly the stream's bytes at `offset`.
  bool matches(std::uint64_t offset, std::string_view bytes) const {
    while (!bytes.empty()) {
      std::size_t n = std::min(bytes.size(), period_);
      if (std::memcmp(window(offset, n).data(), bytes.data(), n) != 0) return false;
      offset += n;
      bytes.remove_prefix(n);
    }
    return true;
  }

 private:
  std::size_t period_;
  std::string doubled_;
};

/// A BufferedProtocol that records like RecordingProtocol and checks the call
/// order: buffer_updated only after get_buffer, nothing after connection_lost.
// A name lookup that never answers until the test lets it (a DNS server that
// does not reply: getaddrinfo then blocks for tens of seconds). Install it with
// Resolver::set_lookup_for_testing(stuck.lookup()). Released when destroyed;
// the worker threads share its state, so they may finish after it is gone.
class StuckLookup {
 public:
  StuckLookup() : state_(std::make_shared<State>()) {}
  ~StuckLookup() { release(); }
  StuckLookup(const StuckLookup&) = delete;
  StuckLookup& operator=(const StuckLookup&) = delete;

  detail::Resolver::Lookup lookup() {
    return [state = state_](const detail::ResolveQuestion&) {
      std::unique_lock lock(state->mutex);
      ++state->asked;
      state->changed.notify_all();
      state->changed.wait(lock, [&] { return state->released; });
      detail::ResolveResult result;
      result.error = "answered too late";
      return result;
    };
  }
  /// Waits until `count` lookups are stuck.
  void wait_until_asked(int count) {
    std::unique_lock lock(state_->mutex);
    state_->changed.wait(lock, [&] { return state_->asked >= count; });
  }
  void release() {
    std::lock_guard lock(state_->mutex);
    state_->released = true;
    state_->changed.notify_all();
  }

 private:
  struct State {
    std::mutex mutex;
    std::condition_variable changed;
    bool released = false;
    int asked = 0;
  };
  std::shared_ptr<State> state_;
};

class RecordingBufferedProtocol : public BufferedProtocol {
 public:
  std::span<std::byte> get_buffer(std::size_t size_hint) override {
    EXPECT_EQ(made, 1) << "get_buffer before connection_made";
    EXPECT_EQ(lost, 0) << "get_buffer after connection_lost";
    EXPECT_FALSE(eof) << "get_buffer after eof_received";
    EXPECT_GT(size_hint, 0u);
    buffer_out = true;
    return std::span<std::byte>(buffer, sizeof(buffer));
  }
  void buffer_updated(std::size_t bytes) override {
    EXPECT_TRUE(buffer_out) << "buffer_updated without get_buffer";
    EXPECT_EQ(lost, 0) << "buffer_updated after connection_lost";
    EXPECT_GT(bytes, 0u);
    EXPECT_LE(bytes, sizeof(buffer));
    buffer_out = false;
    received.append(reinterpret_cast<const char*>(buffer), bytes);
    ++updates;
  }
  void connection_made(Transport& t) override {
    EXPECT_EQ(made, 0) << "connection_made twice";
    ++made;
    transport = &t;
  }
  bool eof_received() override {
    EXPECT_FALSE(eof) << "eof_received twice";
    EXPECT_EQ(lost, 0);
    eof = true;
    return false;
  }
  void connection_lost(std::error_code error) override {
    EXPECT_EQ(lost, 0) << "connection_lost twice";
    ++lost;
    lost_error = error;
    transport = nullptr;
  }

  std::byte buffer[4096];
  bool buffer_out = false;
  Transport* transport = nullptr;
  int made = 0;
  int lost = 0;
  bool eof = false;
  std::size_t updates = 0;
  std::error_code lost_error;
  std::string received;
};

}  // namespace tulip::testing
