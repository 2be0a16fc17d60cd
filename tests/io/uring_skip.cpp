// Linked into every test of the networking suite: when the suite runs a
// second time with PYCO_BACKEND=io_uring (ctest label "uring") on a machine
// or build without io_uring, every test is skipped, and the reason printed,
// instead of failing (or passing without having run on io_uring).
#include <cstdlib>
#include <cstring>

#include <gtest/gtest.h>

#include <pyco/detail/io_backend.hpp>

namespace {

class uring_environment : public testing::Environment {
public:
    void SetUp() override {
        const char* v = std::getenv("PYCO_BACKEND");
        if (v == nullptr || std::strcmp(v, "io_uring") != 0) return;
        const std::string& why = pyco::detail::io_uring_unavailable_reason();
        if (!why.empty()) GTEST_SKIP() << "PYCO_BACKEND=io_uring: " << why;
    }
};

[[maybe_unused]] testing::Environment* const registered = testing::AddGlobalTestEnvironment(new uring_environment);

}  // namespace
