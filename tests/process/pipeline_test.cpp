// Subprocesses under load: a pipeline of three processes with pyco in the
// middle (back-pressure through drain), 1 GiB through a pipe with bounded
// memory, and killing a whole process group.
#include <pyco/subprocess.hpp>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <pyco/gather.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using pyco::subprocess_options;
namespace sp = pyco::subprocess;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PYCO_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PYCO_SANITIZED 1
#endif
#endif

#ifdef PYCO_SANITIZED
// ASan keeps freed blocks in a quarantine (256 MiB by default), which the
// RSS bound below would count: keep it small in this binary.
extern "C" const char* __asan_default_options() { return "quarantine_size_mb=8"; }
#endif

// Peak resident set (VmHWM), in KiB.
long vm_hwm_kib() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1;
}

char proc_state(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s;
    if (!std::getline(f, s)) return 0;
    auto p = s.rfind(')');
    return p == std::string::npos || p + 2 >= s.size() ? 0 : s[p + 2];
}

// producer | cat | pyco (copies, with drain) | consumer
TEST(Pipeline, ThreeProcessesAndPycoInTheMiddle) {
    auto body = []() -> coroutine<void> {
        int p[2];
        EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
        subprocess_options o1;
        o1.stdout = p[1];
        std::vector<std::string> a1{"1", "200000"};
        pyco::process prod = co_await pyco::create_subprocess_exec("seq", a1, o1);
        subprocess_options o2;
        o2.stdin = p[0];
        o2.stdout = sp::PIPE;
        pyco::process middle = co_await pyco::create_subprocess_exec("cat", {}, o2);
        ::close(p[0]);  // the children have them now
        ::close(p[1]);
        subprocess_options o3;
        o3.stdin = sp::PIPE;
        o3.stdout = sp::PIPE;
        pyco::process consumer = co_await pyco::create_subprocess_shell("awk '{s+=$1} END {printf \"%d %.0f\\n\", NR, s}'", o3);
        for (;;) {
            std::string chunk = co_await middle.stdout->read(65536);
            if (chunk.empty()) break;
            consumer.stdin.write(chunk);
            co_await consumer.stdin.drain();
        }
        consumer.stdin.close();
        std::string total = co_await consumer.stdout->read();
        EXPECT_EQ(total, "200000 20000100000\n");
        EXPECT_EQ(co_await prod.wait(), 0);
        EXPECT_EQ(co_await middle.wait(), 0);
        EXPECT_EQ(co_await consumer.wait(), 0);
    };
    pyco::run(body());
}

// 1 GiB (256 MiB under sanitizers, which slow every copy ~10x) read
// through process.stdout in chunks: the peak RSS grows by a bounded amount
// (the reader's buffer is bounded by its limit and flow control).
TEST(Pipeline, OneGibThroughAPipeInBoundedMemory) {
#ifdef PYCO_SANITIZED
    const long long total = 256LL << 20;
#else
    const long long total = 1LL << 30;
#endif
    const long before = vm_hwm_kib();
    long long got = 0;
    auto body = [&]() -> coroutine<void> {
        subprocess_options o;
        o.stdout = sp::PIPE;
        std::vector<std::string> args{"-c", std::to_string(total), "/dev/zero"};
        pyco::process p = co_await pyco::create_subprocess_exec("head", args, o);
        for (;;) {
            std::string chunk = co_await p.stdout->read(256 * 1024);
            if (chunk.empty()) break;
            got += static_cast<long long>(chunk.size());
        }
        EXPECT_EQ(co_await p.wait(), 0);
    };
    pyco::run(body());
    EXPECT_EQ(got, total);
    const long after = vm_hwm_kib();
    EXPECT_LT(after - before, 64 * 1024) << "peak RSS grew from " << before << " KiB to " << after << " KiB";
}

// Killing a session's process group takes the grandchildren with it.
void kill_group_test(bool new_session) {
    std::vector<pid_t> grandchildren;
    auto body = [&]() -> coroutine<void> {
        subprocess_options o;
        o.stdout = sp::PIPE;
        if (new_session) {
            o.start_new_session = true;
        } else {
            o.process_group = 0;
        }
        // Two grandchildren; their pids on stdout; the grandchildren's
        // stdout goes elsewhere, so that the pipe closes with the shell.
        pyco::process p = co_await pyco::create_subprocess_shell(
            "sleep 100 >/dev/null & echo $!; sleep 100 >/dev/null & echo $!; wait", o);
        for (int i = 0; i < 2; ++i) {
            std::string line = co_await p.stdout->readline();
            grandchildren.push_back(std::stoi(line));
        }
        for (pid_t g : grandchildren) EXPECT_EQ(::getpgid(g), p.pid());
        EXPECT_EQ(::killpg(p.pid(), SIGKILL), 0);
        EXPECT_EQ(co_await p.wait(), -SIGKILL);
        // Gone (or a zombie until their new parent reaps them): not running.
        for (pid_t g : grandchildren) {
            for (int i = 0; i < 500 && proc_state(g) != 0 && proc_state(g) != 'Z'; ++i) co_await pyco::sleep(10ms);
            char st = proc_state(g);
            EXPECT_TRUE(st == 0 || st == 'Z') << g << " is " << st;
        }
    };
    pyco::run(body());
    EXPECT_EQ(grandchildren.size(), 2u);
}

TEST(Pipeline, KillProcessGroupOfNewSession) { kill_group_test(true); }
TEST(Pipeline, KillProcessGroup) { kill_group_test(false); }

}  // namespace
