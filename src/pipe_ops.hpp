// System calls on pipe ends, as socket_ops.hpp has them for sockets. Not API.
//
// A write to a pipe whose reader has gone raises SIGPIPE, which kills a
// process that did not ignore it; send(MSG_NOSIGNAL) avoids that for sockets
// only. write_to_pipe() holds SIGPIPE blocked in the calling thread for the
// write and, if the write failed with EPIPE, takes the signal it raised off the
// thread's pending set before unblocking: the caller sees EPIPE and nothing
// else happens, whatever the process's disposition for SIGPIPE is.
//
// Thread-safety: plain functions; the signal mask touched is the calling thread's.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <string>

namespace tulip::detail {

/// read(): bytes read, 0 at EOF, or -errno (EINTR retried).
ssize_t read_from_pipe(int fd, void* data, std::size_t size) noexcept;

/// writev() of `count` buffers without SIGPIPE: bytes written, or -errno.
ssize_t write_to_pipe(int fd, const iovec* buffers, std::size_t count) noexcept;

/// Checks that `fd` is something a pipe transport can use (asyncio: a FIFO, a
/// socket or a character device) and makes it non-blocking. Throws
/// std::invalid_argument for anything else (a regular file, a directory),
/// OSError if it is not an open descriptor. Returns whether it is a FIFO or a
/// socket: a write end of those can tell when its reader goes away.
bool prepare_pipe_descriptor(int fd, const char* operation);

}  // namespace tulip::detail
