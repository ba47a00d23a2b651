// TULIP_API: marks what a shared libtulip exports.
//
// The library is compiled with hidden symbol visibility, so a shared libtulip
// exports only what carries this mark: every public class, and every function a
// public header declares and the library defines (including the detail::
// functions that public templates call). When a header gains such a class or
// function, mark it, or programs linked against the shared library will not
// find it. In a static library the mark changes nothing.
//
// Thread-safety: not applicable (a macro).
#pragma once

#if defined(__GNUC__) || defined(__clang__)
/// Gives a class or function default visibility: exported from a shared libtulip.
#define TULIP_API __attribute__((visibility("default")))
#else
#define TULIP_API
#endif
