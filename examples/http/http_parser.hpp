// HTTP/1.1 message parsing for the HTTP examples: an incremental response
// parser (Content-Length, chunked and read-until-close bodies) for the client
// and an incremental request parser (heads, Content-Length bodies) for the
// server.
//
// Both are fed whatever the transport delivers and hand out complete
// messages. Input that is not HTTP/1.x throws http::ParseError with a one-line
// reason; every length is checked against a limit first, so a hostile peer
// cannot make the parser allocate without bound or loop forever.
//
// Thread-safety: plain values; one parser per connection.
#pragma once

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace http {

/// The bytes received are not an HTTP/1.x message.
class ParseError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr std::size_t kMaxHeadSize = 64 * 1024;
inline constexpr std::uint64_t kMaxBodySize = 1ull << 30;
inline constexpr std::uint64_t kMaxRequestBodySize = 1 << 20;

namespace detail {

// ASCII case-insensitive comparison, as header names and tokens are compared.
inline bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

}  // namespace detail

/// Header fields in the order received.
struct Headers {
  std::vector<std::pair<std::string, std::string>> fields;

  /// The value of the first field called `name` (case-insensitive), if any.
  std::optional<std::string_view> get(std::string_view name) const {
    for (const auto& [field, value] : fields) {
      if (detail::iequals(field, name)) return value;
    }
    return std::nullopt;
  }
};

struct Response {
  int status = 0;
  std::string reason;
  Headers headers;
  std::string body;
  bool keep_alive = true;  // false: the server closes the connection after this response
};

struct Request {
  std::string method;
  std::string target;
  std::string version;  // "HTTP/1.1" or "HTTP/1.0"
  Headers headers;
  std::string body;
  bool keep_alive = true;
};

namespace detail {

inline std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Splits a head (without its final empty line) into its first line and fields.
inline std::string_view parse_head(std::string_view head, Headers& headers) {
  std::size_t end = head.find("\r\n");
  std::string_view first = head.substr(0, end);
  while (end != std::string_view::npos) {
    std::size_t start = end + 2;
    end = head.find("\r\n", start);
    std::string_view line = head.substr(start, end == std::string_view::npos ? end : end - start);
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      throw ParseError("HTTP: malformed header line '" + std::string(line.substr(0, 40)) + "'");
    }
    std::string_view name = line.substr(0, colon);
    if (name.find_first_of(" \t") != std::string_view::npos) {
      throw ParseError("HTTP: whitespace in header name '" + std::string(name.substr(0, 40)) + "'");
    }
    headers.fields.emplace_back(name, trim(line.substr(colon + 1)));
  }
  return first;
}

inline std::uint64_t parse_number(std::string_view text, int base, const char* what) {
  std::uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() ||
      value > kMaxBodySize) {
    throw ParseError(std::string("HTTP: bad ") + what + " '" + std::string(text.substr(0, 32)) +
                     "'");
  }
  return value;
}

// The Content-Length of a message, if it has one (a list of equal values is one value).
inline std::optional<std::uint64_t> content_length(const Headers& headers) {
  std::optional<std::uint64_t> length;
  for (const auto& [name, value] : headers.fields) {
    if (!iequals(name, "Content-Length")) continue;
    std::uint64_t parsed = parse_number(value, 10, "Content-Length");
    if (length && *length != parsed) throw ParseError("HTTP: conflicting Content-Length fields");
    length = parsed;
  }
  return length;
}

