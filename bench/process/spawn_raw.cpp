// fork + exec against posix_spawn from a parent with a large, touched heap:
// the cost pyco's spawning avoids. No pyco here: the bare system calls.
//
//   spawn_raw [--heap-mib N] [--seconds S]
//
// Touches N MiB (default 2048) of heap, then for S seconds each (default 2)
// runs /bin/true and waits for it: with fork()+execve() (the kernel copies
// the page tables of the whole heap before the child can exec) and with
// posix_spawn() (glibc: clone(CLONE_VM|CLONE_VFORK), nothing copied). Prints
// spawns per second for each, and the same with an empty heap.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

namespace {

using clock_type = std::chrono::steady_clock;

char* const true_argv[] = {const_cast<char*>("/bin/true"), nullptr};

void wait_child(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            std::perror("waitpid");
            std::exit(1);
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "spawn_raw: /bin/true failed\n");
        std::exit(1);
    }
}

void with_fork() {
    pid_t pid = fork();
    if (pid < 0) {
        std::perror("fork");
        std::exit(1);
    }
    if (pid == 0) {
        execve("/bin/true", true_argv, environ);
        _exit(127);
    }
    wait_child(pid);
}

void with_posix_spawn() {
    pid_t pid;
    if (int e = posix_spawn(&pid, "/bin/true", nullptr, nullptr, true_argv, environ); e != 0) {
        std::fprintf(stderr, "posix_spawn: %s\n", std::strerror(e));
        std::exit(1);
    }
    wait_child(pid);
}

double per_second(void (*spawn)(), double seconds) {
    const auto end = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                             std::chrono::duration<double>(seconds));
    const auto t0 = clock_type::now();
    long n = 0;
    while (clock_type::now() < end) {
        spawn();
        ++n;
    }
    return static_cast<double>(n) / std::chrono::duration<double>(clock_type::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t heap_mib = 2048;
    double seconds = 2;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--heap-mib" && i + 1 < argc) heap_mib = std::strtoull(argv[++i], nullptr, 10);
        else if (a == "--seconds" && i + 1 < argc) seconds = std::atof(argv[++i]);
        else {
            std::fprintf(stderr, "usage: spawn_raw [--heap-mib N] [--seconds S]\n");
            return 2;
        }
    }
    std::printf("heap 0 MiB:       fork+exec %8.0f/s   posix_spawn %8.0f/s\n", per_second(with_fork, seconds),
                per_second(with_posix_spawn, seconds));
    std::vector<char> heap(heap_mib << 20);
    for (std::size_t i = 0; i < heap.size(); i += 4096) heap[i] = static_cast<char>(i);
    std::printf("heap %zu MiB: fork+exec %8.0f/s   posix_spawn %8.0f/s\n", heap_mib, per_second(with_fork, seconds),
                per_second(with_posix_spawn, seconds));
    return heap[4096] == 1 ? 3 : 0;  // keep the heap alive and touched
}
