#include "tulip/log.hpp"

#include <unistd.h>

#include <string>
#include <utility>

namespace tulip {
namespace {

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "log";
}

void write_to_stderr(LogLevel level, std::string_view message) {
  std::string line = "tulip ";
  line += level_name(level);
  line += ": ";
  line += message;
  line += '\n';
  // One write keeps the line whole even when several threads log at once.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

LogSink& sink() {
  static LogSink current;
  return current;
}

LogLevel& minimum_level() {
  static LogLevel minimum = LogLevel::kInfo;
  return minimum;
}

}  // namespace

LogSink set_log_sink(LogSink new_sink) { return std::exchange(sink(), std::move(new_sink)); }

LogLevel set_log_level(LogLevel minimum) { return std::exchange(minimum_level(), minimum); }

bool log_enabled(LogLevel level) noexcept {
  return static_cast<int>(level) >= static_cast<int>(minimum_level());
}

void log(LogLevel level, std::string_view message) {
  if (!log_enabled(level)) return;
  const LogSink& current = sink();
  if (current) {
    current(level, message);
  } else {
    write_to_stderr(level, message);
  }
}

}  // namespace tulip
