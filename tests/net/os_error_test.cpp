#include <pyco/net/os_error.hpp>

#include <cerrno>

#include <gtest/gtest.h>

namespace {

template <class E>
void expect_type(int err) {
    try {
        pyco::throw_os_error(err, "op");
    } catch (const E& e) {
        EXPECT_EQ(e.code().value(), err);
        EXPECT_EQ(e.code().category(), std::generic_category());
        return;
    } catch (...) {
    }
    ADD_FAILURE() << "errno " << err << " did not raise the expected type";
}

TEST(OsError, NamedSubclassesAsPythonRaisesThem) {
    expect_type<pyco::broken_pipe_error>(EPIPE);
    expect_type<pyco::broken_pipe_error>(ESHUTDOWN);
    expect_type<pyco::connection_aborted_error>(ECONNABORTED);
    expect_type<pyco::connection_refused_error>(ECONNREFUSED);
    expect_type<pyco::connection_reset_error>(ECONNRESET);
    expect_type<pyco::connection_error>(ECONNRESET);
    expect_type<std::system_error>(ENOENT);
}

TEST(OsError, OtherErrnosArePlainSystemErrors) {
    try {
        pyco::throw_os_error(EADDRINUSE, "bind");
    } catch (const pyco::connection_error&) {
        ADD_FAILURE() << "EADDRINUSE is not a ConnectionError in Python";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EADDRINUSE);
        EXPECT_NE(std::string(e.what()).find("bind"), std::string::npos);
    }
}

}  // namespace
