// What loop.sendfile and loop.sock_sendfile share. Not API.
//
// BufferedSendfileTarget is what the buffered path (asyncio's
// _sendfile_fallback) needs from a stream transport beyond the public
// Transport interface: the protocol as the transport owns it, to put it back
// afterwards, and whether that protocol is paused for writing. A transport
// that implements it can send files without the kernel's help; one that does
// not cannot send files at all (asyncio's _SendfileMode.UNSUPPORTED). Both
// tulip transports (the selector's and the in-memory one) implement it.
//
// The file helpers check loop.sendfile's arguments as asyncio does (a
// negative offset is refused) plus one check of tulip's own: the file must be
// a regular file, because the buffered path reads it on the loop's thread,
// where a pipe or a terminal could block the loop forever.
//
// Thread-safety: loop thread only.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>

#include "tulip/export.hpp"
#include "tulip/protocol.hpp"

namespace tulip::detail {

// Exported from a shared libtulip because the separately linked tulip::testing
// (src/testing/) implements it too.
class TULIP_API BufferedSendfileTarget {
 public:
  /// The protocol the transport owns now (non-null while it is open).
  virtual std::shared_ptr<StreamProtocol> owned_protocol() const noexcept = 0;
  /// True between the protocol's pause_writing() and resume_writing().
  virtual bool protocol_writing_paused() const noexcept = 0;

 protected:
  ~BufferedSendfileTarget() = default;
};

/// The buffered path reads this much of the file at a time (asyncio:
/// SENDFILE_FALLBACK_READBUFFER_SIZE, 256 KiB).
inline constexpr std::size_t kSendfileReadSize = 256 * 1024;

/// Checks `file_fd` and `offset` for `operation` ("sendfile", "sock_sendfile"):
/// throws std::invalid_argument for a negative offset or a file that is not a
/// regular file, OSError for a descriptor fstat() refuses. Returns the
/// offset, now known to be non-negative.
std::uint64_t check_file_to_send(const char* operation, int file_fd, std::int64_t offset);

/// pread() of up to `size` bytes at `offset`, retrying EINTR: bytes read (0 at
/// the end of the file) or -errno.
ssize_t read_file_at(int file_fd, char* data, std::size_t size, std::uint64_t offset) noexcept;

/// As asyncio, the file's position is left after the last byte sent (it is
/// left alone when nothing was sent).
void set_file_position_after(int file_fd, std::uint64_t offset, std::size_t sent) noexcept;

/// How many bytes to ask of the file next: the rest of `count` (0: no limit), at most `limit`.
inline std::size_t next_chunk(std::size_t count, std::size_t sent, std::size_t limit) noexcept {
  if (count == 0) return limit;
  std::size_t rest = count - sent;
  return rest < limit ? rest : limit;
}

/// "after N bytes", for the messages of a sendfile that ended early.
std::string bytes_sent_text(std::size_t sent);

}  // namespace tulip::detail
