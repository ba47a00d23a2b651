// RESP, the Redis serialization protocol (version 2): values, an incremental
// parser and the encoding of commands. Part of the Redis client example.
//
// The parser is fed whatever the transport delivers (a reply may arrive in any
// number of pieces, several replies in one piece) and hands out complete
// values. Anything that is not RESP throws resp::ProtocolError with a one-line
// reason: a client must never guess what a malformed reply meant.
//
// Thread-safety: plain values; one parser per connection.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace resp {

/// One RESP value: "+OK", "-ERR ...", ":42", "$3\r\nfoo" (or the null "$-1"), "*2 ...".
struct Value {
  enum class Type { kSimpleString, kError, kInteger, kBulkString, kNull, kArray };
  Type type = Type::kNull;
  std::string text;             // simple string, error message or bulk string
  std::int64_t integer = 0;     // kInteger
  std::vector<Value> elements;  // kArray
};

/// The bytes received are not RESP.
class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Encodes a command as Redis expects it: an array of bulk strings.
inline std::string encode_command(std::span<const std::string_view> arguments) {
  std::string out = "*" + std::to_string(arguments.size()) + "\r\n";
  for (std::string_view argument : arguments) {
    out += "$" + std::to_string(argument.size()) + "\r\n";
    out.append(argument);
    out += "\r\n";
  }
  return out;
}

class Parser {
 public:
  // Limits that keep a hostile or broken server from making us allocate without bound.
  static constexpr std::int64_t kMaxBulkLength = 512 * 1024 * 1024;  // Redis's own limit
  static constexpr std::int64_t kMaxArrayLength = 1024 * 1024;
  static constexpr std::size_t kMaxLineLength = 64 * 1024;
  static constexpr int kMaxDepth = 32;

  /// Appends bytes received from the server.
  void feed(std::string_view bytes) { buffer_.append(bytes); }

  /// The next complete value, or nullopt if more bytes are needed.
  /// Throws ProtocolError if the bytes are not RESP.
  std::optional<Value> next() {
    for (;;) {
      // One item (a scalar or an array's header) per turn. The arrays still
      // open are kept in open_, so that a long array arriving in many pieces
      // is parsed once, not again from its start with every piece.
      if (open_.size() > static_cast<std::size_t>(kMaxDepth)) {
        throw ProtocolError("RESP: arrays nested too deeply");
      }
      std::size_t position = consumed_;
      Value value;
      std::int64_t count = 0;
      if (!parse(position, value, count)) {
        compact();
        return std::nullopt;
      }
      consumed_ = position;
      if (count > 0) {  // an array's header: its elements come next
        open_.push_back({std::move(value), count});
        continue;
      }
      // A complete value: it completes the arrays it is the last element of.
      bool complete = true;
      while (!open_.empty()) {
        OpenArray& array = open_.back();
        array.value.elements.push_back(std::move(value));
        if (static_cast<std::int64_t>(array.value.elements.size()) < array.count) {
          complete = false;
          break;
        }
        value = std::move(array.value);
        open_.pop_back();
      }
      if (complete) return value;
    }
  }

  /// True if part of a value has been received (a reply cut short).
  bool partial() const { return !open_.empty() || buffer_.size() > consumed_; }

 private:
  struct OpenArray {
    Value value;         // the elements received so far
    std::int64_t count;  // how many it has
  };

  // Parses one item at `position`: a scalar, or an array's header (then
  // `count` is its length, above 0). False if it is not complete yet.
  bool parse(std::size_t& position, Value& out, std::int64_t& count) {
    std::optional<std::string_view> line = read_line(position);
    if (!line) return false;
    if (line->empty()) throw ProtocolError("RESP: empty line where a value was expected");
    char kind = line->front();
    std::string_view rest = line->substr(1);
    switch (kind) {
      case '+':
        out.type = Value::Type::kSimpleString;
        out.text = rest;
        return true;
      case '-':
        out.type = Value::Type::kError;
        out.text = rest;
        return true;
      case ':':
        out.type = Value::Type::kInteger;
        out.integer = parse_integer(rest, "integer");
        return true;
      case '$': {
        std::int64_t length = parse_integer(rest, "bulk length");
        if (length == -1) {
          out.type = Value::Type::kNull;
          return true;
        }
        if (length < 0 || length > kMaxBulkLength) {
          throw ProtocolError("RESP: bulk length " + std::to_string(length) + " out of range");
        }
        auto size = static_cast<std::size_t>(length);
        if (buffer_.size() - position < size + 2) return false;
        if (buffer_.compare(position + size, 2, "\r\n") != 0) {
          throw ProtocolError("RESP: bulk string not followed by CRLF");
        }
        out.type = Value::Type::kBulkString;
        out.text = buffer_.substr(position, size);
        position += size + 2;
        return true;
      }
      case '*': {
        count = parse_integer(rest, "array length");
        if (count == -1) {
          out.type = Value::Type::kNull;
          count = 0;
          return true;
        }
        if (count < 0 || count > kMaxArrayLength) {
          throw ProtocolError("RESP: array length " + std::to_string(count) + " out of range");
        }
        out.type = Value::Type::kArray;
        return true;
      }
      default:
        throw ProtocolError("RESP: unknown type byte 0x" + hex(kind));
    }
  }

  // The line at `position` without its CRLF (and moves past it); nullopt if incomplete.
  std::optional<std::string_view> read_line(std::size_t& position) {
    std::size_t end = buffer_.find("\r\n", position);
    if (end == std::string::npos) {
      if (buffer_.size() - position > kMaxLineLength) throw ProtocolError("RESP: line too long");
      return std::nullopt;
    }
    std::string_view line(buffer_.data() + position, end - position);
    position = end + 2;
    return line;
  }

  static std::int64_t parse_integer(std::string_view text, const char* what) {
    std::int64_t value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
      throw ProtocolError(std::string("RESP: malformed ") + what + " '" +
                          std::string(text.substr(0, 32)) + "'");
    }
    return value;
  }

  static std::string hex(char c) {
    const char* digits = "0123456789abcdef";
    auto byte = static_cast<unsigned char>(c);
    return {digits[byte >> 4], digits[byte & 15]};
  }

  // Drops what was consumed, so a long pipeline does not keep every reply.
  void compact() {
    if (consumed_ == 0) return;
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }

  std::string buffer_;
  std::size_t consumed_ = 0;     // bytes of buffer_ already parsed
  std::vector<OpenArray> open_;  // the arrays being received, outermost first
};

}  // namespace resp
