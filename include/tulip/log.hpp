// Logging: where tulip's own diagnostics go.
//
// tulip logs rarely: the default exception handler, writes after a connection
// was lost, accept back-off. By default each message is one line on stderr,
// written with a single write(2) so lines from several threads never interleave.
// Applications and tests can install their own sink.
//
// Thread-safety: log() may be called from any thread; set_log_sink() must not
// race with log().
#pragma once

#include <functional>
#include <string_view>

#include "tulip/export.hpp"

namespace tulip {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

using LogSink = std::function<void(LogLevel, std::string_view message)>;

/// Installs a sink; an empty function restores the default (stderr). Returns the previous one.
TULIP_API LogSink set_log_sink(LogSink sink);

/// Sends one message (no trailing newline) to the current sink.
TULIP_API void log(LogLevel level, std::string_view message);

}  // namespace tulip
