// tulip::version(): the version this library was built as.
#include "tulip/version.hpp"

namespace tulip {

const char* version() noexcept { return TULIP_VERSION_STRING; }

}  // namespace tulip
