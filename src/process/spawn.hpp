// Starting a child (private to src/process): posix_spawn with the pipes and
// attributes a subprocess_options asks for.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include <pyco/subprocess_transport.hpp>

namespace pyco::detail {

struct spawned {
    pid_t pid = -1;
    // The parent's ends of the PIPEs for fds 0, 1, 2 (-1 where not PIPE):
    // non-blocking and close-on-exec, owned by the caller.
    int pipes[3] = {-1, -1, -1};
};

// argv[0] is the program (searched in PATH unless it has a '/'). Throws
// value_error for bad options and the exec failure's OS error
// (make_os_error: file_not_found_error, permission_error, ...).
spawned spawn_child(const std::vector<std::string>& argv, const subprocess_options& o);

}  // namespace pyco::detail
