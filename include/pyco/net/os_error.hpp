// pyco/net/os_error.hpp — OS failures with Python's names.
//
// An OS failure is a std::system_error carrying errno (the contract). Where
// Python raises a named OSError subclass, pyco raises a type of that name
// deriving from std::system_error, so code catches what it knows:
//
//   std::system_error                     (OSError)
//   ├── connection_error                  (ConnectionError)
//   │   ├── broken_pipe_error             (BrokenPipeError: EPIPE, ESHUTDOWN)
//   │   ├── connection_aborted_error      (ConnectionAbortedError: ECONNABORTED)
//   │   ├── connection_refused_error      (ConnectionRefusedError: ECONNREFUSED)
//   │   └── connection_reset_error        (ConnectionResetError: ECONNRESET)
//   ├── file_exists_error                 (FileExistsError: EEXIST)
//   ├── file_not_found_error              (FileNotFoundError: ENOENT)
//   ├── is_a_directory_error              (IsADirectoryError: EISDIR)
//   ├── not_a_directory_error             (NotADirectoryError: ENOTDIR)
//   ├── permission_error                  (PermissionError: EACCES, EPERM)
//   └── process_lookup_error              (ProcessLookupError: ESRCH)
//
// make_os_error maps errno to every type above, whatever the call, as
// Python's OSError constructor does (a Unix socket bound in a missing
// directory raises FileNotFoundError, as open() of a missing file does).
// make_file_os_error, which file operations (<pyco/file.hpp>) use, is the
// same mapping.
//
// what() is "<context>: <strerror>" as std::system_error makes it; code()
// keeps errno in std::generic_category().
#pragma once

#include <string>
#include <system_error>

namespace pyco {

class connection_error : public std::system_error {
public:
    connection_error(int err, const std::string& what) : std::system_error(err, std::generic_category(), what) {}
};

#define PYCO_DEFINE_OS_ERROR(name)                                                        \
    class name : public connection_error {                                                \
    public:                                                                               \
        name(int err, const std::string& what) : connection_error(err, what) {}          \
    };

PYCO_DEFINE_OS_ERROR(broken_pipe_error)
PYCO_DEFINE_OS_ERROR(connection_aborted_error)
PYCO_DEFINE_OS_ERROR(connection_refused_error)
PYCO_DEFINE_OS_ERROR(connection_reset_error)

#undef PYCO_DEFINE_OS_ERROR

// The OSError subclasses of files and paths: direct children of OSError in
// Python, so of std::system_error here.
#define PYCO_DEFINE_OS_ERROR(name)                                                        \
    class name : public std::system_error {                                               \
    public:                                                                               \
        name(int err, const std::string& what)                                            \
            : std::system_error(err, std::generic_category(), what) {}                    \
    };

PYCO_DEFINE_OS_ERROR(file_exists_error)
PYCO_DEFINE_OS_ERROR(file_not_found_error)
PYCO_DEFINE_OS_ERROR(is_a_directory_error)
PYCO_DEFINE_OS_ERROR(not_a_directory_error)
PYCO_DEFINE_OS_ERROR(permission_error)
PYCO_DEFINE_OS_ERROR(process_lookup_error)

#undef PYCO_DEFINE_OS_ERROR

// The exception Python would raise for errno `err`, as an exception_ptr
// (the most derived type above, else std::system_error).
std::exception_ptr make_os_error(int err, const std::string& what);
// Throws it.
[[noreturn]] void throw_os_error(int err, const std::string& what);
// make_os_error, under the name file code has used (src/io/file.cpp).
std::exception_ptr make_file_os_error(int err, const std::string& what);

}  // namespace pyco
