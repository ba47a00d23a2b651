// What tulip-echo-client and tulip-echo-server share: the seed's log format,
// Python-style byte literals, argument parsing and the test payload pattern.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tulip {
class Transport;
}

namespace tulip::tools {

/// Exit codes of both tools (documented in docs/tools.md).
enum ExitCode : int {
  kExitOk = 0,
  kExitConnectionError = 1,  // refused, reset, unresolvable, bind failure
  kExitUsage = 2,            // bad arguments
  kExitVerifyMismatch = 3,   // --verify: the echo differs from what was sent
  kExitTimeout = 4,          // --timeout expired
};

/// Python's repr() of a bytes object: b'Hello World!', b'\x00\xff', b"it's".
/// Longer data shows its first `max_shown` bytes and the length:
/// b'abc...'... (65536 bytes).
std::string python_bytes_repr(std::string_view data, std::size_t max_shown = 64);

/// One log line on stderr, in the seed's logging format:
/// "[MainThread (140112954559360)] message". Written with one write(2).
void log_line(std::string_view message);

/// One error line on stderr: "<program>: <message>".
void error_line(std::string_view program, std::string_view message);

/// "1234", "64K", "64KiB", "64 MiB", "1G": a byte count; nullopt if malformed.
std::optional<std::uint64_t> parse_size(std::string_view text);
/// A TCP port in [minimum, 65535]; nullopt if malformed or out of range.
std::optional<std::uint16_t> parse_port(std::string_view text, std::uint16_t minimum);
/// A positive number of seconds ("2", "0.5"); nullopt otherwise.
std::optional<double> parse_seconds(std::string_view text);
/// A non-negative integer; nullopt otherwise.
std::optional<long> parse_count(std::string_view text);

// --backend NAME (auto, epoll, io_uring): every loop the tool makes afterwards
// runs on it (through TULIP_BACKEND, which loops made with `auto` read).
// Returns an error message for an unknown name, or io_uring where it is
// unavailable; nothing on success.
std::optional<std::string> select_backend(std::string_view name);

/// What a TLS transport negotiated, for the log: "TLSv1.3 TLS_AES_256_GCM_SHA384"
/// (with " ALPN h2" when ALPN chose a protocol); nullopt for a plain transport.
std::optional<std::string> tls_summary(const Transport& transport);

/// Byte `index` of the test payload: every value 0..255 appears in each 256-byte
/// run, and the order shifts every run, so misplaced or dropped blocks show.
inline char pattern_byte(std::uint64_t index) {
  return static_cast<char>((index + (index >> 8) * 7 + (index >> 16) * 13) & 0xff);
}

/// Fills `out` with `count` pattern bytes starting at payload offset `offset`.
void fill_pattern(char* out, std::uint64_t offset, std::size_t count);

/// Parses "--name value" and "--name=value" forms while walking argv.
class ArgumentCursor {
 public:
  ArgumentCursor(int argc, char** argv) : argc_(argc), argv_(argv) {}
  bool done() const { return index_ >= argc_; }
  /// The next argument's option name ("--port" of "--port=8"); advances.
  std::string next();
  /// The value of the option just read: the "=value" part or the next argument.
  std::optional<std::string> value();
  /// True if the option just read came as "--name=value": a flag must not.
  bool has_inline_value() const { return inline_value_.has_value(); }

 private:
  int argc_;
  char** argv_;
  int index_ = 1;
  std::optional<std::string> inline_value_;
};

}  // namespace tulip::tools
