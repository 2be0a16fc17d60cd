// Spawning with posix_spawn: glibc (2.24+) runs the child on a clone with
// CLONE_VM|CLONE_VFORK, so the cost does not grow with the parent's memory
// as fork's does, and it reports an exec failure as posix_spawn's error.
//
// Invariants:
//   - every fd the parent makes here is close-on-exec (pipe2/open with
//     O_CLOEXEC), so another thread's spawn or fork never inherits it; the
//     child gets its stdio through dup2 file actions, which clear the flag
//     on the target only;
//   - on any failure every fd made here is closed before the throw;
//   - the child starts with an empty signal mask (the application may have
//     blocked signals in this thread) and SIGPIPE/SIGXFSZ at their default
//     action (CPython's restore_signals); other ignored signals stay ignored
//     across exec, as POSIX and CPython have them; caught ones become
//     default at exec anyway.
//   - close_fds closes every fd >= 3 but pass_fds in the child (closefrom);
//     pass_fds are dup2'd onto themselves, which clears close-on-exec.
#include "spawn.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string_view>

#include <pyco/errors.hpp>
#include <pyco/net/os_error.hpp>

extern char** environ;

namespace pyco::detail {

namespace {

struct fd_list {
    std::vector<int> fds;
    ~fd_list() {
        for (int fd : fds) ::close(fd);
    }
    int keep(int fd) {
        fds.push_back(fd);
        return fd;
    }
};

struct file_actions {
    posix_spawn_file_actions_t fa;
    file_actions() { posix_spawn_file_actions_init(&fa); }
    ~file_actions() { posix_spawn_file_actions_destroy(&fa); }
};

struct spawn_attr {
    posix_spawnattr_t a;
    spawn_attr() { posix_spawnattr_init(&a); }
    ~spawn_attr() { posix_spawnattr_destroy(&a); }
};

std::string quoted(const char* op, const std::string& s) {
    std::string r(op);
    r += " '";
    r += s;
    r += '\'';
    return r;
}

void check(int err, const char* what) {
    if (err != 0) throw_os_error(err, what);
}

// Open fds >= 3 of this process, from /proc/self/fd.
std::vector<int> open_fds() {
    std::vector<int> out;
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return out;
    const int self = ::dirfd(d);
    while (dirent* e = ::readdir(d)) {
        char* end = nullptr;
        long v = std::strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != '\0') continue;
        if (v >= 3 && v != self) out.push_back(static_cast<int>(v));
    }
    ::closedir(d);
    return out;
}

// The value of PATH in env (or this process's), else Python's os.defpath.
std::string exec_path(const subprocess_options& o) {
    if (o.env) {
        for (const std::string& kv : *o.env) {
            if (kv.rfind("PATH=", 0) == 0) return kv.substr(5);
        }
        return "/bin:/usr/bin";
    }
    const char* p = std::getenv("PATH");
    return p ? p : "/bin:/usr/bin";
}

bool is_dir(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

spawned spawn_child(const std::vector<std::string>& argv, const subprocess_options& o) {
    if (argv.empty() || argv[0].empty()) throw value_error("the program name is empty");
    fd_list parent_ends;  // closed on failure; released on success
    fd_list child_ends;   // closed in the parent once spawned, whatever happens
    file_actions fa;
    spawned out;

    int devnull = -1;
    const std::optional<int>* opts[3] = {&o.stdin, &o.stdout, &o.stderr};
    static const char* const names[3] = {"stdin", "stdout", "stderr"};
    int src[3] = {-1, -1, -1};  // what the child's fd i is dup2'd from
    for (int i = 0; i < 3; ++i) {
        const std::optional<int>& v = *opts[i];
        if (!v) continue;
        if (*v == subprocess::PIPE) {
            int p[2];
            if (::pipe2(p, O_CLOEXEC) != 0) throw_os_error(errno, "pipe2");
            const int parent = i == 0 ? p[1] : p[0];
            const int child = i == 0 ? p[0] : p[1];
            parent_ends.keep(parent);
            child_ends.keep(child);
            ::fcntl(parent, F_SETFL, ::fcntl(parent, F_GETFL) | O_NONBLOCK);
            out.pipes[i] = parent;
            src[i] = child;
        } else if (*v == subprocess::DEVNULL) {
            if (devnull < 0) {
                devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
                if (devnull < 0) throw_os_error(errno, "open '/dev/null'");
                child_ends.keep(devnull);
            }
            src[i] = devnull;
        } else if (*v == subprocess::STDOUT) {
            if (i != 2) throw value_error(std::string("STDOUT is only valid for stderr, not ") + names[i]);
            src[i] = 1;  // after fd 1 is set up
        } else if (*v >= 0) {
            src[i] = *v;
        } else {
            throw value_error(std::string("invalid ") + names[i] + ": " + std::to_string(*v));
        }
    }
    for (int i = 0; i < 3; ++i) {
        if (src[i] >= 0 && src[i] != i) check(posix_spawn_file_actions_adddup2(&fa.fa, src[i], i), "posix_spawn");
    }
    // pass_fds: inheritable in the child (dup2 onto itself clears FD_CLOEXEC).
    int max_pass = 2;
    for (int fd : o.pass_fds) {
        if (fd < 0) throw value_error("bad value(s) in pass_fds");
        if (fd > 2) check(posix_spawn_file_actions_adddup2(&fa.fa, fd, fd), "posix_spawn");
        max_pass = std::max(max_pass, fd);
    }
    if (o.close_fds) {
        // Below the highest pass fd, close one by one what is open; above
        // it, closefrom.
        if (max_pass > 2) {
            for (int fd : open_fds()) {
                if (fd > max_pass) continue;
                if (std::find(o.pass_fds.begin(), o.pass_fds.end(), fd) != o.pass_fds.end()) continue;
                check(posix_spawn_file_actions_addclose(&fa.fa, fd), "posix_spawn");
            }
        }
        check(posix_spawn_file_actions_addclosefrom_np(&fa.fa, max_pass + 1), "posix_spawn");
    }
    if (o.cwd) check(posix_spawn_file_actions_addchdir_np(&fa.fa, o.cwd->c_str()), "posix_spawn");

    spawn_attr at;
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    sigset_t none, deflt;
    sigemptyset(&none);
    sigemptyset(&deflt);
    sigaddset(&deflt, SIGPIPE);
    sigaddset(&deflt, SIGXFSZ);
    posix_spawnattr_setsigmask(&at.a, &none);
    posix_spawnattr_setsigdefault(&at.a, &deflt);
    if (o.start_new_session) flags |= POSIX_SPAWN_SETSID;
    if (o.process_group) {
        flags |= POSIX_SPAWN_SETPGROUP;
        posix_spawnattr_setpgroup(&at.a, *o.process_group);
    }
    posix_spawnattr_setflags(&at.a, flags);

    std::vector<char*> cargv;
    cargv.reserve(argv.size() + 1);
    for (const std::string& s : argv) cargv.push_back(const_cast<char*>(s.c_str()));
    cargv.push_back(nullptr);
    std::vector<char*> cenv;
    char** envp = environ;
    if (o.env) {
        cenv.reserve(o.env->size() + 1);
        for (const std::string& s : *o.env) cenv.push_back(const_cast<char*>(s.c_str()));
        cenv.push_back(nullptr);
        envp = cenv.data();
    }

    const std::string& program = argv[0];
    int err = 0;
    if (program.find('/') != std::string::npos) {
        err = ::posix_spawn(&out.pid, program.c_str(), &fa.fa, &at.a, cargv.data(), envp);
    } else {
        // As execvp and CPython: try each PATH entry; ENOENT/ENOTDIR go on,
        // any other error is remembered (the first one is reported).
        const std::string path = exec_path(o);
        int first = 0;
        err = ENOENT;
        std::string_view rest = path;
        for (;;) {
            const std::size_t colon = rest.find(':');
            std::string dir(rest.substr(0, colon));
            std::string full = (dir.empty() ? std::string(".") : dir) + "/" + program;
            // Skip what cannot be run without a spawn (cheap access check).
            if (::access(full.c_str(), X_OK) != 0) {
                const int e = errno;
                if (e != ENOENT && e != ENOTDIR && first == 0) first = e;
            } else {
                err = ::posix_spawn(&out.pid, full.c_str(), &fa.fa, &at.a, cargv.data(), envp);
                if (err == 0) break;
                if (err != ENOENT && err != ENOTDIR) {
                    if (first == 0) first = err;
                    // A failing chdir fails every entry alike: stop there.
                    if (o.cwd && !is_dir(*o.cwd)) break;
                }
            }
            if (colon == std::string_view::npos) break;
            rest.remove_prefix(colon + 1);
        }
        if (err != 0 && first != 0) err = first;
    }
    if (err != 0) {
        // posix_spawn cannot say whether chdir or exec failed: a cwd that is
        // not a directory is named, as CPython names it.
        if (o.cwd && !is_dir(*o.cwd)) {
            int e = err;
            struct stat st {};
            if (::stat(o.cwd->c_str(), &st) != 0) {
                e = errno;
            } else if (!S_ISDIR(st.st_mode)) {
                e = ENOTDIR;
            }
            throw_os_error(e, quoted("chdir", *o.cwd));
        }
        throw_os_error(err, quoted("exec", program));
    }
    parent_ends.fds.clear();  // the caller's now
    return out;
}

}  // namespace pyco::detail
