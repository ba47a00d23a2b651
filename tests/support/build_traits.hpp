// Test support: what a test can tell about the build it runs in (the
// definitions come from tests/CMakeLists.txt).
#pragma once

namespace tulip::testing {

/// A sanitizer runtime is linked in: it keeps freed memory on purpose, so
/// resident-size figures say nothing about the code under test.
#if defined(TULIP_TEST_SANITIZED)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

/// Clang's UBSan checks the dynamic type at virtual calls in the standard
/// library's inline code too (std::error_code::message), and on a miss in its
/// cache opens a pipe to read the object safely: with every descriptor taken it
/// reports a false "invalid vptr". A test that exhausts descriptors skips in
/// such a build; the other builds run it.
#if defined(TULIP_TEST_VPTR_CHECK_NEEDS_DESCRIPTORS)
inline constexpr bool kVptrCheckNeedsDescriptors = true;
#else
inline constexpr bool kVptrCheckNeedsDescriptors = false;
#endif

/// The reason a descriptor-exhaustion test gives when it skips.
inline constexpr const char* kVptrCheckSkipReason =
    "clang's UBSan type check needs free descriptors, which this test takes (the release build "
    "runs it)";

}  // namespace tulip::testing
