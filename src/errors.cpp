#include "tulip/errors.hpp"

namespace tulip {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "tulip"; }
  std::string message(int value) const override {
    switch (static_cast<Error>(value)) {
      case Error::kCallbackRaised:
        return "a protocol callback raised an exception";
      case Error::kEmptyBuffer:
        return "get_buffer() returned an empty buffer";
      case Error::kTimedOut:
        return "timed out";
      case Error::kNameResolution:
        return "name resolution failed";
      case Error::kSslHandshakeTimeout:
        return "SSL handshake timed out";
      case Error::kSslShutdownTimeout:
        return "SSL shutdown timed out";
    }
    return "unknown tulip error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category category;
  return category;
}

}  // namespace tulip
