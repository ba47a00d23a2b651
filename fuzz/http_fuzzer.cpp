// tulip-fuzz-http: a libFuzzer target for the HTTP examples' parsers
// (examples/http/http_parser.hpp): the response parser of the client and the
// request parser of the server, both given every input.
//
// Each input is a byte stream and the fragments it arrives in (fragments.hpp).
// The stream is fed to each parser fragment by fragment, taking every complete
// message after each, as the examples' data_received does, until the end or
// the first http::ParseError; then the response parser is told of the EOF
// (finish_at_eof), as the client is when the server closes. Checked:
//
//  * nothing but http::ParseError escapes (any other exception, a crash, a
//    sanitizer report, a hang or an oversized allocation is a finding);
//  * the outcome does not depend on the fragmentation: the same stream fed in
//    one piece gives the same messages, then the same error or none;
//  * the messages are consistent: a status from 100 to 599, a body as long as
//    its Content-Length, a request's version HTTP/1.0 or HTTP/1.1.
//
// A broken invariant prints one line and aborts. See docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "fragments.hpp"
#include "http/http_parser.hpp"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "tulip-fuzz-http: invariant broken: %s\n", what);
  std::abort();
}

template <class Message>
struct Outcome {
  std::vector<Message> messages;
  std::optional<std::string> error;  // the ParseError's message, if one was thrown
};

bool same(const http::Response& a, const http::Response& b) {
  return a.status == b.status && a.reason == b.reason && a.headers.fields == b.headers.fields &&
         a.body == b.body && a.keep_alive == b.keep_alive;
}

bool same(const http::Request& a, const http::Request& b) {
  return a.method == b.method && a.target == b.target && a.version == b.version &&
         a.headers.fields == b.headers.fields && a.body == b.body && a.keep_alive == b.keep_alive;
}

// Feeds `stream` in the given fragments, then (responses only) the EOF.
template <class Parser, class Message>
Outcome<Message> parse(std::string_view stream, const std::vector<std::size_t>& fragments) {
  Outcome<Message> outcome;
  Parser parser;
  std::size_t offset = 0;
  try {
    for (std::size_t piece : fragments) {
      parser.feed(stream.substr(offset, piece));
      offset += piece;
      while (std::optional<Message> message = parser.next()) {
        outcome.messages.push_back(std::move(*message));
      }
    }
    if constexpr (std::is_same_v<Parser, http::ResponseParser>) {
      if (std::optional<Message> last = parser.finish_at_eof()) {
        outcome.messages.push_back(std::move(*last));
      }
      if (parser.in_progress()) fail("a response in progress after the EOF");
    }
  } catch (const http::ParseError& error) {
    outcome.error = error.what();
  }
  return outcome;
}

template <class Parser, class Message>
void check_fragmentation(const fuzz::Script& script) {
  auto pieces = parse<Parser, Message>(script.stream, script.fragments);
  auto whole = parse<Parser, Message>(script.stream, {script.stream.size()});
  if (pieces.messages.size() != whole.messages.size()) {
    fail("the number of messages depends on the fragments");
  }
  for (std::size_t i = 0; i < whole.messages.size(); ++i) {
    if (!same(pieces.messages[i], whole.messages[i])) fail("a message depends on the fragments");
    const Message& message = whole.messages[i];
    // Content-Length frames the body unless the message is chunked.
    if (!message.headers.get("Transfer-Encoding")) {
      if (auto length = http::detail::content_length(message.headers)) {
        if (message.body.size() != *length) fail("a body differs from its Content-Length");
      }
    }
    if (message.body.size() > script.stream.size()) fail("a body longer than the stream");
    if constexpr (std::is_same_v<Message, http::Response>) {
      if (message.status < 100 || message.status > 599) fail("a status out of range");
    } else {
      if (message.version != "HTTP/1.1" && message.version != "HTTP/1.0") fail("a bad version");
      if (message.method.empty() || message.target.empty()) fail("an empty method or target");
    }
  }
  if (pieces.error != whole.error) fail("the error depends on the fragments");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Script script = fuzz::decode(data, size);
  check_fragmentation<http::ResponseParser, http::Response>(script);
  check_fragmentation<http::RequestParser, http::Request>(script);
  return 0;
}
