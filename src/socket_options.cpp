#include "socket_options.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "socket_ops.hpp"

namespace tulip::detail {

void apply_stream_options(int fd, bool nodelay, const std::optional<KeepAliveOptions>& keepalive) {
  if (nodelay) set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, 1);
  if (keepalive) {
    set_int_option(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
    set_int_option(fd, IPPROTO_TCP, TCP_KEEPIDLE, keepalive->idle_seconds);
    set_int_option(fd, IPPROTO_TCP, TCP_KEEPINTVL, keepalive->interval_seconds);
    set_int_option(fd, IPPROTO_TCP, TCP_KEEPCNT, keepalive->probe_count);
  }
}

}  // namespace tulip::detail
