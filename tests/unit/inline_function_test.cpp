// InlineFunction: small-buffer storage, heap fallback, move-only callables.
#include "tulip/detail/inline_function.hpp"

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <string>

namespace tulip::detail {
namespace {

TEST(InlineFunction, StoresAndCallsSmallCallables) {
  int counter = 0;
  InlineFunction<void()> f = [&counter] { ++counter; };
  ASSERT_TRUE(f);
  f();
  f();
  EXPECT_EQ(counter, 2);
}

TEST(InlineFunction, ReturnsValuesAndTakesArguments) {
  InlineFunction<int(int, int)> add = [](int a, int b) { return a + b; };
  EXPECT_EQ(add(2, 3), 5);
}

TEST(InlineFunction, AcceptsMoveOnlyCaptures) {
  auto owned = std::make_unique<int>(5);
  InlineFunction<int()> f = [p = std::move(owned)] { return *p; };
  InlineFunction<int()> g = std::move(f);
  EXPECT_FALSE(f);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract.
  EXPECT_EQ(g(), 5);
}

TEST(InlineFunction, LargeCallablesFallBackToTheHeapAndStillWork) {
  std::array<char, 200> big{};
  big[199] = 'z';
  auto tracker = std::make_shared<int>(0);
  InlineFunction<char()> f = [big, tracker] { return big[199]; };
  EXPECT_EQ(tracker.use_count(), 2);
  InlineFunction<char()> g = std::move(f);
  EXPECT_EQ(g(), 'z');
  EXPECT_EQ(tracker.use_count(), 2);
  g.reset();
  EXPECT_EQ(tracker.use_count(), 1);
}

TEST(InlineFunction, DestroysCapturesOnResetAndAssignment) {
  auto tracker = std::make_shared<int>(0);
  InlineFunction<void()> f = [tracker] {};
  EXPECT_EQ(tracker.use_count(), 2);
  f = [] {};
  EXPECT_EQ(tracker.use_count(), 1);
  f.assign([tracker] {});
  EXPECT_EQ(tracker.use_count(), 2);
  f = nullptr;
  EXPECT_EQ(tracker.use_count(), 1);
  EXPECT_FALSE(f);
}

TEST(InlineFunction, MoveAssignmentBetweenNonTrivialCallables) {
  std::string text = "a long enough string to live on the heap, not in SSO";
  InlineFunction<std::string()> a = [text] { return text; };
  InlineFunction<std::string()> b = [] { return std::string("b"); };
  b = std::move(a);
  EXPECT_EQ(b(), text);
}

}  // namespace
}  // namespace tulip::detail
