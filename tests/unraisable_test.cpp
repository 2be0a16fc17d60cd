// Where exceptions go when nothing can receive them.
#include <pyco/unraisable.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <stdexcept>
#include <string>

#include <pyco/errors.hpp>

#include "unraisable_capture.hpp"

namespace {

TEST(Unraisable, DescribeNamesTheTypeAndMessage) {
    EXPECT_EQ(pyco::describe_exception(std::make_exception_ptr(pyco::value_error("v"))),
              "pyco::value_error: v");
    EXPECT_EQ(pyco::describe_exception(std::make_exception_ptr(std::out_of_range("r"))),
              "std::out_of_range: r");
    EXPECT_EQ(pyco::describe_exception(std::make_exception_ptr(pyco::generator_exit())),
              "pyco::generator_exit: ");
    EXPECT_EQ(pyco::describe_exception(std::make_exception_ptr(42)), "int");
    EXPECT_EQ(pyco::describe_exception(nullptr), "(no exception)");
}

TEST(Unraisable, ReportGoesToTheInstalledHook) {
    unraisable_capture cap;
    pyco::report_unraisable(std::make_exception_ptr(pyco::runtime_error("lost")), "<thing>");
    ASSERT_EQ(cap.reports.size(), 1u);
    EXPECT_EQ(cap.reports[0], "pyco::runtime_error: lost");
    EXPECT_EQ(cap.objects[0], "<thing>");
}

TEST(Unraisable, DefaultHookPrintsLikeCPython) {
    testing::internal::CaptureStderr();
    pyco::default_unraisable_hook(
        {std::make_exception_ptr(pyco::value_error("oops")), "Exception ignored in", "<gen>"});
    std::string out = testing::internal::GetCapturedStderr();
    EXPECT_EQ(out, "Exception ignored in: <gen>\npyco::value_error: oops\n");
}

void throwing_hook(const pyco::unraisable&) { throw std::runtime_error("hook failed"); }

TEST(Unraisable, AThrowingHookIsContained) {
    auto previous = pyco::unraisable_hook.exchange(&throwing_hook);
    testing::internal::CaptureStderr();
    EXPECT_NO_THROW(pyco::report_unraisable(std::make_exception_ptr(1), "<x>"));
    std::string out = testing::internal::GetCapturedStderr();
    pyco::unraisable_hook.store(previous);
    EXPECT_NE(out.find("Exception ignored in sys.unraisablehook"), std::string::npos);
}

}  // namespace
