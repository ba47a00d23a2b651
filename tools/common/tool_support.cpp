#include "tool_support.hpp"

#include "tulip/loop_options.hpp"
#include "tulip/tls.hpp"
#include "tulip/transport.hpp"

#include <pthread.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <utility>

namespace tulip::tools {

std::string python_bytes_repr(std::string_view data, std::size_t max_shown) {
  std::string_view shown = data.substr(0, std::min(data.size(), max_shown));
  // Python picks double quotes only when the data has a ' and no ".
  bool has_single = shown.find('\'') != std::string_view::npos;
  bool has_double = shown.find('"') != std::string_view::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  static const char kHex[] = "0123456789abcdef";
  std::string out = "b";
  out += quote;
  for (char c : shown) {
    auto byte = static_cast<unsigned char>(c);
    if (c == quote || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (byte < 0x20 || byte >= 0x7f) {
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    } else {
      out += c;
    }
  }
  out += quote;
  if (shown.size() < data.size()) out += "... (" + std::to_string(data.size()) + " bytes)";
  return out;
}

void log_line(std::string_view message) {
  // Python's logging prints threading.get_ident(), which is pthread_self().
  std::string line =
      "[MainThread (" + std::to_string(static_cast<unsigned long>(::pthread_self())) + ")] ";
  line += message;
  line += '\n';
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

void error_line(std::string_view program, std::string_view message) {
  std::string line(program);
  line += ": ";
  line += message;
  line += '\n';
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0 || digits > 18) return std::nullopt;
  std::uint64_t value = std::strtoull(std::string(text.substr(0, digits)).c_str(), nullptr, 10);
  std::string_view unit = text.substr(digits);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  std::uint64_t scale = 1;
  if (unit.empty() || unit == "B") {
    scale = 1;
  } else if (unit == "K" || unit == "KiB" || unit == "k") {
    scale = 1ull << 10;
  } else if (unit == "M" || unit == "MiB") {
    scale = 1ull << 20;
  } else if (unit == "G" || unit == "GiB") {
    scale = 1ull << 30;
  } else {
    return std::nullopt;
  }
  if (value > (~0ull) / scale) return std::nullopt;
  return value * scale;
}

std::optional<std::uint16_t> parse_port(std::string_view text, std::uint16_t minimum) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  for (char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  long value = std::strtol(std::string(text).c_str(), nullptr, 10);
  if (value < minimum || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

std::optional<double> parse_seconds(std::string_view text) {
  std::string copy(text);
  char* end = nullptr;
  double value = std::strtod(copy.c_str(), &end);
  if (copy.empty() || end != copy.c_str() + copy.size() || !std::isfinite(value) || value <= 0) {
    return std::nullopt;
  }
  return value;
}

std::optional<long> parse_count(std::string_view text) {
  if (text.empty() || text.size() > 9) return std::nullopt;
  for (char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  return std::strtol(std::string(text).c_str(), nullptr, 10);
}

void fill_pattern(char* out, std::uint64_t offset, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) out[i] = pattern_byte(offset + i);
}

std::string ArgumentCursor::next() {
  std::string argument = argv_[index_++];
  inline_value_.reset();
  if (argument.rfind("--", 0) == 0) {
    if (auto equals = argument.find('='); equals != std::string::npos) {
      inline_value_ = argument.substr(equals + 1);
      argument.resize(equals);
    }
  }
  return argument;
}

std::optional<std::string> ArgumentCursor::value() {
  if (inline_value_) return std::exchange(inline_value_, std::nullopt);
  if (index_ >= argc_) return std::nullopt;
  return std::string(argv_[index_++]);
}

std::optional<std::string> tls_summary(const Transport& transport) {
  auto cipher = transport.get_extra_info<CipherInfo>("cipher");
  if (!cipher) return std::nullopt;
  std::string summary = cipher->protocol + " " + cipher->name;
  if (auto alpn = transport.get_extra_info<std::string>("selected_alpn_protocol")) {
    summary += " ALPN " + *alpn;
  }
  return summary;
}

std::optional<std::string> select_backend(std::string_view name) {
  BackendKind kind;
  try {
    kind = parse_backend_kind(name);
  } catch (const std::invalid_argument&) {
    return "--backend must be auto, epoll or io_uring, not '" + std::string(name) + "'";
  }
  if (kind == BackendKind::kIoUring && !io_uring_available()) {
    return std::string(
        "--backend io_uring: io_uring is unavailable here (this build lacks it, or the kernel "
        "refuses it: the io_uring_disabled sysctl, seccomp or a container)");
  }
  ::setenv("TULIP_BACKEND", std::string(name).c_str(), 1);
  return std::nullopt;
}

}  // namespace tulip::tools
