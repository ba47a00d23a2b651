// Unix socket paths and the files bound to them. Not API.
//
// A Unix server binds a path in the file system (or a Linux abstract name,
// which has no file). Three things about that file belong together and are
// here: checking a path before using it (too long for sun_path, embedded NUL),
// telling a stale socket file left by a server that died from a live one where
// a server still listens (the first is removed, the second is never stolen),
// and removing the file when the server closes unless something else replaced
// it meanwhile (asyncio 3.13's cleanup_socket).
//
// Thread-safety: plain functions; file-system races with other processes are
// the caller's to accept (a file may change between two calls).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <optional>
#include <string>

#include "tulip/socket_address.hpp"

namespace tulip::detail {

/// The address of `path`, or throws OSError naming the path: ENAMETOOLONG when
/// it does not fit sun_path, EINVAL when it is empty or holds a NUL byte other
/// than the first (abstract) one. `operation` starts the message ("connect to").
SocketAddress unix_address_or_throw(const std::string& path, const char* operation);

/// How a path appears in messages: quoted, with an abstract name shown as bytes.
std::string describe_unix_path(const std::string& path);

/// Prepares `address` (a pathname, not abstract) for bind() of a socket of
/// `type` (SOCK_STREAM, SOCK_DGRAM): a socket file nobody is bound to any more
/// is removed; one where a socket still answers (a listening server, a bound
/// datagram socket, or a socket of another type) makes this throw
/// OSError(EADDRINUSE); anything else there is left for bind() to refuse.
void remove_stale_socket_file(const SocketAddress& address, int type = SOCK_STREAM);

/// The identity of the file at a path: what close compares to know that the
/// file is still the one the server bound.
struct SocketFileIdentity {
  dev_t device = 0;
  ino_t inode = 0;
};

/// The identity of the socket file at `path`; nullopt if there is none.
std::optional<SocketFileIdentity> identify_socket_file(const std::string& path);

/// Removes `path` if it is still the socket file `identity` names.
void remove_socket_file_if_unchanged(const std::string& path, const SocketFileIdentity& identity);

/// A non-blocking Unix stream socket bound to `address` and listening; throws
/// OSError naming the path (missing directory, no permission, in use).
int open_unix_listening_socket(const SocketAddress& address, int backlog);

/// bind() of the Unix socket `fd` to `address`; throws OSError naming the path
/// and the cause (with a hint for a missing directory). Leaves `fd` open.
void bind_unix_socket(int fd, const SocketAddress& address);

}  // namespace tulip::detail
