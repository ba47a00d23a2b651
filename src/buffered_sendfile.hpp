// loop.sendfile's buffered path: reads the file and writes it through the
// transport, honouring its flow control. Not API.
//
// asyncio's _sendfile_fallback with its _SendfileFallbackProtocol: for the
// duration the transport's protocol is replaced by one that hears
// pause_writing / resume_writing (the file is written only while the
// transport is not paused), reading is paused, and afterwards the original
// protocol is put back, reading resumed if it was on, and the protocol told
// resume_writing() if it was paused when the file started (the pause and
// resume in between went to the stand-in). Unlike asyncio, the Future
// completes only once the transport is no longer paused, so the protocol put
// back is never left waiting for a resume that went to the stand-in; and
// bytes that arrive anyway (the protocol resumed reading meanwhile) are passed
// on rather than treated as an error.
//
// The file is read on the loop's thread, 256 KiB at a time, one chunk per
// iteration at most: a regular file's reads come from the page cache or the
// disk, never from a peer that could stall them.
//
// Thread-safety: loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tulip/future.hpp"
#include "tulip/transport.hpp"

namespace tulip::detail {

/// Starts sending `count` bytes (0: to the end) of `file_fd` from `offset`
/// through `transport`; completes `result` with the bytes sent. Throws
/// RuntimeError if the transport cannot send files this way (not a tulip
/// transport), is closing, or is already sending one.
void start_buffered_sendfile(Transport& transport, int file_fd, std::uint64_t offset,
                             std::size_t count, Future<std::size_t> result);

/// True while the buffered path sends a file over `transport`.
bool buffered_sendfile_in_progress(Transport& transport) noexcept;

}  // namespace tulip::detail
