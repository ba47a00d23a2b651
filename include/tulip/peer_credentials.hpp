// PeerCredentials: who is at the other end of a Unix domain stream socket.
//
// What get_extra_info("peercred") returns for a Unix socket transport: the
// process id, user id and group id of the peer, as the kernel recorded them
// when the connection was made (SO_PEERCRED). Python returns the same three
// numbers packed in bytes; here they are named fields.
//
// Thread-safety: a plain value.
#pragma once

#include <sys/types.h>

namespace tulip {

/// The credentials of a Unix socket's peer (SO_PEERCRED), as of connect() or listen().
struct PeerCredentials {
  pid_t pid = 0;  ///< The peer's process id.
  uid_t uid = 0;  ///< The peer's effective user id.
  gid_t gid = 0;  ///< The peer's effective group id.
};

}  // namespace tulip
