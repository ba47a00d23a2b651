// Logging: where tulip's own diagnostics go.
//
// tulip logs rarely: the default exception handler, writes after a connection
// was lost, accept back-off, and (at debug level) TLS handshakes that failed.
// By default each message is one line on stderr, written with a single
// write(2) so lines from several threads never interleave. Applications and
// tests can install their own sink. Messages below the minimum level (default
// kInfo: debug messages are dropped) never reach the sink.
//
// Thread-safety: log() may be called from any thread; set_log_sink() and
// set_log_level() must not race with log().
#pragma once

#include <functional>
#include <string_view>

#include "tulip/export.hpp"

namespace tulip {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

using LogSink = std::function<void(LogLevel, std::string_view message)>;

/// Installs a sink; an empty function restores the default (stderr). Returns the previous one.
TULIP_API LogSink set_log_sink(LogSink sink);

/// Sets the lowest level that reaches the sink (default kInfo); returns the previous one.
TULIP_API LogLevel set_log_level(LogLevel minimum);

/// True if a message of `level` would reach the sink: check before building
/// an expensive message.
TULIP_API bool log_enabled(LogLevel level) noexcept;

/// Sends one message (no trailing newline) to the current sink, if `level`
/// is at least the minimum level.
TULIP_API void log(LogLevel level, std::string_view message);

}  // namespace tulip
