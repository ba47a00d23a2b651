// tulip-fuzz-resp: a libFuzzer target for the Redis example's RESP reply
// parser (examples/redis/resp.hpp).
//
// Each input is a byte stream and the fragments it arrives in (fragments.hpp).
// The stream is fed to a parser fragment by fragment, taking every complete
// value after each, as RedisProtocol::data_received does, until the end or
// the first resp::ProtocolError. Checked:
//
//  * nothing but resp::ProtocolError escapes (any other exception, a crash,
//    a sanitizer report, a hang or an oversized allocation is a finding);
//  * the outcome does not depend on the fragmentation: the same stream fed in
//    one piece gives the same values, then the same error or none;
//  * the values are well formed: nesting within the parser's limit, and
//    encoded again as a server would send them they parse to the same values.
//
// A broken invariant prints one line and aborts. See docs/fuzzing.md.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "fragments.hpp"
#include "redis/resp.hpp"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "tulip-fuzz-resp: invariant broken: %s\n", what);
  std::abort();
}

struct Outcome {
  std::vector<resp::Value> values;
  std::optional<std::string> error;  // the ProtocolError's message, if one was thrown
  bool partial = false;              // a value was cut short at the end of the stream
};

bool same(const resp::Value& a, const resp::Value& b) {
  if (a.type != b.type || a.text != b.text || a.integer != b.integer ||
      a.elements.size() != b.elements.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.elements.size(); ++i) {
    if (!same(a.elements[i], b.elements[i])) return false;
  }
  return true;
}

std::size_t depth(const resp::Value& value) {
  std::size_t deepest = 0;
  for (const resp::Value& element : value.elements) deepest = std::max(deepest, depth(element));
  return 1 + deepest;
}

// RESP2 as a server writes it.
void encode(const resp::Value& value, std::string& out) {
  switch (value.type) {
    case resp::Value::Type::kSimpleString:
      out += "+" + value.text + "\r\n";
      break;
    case resp::Value::Type::kError:
      out += "-" + value.text + "\r\n";
      break;
    case resp::Value::Type::kInteger:
      out += ":" + std::to_string(value.integer) + "\r\n";
      break;
    case resp::Value::Type::kBulkString:
      out += "$" + std::to_string(value.text.size()) + "\r\n" + value.text + "\r\n";
      break;
    case resp::Value::Type::kNull:
      out += "$-1\r\n";
      break;
    case resp::Value::Type::kArray:
      out += "*" + std::to_string(value.elements.size()) + "\r\n";
      for (const resp::Value& element : value.elements) encode(element, out);
      break;
  }
}

// Feeds `stream` in the given fragments and collects what the parser hands out.
Outcome parse(std::string_view stream, const std::vector<std::size_t>& fragments) {
  Outcome outcome;
  resp::Parser parser;
  std::size_t offset = 0;
  try {
    for (std::size_t piece : fragments) {
      parser.feed(stream.substr(offset, piece));
      offset += piece;
      while (std::optional<resp::Value> value = parser.next()) {
        outcome.values.push_back(std::move(*value));
      }
    }
  } catch (const resp::ProtocolError& error) {
    outcome.error = error.what();
    return outcome;
  }
  outcome.partial = parser.partial();
  return outcome;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Script script = fuzz::decode(data, size);
  Outcome pieces = parse(script.stream, script.fragments);
  Outcome whole = parse(script.stream, {script.stream.size()});

  if (pieces.values.size() != whole.values.size())
    fail("the number of values depends on fragments");
  for (std::size_t i = 0; i < whole.values.size(); ++i) {
    if (!same(pieces.values[i], whole.values[i])) fail("a value depends on the fragments");
    // Arrays at depths 0 to kMaxDepth; the deepest of them can only be empty.
    if (depth(whole.values[i]) > resp::Parser::kMaxDepth + 1) fail("arrays nested too deeply");
  }
  if (pieces.error != whole.error) fail("the error depends on the fragments");
  if (!whole.error && pieces.partial != whole.partial) fail("partial() depends on the fragments");

  // What was parsed, encoded again and parsed again, gives the same values.
  std::string encoded;
  for (const resp::Value& value : whole.values) encode(value, encoded);
  Outcome again = parse(encoded, {encoded.size()});
  if (again.error || again.partial || again.values.size() != whole.values.size()) {
    fail("the values parsed do not parse again once encoded");
  }
  for (std::size_t i = 0; i < whole.values.size(); ++i) {
    if (!same(again.values[i], whole.values[i])) fail("a value changed once encoded and parsed");
  }
  return 0;
}
