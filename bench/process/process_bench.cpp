// Subprocesses: spawn + wait per second and pipe throughput, pyco's side.
// bench/process/process_bench.py runs the same with CPython's asyncio and
// uvloop; spawn_raw.cpp compares fork against posix_spawn.
//
//   process_bench [--seconds S] [--mib N]
//
// spawn: create_subprocess_exec("/bin/true") then wait(), one after another,
// for S seconds (default 3): spawns per second.
// pipe: `head -c N MiB /dev/zero` (default 1024) with stdout=PIPE, read in
// 256 KiB chunks until EOF and counted: MiB/s. Beside it, the same producer
// piped into `cat > /dev/null`: what a plain reader of the same pipe does.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <pyco/pyco.hpp>
#include <pyco/subprocess.hpp>

namespace {

using clock_type = std::chrono::steady_clock;

double since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

pyco::coroutine<double> spawn(double seconds) {
    long n = 0;
    const auto t0 = clock_type::now();
    while (since(t0) < seconds) {
        pyco::process p = co_await pyco::create_subprocess_exec("/bin/true");
        int code = co_await p.wait();
        if (code != 0) throw std::runtime_error("/bin/true failed");
        ++n;
    }
    co_return static_cast<double>(n) / since(t0);
}

pyco::coroutine<double> pipe(long mib) {
    const auto t0 = clock_type::now();
    pyco::subprocess_options o;
    o.stdout = pyco::subprocess::PIPE;
    std::vector<std::string> args;
    args.push_back("-c");
    args.push_back(std::to_string(mib << 20));
    args.push_back("/dev/zero");
    pyco::process p = co_await pyco::create_subprocess_exec("head", std::move(args), std::move(o));
    long long total = 0;
    for (;;) {
        std::string chunk = co_await p.stdout->read(256 * 1024);
        if (chunk.empty()) break;
        total += static_cast<long long>(chunk.size());
    }
    (void)co_await p.wait();
    if (total != (mib << 20)) throw std::runtime_error("read " + std::to_string(total) + " bytes");
    co_return static_cast<double>(mib) / since(t0);
}

double cat(long mib) {
    const auto t0 = clock_type::now();
    std::string cmd = "head -c " + std::to_string(mib << 20) + " /dev/zero | cat > /dev/null";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("cat pipeline failed");
    return static_cast<double>(mib) / since(t0);
}

pyco::coroutine<void> amain(double seconds, long mib) {
    const char* backend = pyco::get_running_loop().backend_name();
    double spawns = co_await spawn(seconds);
    std::printf("pyco (%s): spawn+wait /bin/true %.0f/s\n", backend, spawns);
    double mibs = co_await pipe(mib);
    std::printf("pyco (%s): pipe read %.0f MiB/s\n", backend, mibs);
}

}  // namespace

int main(int argc, char** argv) {
    double seconds = 3;
    long mib = 1024;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--seconds" && i + 1 < argc) seconds = std::atof(argv[++i]);
        else if (a == "--mib" && i + 1 < argc) mib = std::atol(argv[++i]);
        else {
            std::fprintf(stderr, "usage: process_bench [--seconds S] [--mib N]\n");
            return 2;
        }
    }
    pyco::run(amain(seconds, mib));
    std::printf("cat: pipe read %.0f MiB/s\n", cat(mib));
    return 0;
}
