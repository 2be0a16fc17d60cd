#include <pyco/net/os_error.hpp>

#include <cerrno>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include <pyco/net/socket.hpp>

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
    // Python's OSError(errno, ...) picks these whatever the call was.
    expect_type<pyco::permission_error>(EACCES);
    expect_type<pyco::permission_error>(EPERM);
    expect_type<pyco::file_not_found_error>(ENOENT);
    expect_type<pyco::file_exists_error>(EEXIST);
    expect_type<pyco::is_a_directory_error>(EISDIR);
    expect_type<pyco::not_a_directory_error>(ENOTDIR);
    expect_type<std::system_error>(ENOENT);
}

// CPython: socket(AF_UNIX).bind("/missing/dir/x.sock") raises
// FileNotFoundError, [Errno 2] (and so do asyncio's start_unix_server and
// open_unix_connection, which let bind's and connect's error through).
TEST(OsError, BindingAUnixSocketInAMissingDirectoryIsFileNotFound) {
    char dir[] = "/tmp/pyco-os-error-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    const std::string path = std::string(dir) + "/missing/x.sock";
    pyco::socket s(AF_UNIX, SOCK_STREAM, 0);
    try {
        s.bind(pyco::sock_address::unix_path(path));
        ADD_FAILURE() << "bind in a missing directory succeeded";
    } catch (const pyco::file_not_found_error& e) {
        EXPECT_EQ(e.code().value(), ENOENT);
        EXPECT_NE(std::string(e.what()).find("No such file or directory"), std::string::npos) << e.what();
    } catch (const std::exception& e) {
        ADD_FAILURE() << "not file_not_found_error: " << e.what();
    }
    s.close();
    ::rmdir(dir);
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