inline bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    if (iequals(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// HTTP/1.1 keeps the connection unless told "close"; HTTP/1.0 closes unless told "keep-alive".
inline bool keeps_alive(std::string_view version, const Headers& headers) {
  std::string_view connection = headers.get("Connection").value_or("");
  if (version == "HTTP/1.0") return has_token(connection, "keep-alive");
  return !has_token(connection, "close");
}

}  // namespace detail

/// Parses the responses of one connection, in order.
class ResponseParser {
 public:
  void feed(std::string_view bytes) { buffer_.append(bytes); }

  /// The next complete response, or nullopt if more bytes are needed.
  std::optional<Response> next() {
    std::optional<Response> response = parse();
    // Dropping what was parsed once per call that needs more bytes, not once
    // per chunk or response, keeps a body of many small chunks linear.
    if (!response) compact();
    return response;
  }

  /// The connection reached EOF: returns the response whose body ran until the
  /// close, nothing if no response was in progress; throws ParseError if one
  /// was cut short.
  std::optional<Response> finish_at_eof() {
    if (state_ == State::kUntilClose) return finish();
    if (state_ == State::kHead && available() == 0) return std::nullopt;
    throw ParseError("HTTP: the connection closed in the middle of a response");
  }

  /// True while part of a response has been received.
  bool in_progress() const { return state_ != State::kHead || available() != 0; }

 private:
  enum class State { kHead, kFixedBody, kChunkSize, kChunkData, kTrailers, kUntilClose };

  std::optional<Response> parse() {
    for (;;) {
      switch (state_) {
        case State::kHead:
          if (!read_head()) return std::nullopt;
          break;
        case State::kFixedBody:
          if (available() < remaining_) return std::nullopt;
          take(remaining_);
          return finish();
        case State::kChunkSize: {
          std::optional<std::string> line = read_line();
          if (!line) return std::nullopt;
          std::string_view size = detail::trim(std::string_view(*line).substr(0, line->find(';')));
          remaining_ = detail::parse_number(size, 16, "chunk size");
          if (current_.body.size() + remaining_ > kMaxBodySize) {
            throw ParseError("HTTP: chunked body too large");
          }
          state_ = remaining_ == 0 ? State::kTrailers : State::kChunkData;
          break;
        }
        case State::kChunkData:
          if (available() < remaining_ + 2) return std::nullopt;
          take(remaining_);
          if (buffer_.compare(consumed_, 2, "\r\n") != 0) {
            throw ParseError("HTTP: chunk not ended by CRLF");
          }
          consumed_ += 2;
          state_ = State::kChunkSize;
          break;
        case State::kTrailers: {
          std::optional<std::string> line = read_line();
          if (!line) return std::nullopt;
          if (line->empty()) return finish();  // trailer fields are read and ignored
          break;
        }
        case State::kUntilClose:
          take(available());
          if (current_.body.size() > kMaxBodySize) throw ParseError("HTTP: body too large");
          return std::nullopt;
      }
    }
  }

  bool read_head() {
    std::size_t end = buffer_.find("\r\n\r\n", consumed_);
    if (end == std::string::npos) {
      if (available() > kMaxHeadSize) throw ParseError("HTTP: response head too large");
      return false;
    }
    current_ = Response{};
    std::string_view status_line = detail::parse_head(
        std::string_view(buffer_).substr(consumed_, end - consumed_), current_.headers);
    // "HTTP/1.1 200 OK"
    if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." ||
        (status_line[7] != '0' && status_line[7] != '1') || status_line[8] != ' ' ||
        (status_line.size() > 12 && status_line[12] != ' ')) {
      throw ParseError("HTTP: malformed status line '" + std::string(status_line.substr(0, 40)) +
                       "'");
    }
    std::string version(status_line.substr(0, 8));
    current_.status =
        static_cast<int>(detail::parse_number(status_line.substr(9, 3), 10, "status"));
    if (current_.status < 100 || current_.status > 599) throw ParseError("HTTP: bad status code");
    current_.reason = status_line.size() > 13 ? status_line.substr(13) : "";
    current_.keep_alive = detail::keeps_alive(version, current_.headers);
    consumed_ = end + 4;

    std::optional<std::string_view> coding = current_.headers.get("Transfer-Encoding");
    if (coding) {
      if (!detail::iequals(detail::trim(*coding), "chunked")) {
        throw ParseError("HTTP: unsupported Transfer-Encoding '" + std::string(*coding) + "'");
      }
      state_ = State::kChunkSize;
    } else if (auto length = detail::content_length(current_.headers)) {
      remaining_ = *length;
      state_ = State::kFixedBody;
    } else if (current_.status < 200 || current_.status == 204 || current_.status == 304) {
      remaining_ = 0;
      state_ = State::kFixedBody;
    } else {
      current_.keep_alive = false;  // the body ends when the server closes
      state_ = State::kUntilClose;
    }
    return true;
  }

  std::optional<std::string> read_line() {
    std::size_t end = buffer_.find("\r\n", consumed_);
    if (end == std::string::npos) {
      if (available() > kMaxHeadSize) throw ParseError("HTTP: line too long");
      return std::nullopt;
    }
    std::string line = buffer_.substr(consumed_, end - consumed_);
    consumed_ = end + 2;
    return line;
  }

  std::size_t available() const { return buffer_.size() - consumed_; }

  void take(std::size_t bytes) {
    current_.body.append(buffer_, consumed_, bytes);
    consumed_ += bytes;
  }

  void compact() {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }

  Response finish() {
    state_ = State::kHead;
    return std::move(current_);
  }

  std::string buffer_;
  std::size_t consumed_ = 0;  // bytes of buffer_ already parsed
  State state_ = State::kHead;
  std::uint64_t remaining_ = 0;
  Response current_;
};

/// Parses the requests of one connection, in order (Content-Length bodies only:
/// a chunked request throws, and the server answers 501).
class RequestParser {
 public:
  void feed(std::string_view bytes) { buffer_.append(bytes); }

  /// The next complete request, or nullopt if more bytes are needed.
  std::optional<Request> next() {
    std::size_t end = buffer_.find("\r\n\r\n", consumed_);
    if (end == std::string::npos) {
      if (buffer_.size() - consumed_ > kMaxHeadSize)
        throw ParseError("HTTP: request head too large");
      compact();
      return std::nullopt;
    }
    Request request;
    std::string_view head = std::string_view(buffer_).substr(consumed_, end - consumed_);
    std::string_view line = detail::parse_head(head, request.headers);
    // "GET /path HTTP/1.1"
    std::size_t first = line.find(' ');
    std::size_t second = first == std::string_view::npos ? first : line.find(' ', first + 1);
    if (second == std::string_view::npos || first == 0 || second == first + 1) {
      throw ParseError("HTTP: malformed request line '" + std::string(line.substr(0, 40)) + "'");
    }
    request.method = line.substr(0, first);
    request.target = line.substr(first + 1, second - first - 1);
    request.version = line.substr(second + 1);
    if (request.version != "HTTP/1.1" && request.version != "HTTP/1.0") {
      throw ParseError("HTTP: unsupported version '" + request.version.substr(0, 16) + "'");
    }
    if (request.headers.get("Transfer-Encoding")) {
      throw ParseError("HTTP: chunked request bodies are not supported");
    }
    std::uint64_t length = detail::content_length(request.headers).value_or(0);
    if (length > kMaxRequestBodySize) throw ParseError("HTTP: request body too large");
    std::size_t body_start = end + 4;
    if (buffer_.size() - body_start < length) return std::nullopt;  // the head is parsed again
    request.body = buffer_.substr(body_start, length);
    request.keep_alive = detail::keeps_alive(request.version, request.headers);
    consumed_ = body_start + length;
    return request;
  }

 private:
  void compact() {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }

  std::string buffer_;
  std::size_t consumed_ = 0;  // bytes of buffer_ already handed out as requests
};

}  // namespace http
