#include "ssl_transport.hpp"

#include "tulip/errors.hpp"

namespace tulip::detail {

void SslTransport::write_eof() {
  // TLS 1.3 could half-close with close_notify, but asyncio refuses on every
  // TLS version, and a peer that takes close_notify as the end of the whole
  // connection would cut the reply short.
  throw RuntimeError(
      "write_eof() is not supported on a TLS transport (can_write_eof() is false); use close()");
}

}  // namespace tulip::detail
