// Every test of this suite must leave the process with exactly the descriptors
// it found: a listener counts /proc/self/fd before each test and fails the test
// if the count differs after it.
#include <gtest/gtest.h>

#include "support/loopback.hpp"

namespace tulip::testing {
namespace {

class FdLeakCheck final : public ::testing::EmptyTestEventListener {
 public:
  void OnTestStart(const ::testing::TestInfo&) override { before_ = open_fd_count(); }

  void OnTestEnd(const ::testing::TestInfo& test) override {
    if (test.result()->Skipped()) return;
    int after = open_fd_count();
    // A failure raised here is recorded against the test that just ended.
    EXPECT_EQ(after, before_) << "descriptors open before the test: " << before_
                              << ", after it: " << after;
  }

 private:
  int before_ = -1;
};

// Installs the check once the test program has parsed its flags. Listeners
// hear OnTestEnd in reverse order of installation, so this one, added after the
// result printer, fails a leaking test before the printer reports its outcome.
class InstallFdLeakCheck final : public ::testing::Environment {
 public:
  void SetUp() override {
    // The listener list owns its listeners.
    ::testing::UnitTest::GetInstance()->listeners().Append(new FdLeakCheck);
  }
};

// The environment list owns the object; registration runs before main().
[[maybe_unused]] ::testing::Environment* const kInstalled =
    ::testing::AddGlobalTestEnvironment(new InstallFdLeakCheck);

}  // namespace
}  // namespace tulip::testing
