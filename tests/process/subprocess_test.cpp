// create_subprocess_exec / create_subprocess_shell and pyco::process: the
// observable cases of CPython's test_asyncio/test_subprocess.py, and pyco's
// promises (no SIGCHLD handler, no zombie after a drop, cancel safety).
//
// This suite runs three times (tests/CMakeLists.txt): on epoll, on io_uring
// ("uring." prefix), and with the fallback watcher forced
// (PYCO_CHILD_WATCHER=thread, "thread_watcher." prefix, label threads).
#include <pyco/subprocess.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <any>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/net/transport.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>
#include <pyco/timeout.hpp>
#include <pyco/wait.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using pyco::subprocess_options;
namespace sp = pyco::subprocess;

subprocess_options pipes(bool in, bool out, bool err) {
    subprocess_options o;
    if (in) o.stdin = sp::PIPE;
    if (out) o.stdout = sp::PIPE;
    if (err) o.stderr = sp::PIPE;
    return o;
}

// The state letter of /proc/PID/stat ('Z' for a zombie), or 0 if gone.
char proc_state(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s;
    if (!std::getline(f, s)) return 0;
    auto p = s.rfind(')');
    return p == std::string::npos || p + 2 >= s.size() ? 0 : s[p + 2];
}

TEST(Subprocess, StdoutPipeAndExitCode) {
    auto body = []() -> coroutine<void> {
        std::vector<std::string> args{"hello", "world"};
        pyco::process p = co_await pyco::create_subprocess_exec("echo", args, pipes(false, true, false));
        EXPECT_GT(p.pid(), 0);
        EXPECT_FALSE(p.has_stdin());
        EXPECT_EQ(p.stderr, nullptr);
        std::string line = co_await p.stdout->readline();
        EXPECT_EQ(line, "hello world\n");
        int code = co_await p.wait();
        EXPECT_EQ(code, 0);
        EXPECT_EQ(p.returncode(), 0);
    };
    pyco::run(body());
}

// Python's create_subprocess_exec(program, *args) (and the form GCC 12
// compiles: a braced list there is rejected).
TEST(Subprocess, VariadicArguments) {
    auto body = []() -> coroutine<void> {
        std::string code = "exit 3";
        pyco::process q = co_await pyco::create_subprocess_exec("sh", "-c", code);
        EXPECT_EQ(co_await q.wait(), 3);
        pyco::process p = co_await pyco::create_subprocess_exec("true");
        EXPECT_EQ(co_await p.wait(), 0);
    };
    pyco::run(body());
}

TEST(Subprocess, ExitCodes) {
    auto body = []() -> coroutine<void> {
        for (int code : {0, 1, 7, 255}) {
            pyco::process p = co_await pyco::create_subprocess_shell("exit " + std::to_string(code));
            EXPECT_EQ(co_await p.wait(), code);
        }
    };
    pyco::run(body());
}

TEST(Subprocess, CommunicateWithInput) {
    auto body = []() -> coroutine<void> {
        pyco::process p = co_await pyco::create_subprocess_exec("cat", {}, pipes(true, true, false));
        auto [out, err] = co_await p.communicate("some data\n");
        EXPECT_EQ(out, "some data\n");
        EXPECT_EQ(err, "");
        EXPECT_EQ(p.returncode(), 0);
    };
    pyco::run(body());
}

TEST(Subprocess, CommunicateWithoutInputClosesStdin) {
    auto body = []() -> coroutine<void> {
        pyco::process p = co_await pyco::create_subprocess_exec("cat", {}, pipes(true, true, false));
        auto [out, err] = co_await p.communicate();
        EXPECT_EQ(out, "");
        EXPECT_EQ(p.returncode(), 0);
    };
    pyco::run(body());
}

TEST(Subprocess, CommunicateEmptyInput) {
    auto body = []() -> coroutine<void> {
        pyco::process p = co_await pyco::create_subprocess_exec("cat", {}, pipes(true, true, false));
        auto [out, err] = co_await p.communicate(std::string());
        EXPECT_EQ(out, "");
        EXPECT_EQ(p.returncode(), 0);
    };
    pyco::run(body());
}

// Large input and both outputs at once: no deadlock (each is far above the
// pipe's 64 KiB buffer).
TEST(Subprocess, CommunicateLargeBothWays) {
    auto body = []() -> coroutine<void> {
        std::string input(8 * 1024 * 1024, 'x');
        for (std::size_t i = 0; i < input.size(); i += 4096) input[i] = '\n';
        pyco::process p =
            co_await pyco::create_subprocess_shell("tee /dev/stderr", pipes(true, true, true));
        auto [out, err] = co_await p.communicate(input);
        EXPECT_EQ(out.size(), input.size());
        EXPECT_TRUE(out == input);
        EXPECT_TRUE(err == input);
        EXPECT_EQ(p.returncode(), 0);
    };
    pyco::run(body());
}

TEST(Subprocess, StdinStdoutStderrPipes) {
    auto body = []() -> coroutine<void> {
        pyco::process p = co_await pyco::create_subprocess_shell(
            "read x; echo out:$x; echo err:$x >&2; exit 4", pipes(true, true, true));
        p.stdin.write("abc\n");
        co_await p.stdin.drain();
        std::string o = co_await p.stdout->readline();
        std::string e = co_await p.stderr->readline();
        EXPECT_EQ(o, "out:abc\n");
        EXPECT_EQ(e, "err:abc\n");
        p.stdin.close();
        EXPECT_EQ(co_await p.wait(), 4);
    };
    pyco::run(body());
}

TEST(Subprocess, Shell) {
    auto body = []() -> coroutine<void> {
        pyco::process p = co_await pyco::create_subprocess_shell("echo $((6*7)) | cat", pipes(false, true, false));
        auto [out, err] = co_await p.communicate();
        EXPECT_EQ(out, "42\n");
    };
    pyco::run(body());
}

TEST(Subprocess, KillTerminateSendSignal) {
    auto body = []() -> coroutine<void> {
        std::vector<std::string> args{"100"};
        pyco::process p = co_await pyco::create_subprocess_exec("sleep", args);
        p.kill();
        EXPECT_EQ(co_await p.wait(), -SIGKILL);
        pyco::process q = co_await pyco::create_subprocess_exec("sleep", args);
        q.terminate();
        EXPECT_EQ(co_await q.wait(), -SIGTERM);
        pyco::process r = co_await pyco::create_subprocess_exec("sleep", args);
        r.send_signal(SIGHUP);
        EXPECT_EQ(co_await r.wait(), -SIGHUP);
    };
    pyco::run(body());
}

// CPython 3.12: signalling a process whose wait() completed raises
// ProcessLookupError; one that exited but was not waited for is ignored.
TEST(Subprocess, SignalAfterExit) {
    auto body = []() -> coroutine<void> {
        pyco::process p = co_await pyco::create_subprocess_exec("true");
        EXPECT_EQ(co_await p.wait(), 0);
        EXPECT_THROW(p.kill(), pyco::process_lookup_error);
        EXPECT_THROW(p.send_signal(SIGTERM), pyco::process_lookup_error);
        // Exited (reaped) but its stdout pipe is still open (a grandchild
        // holds it): not finished.
        pyco::process q = co_await pyco::create_subprocess_shell("sleep 0.3 & exit 0", pipes(false, true, false));
        while (!q.returncode()) co_await pyco::sleep(1ms);
        q.kill();  // ignored
        EXPECT_EQ(co_await q.stdout->read(), "");
        EXPECT_EQ(co_await q.wait(), 0);
    };
    pyco::run(body());
}

// The child starts with SIGPIPE at its default and no signal blocked, even
// when the parent ignores SIGPIPE and blocks SIGTERM.
TEST(Subprocess, ChildSignalsAreReset) {
    auto body = []() -> coroutine<void> {
        pyco::process p = co_await pyco::create_subprocess_shell(
            "grep -E '^(SigBlk|SigIgn)' /proc/self/status", pipes(false, true, false));
        auto [out, err] = co_await p.communicate();
        EXPECT_NE(out.find("SigBlk:\t0000000000000000"), std::string::npos) << out;
        // SIGPIPE (13) is bit 12: not ignored.
        auto pos = out.find("SigIgn:\t");
        EXPECT_NE(pos, std::string::npos);
        unsigned long long ign = std::stoull(out.substr(pos + 8, 16), nullptr, 16);
        EXPECT_EQ(ign & (1ull << (SIGPIPE - 1)), 0u) << out;
    };
    struct sigaction old {};
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &old);
    sigset_t set, oldset;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &oldset);
    pyco::run(body());
    pthread_sigmask(SIG_SETMASK, &oldset, nullptr);
    sigaction(SIGPIPE, &old, nullptr);
}

// A child that exits without reading: the broken pipe is ignored by
// communicate(), as CPython does.
TEST(Subprocess, StdinBrokenPipe) {
    auto body = []() -> coroutine<void> {
        pyco::process p = co_await pyco::create_subprocess_exec("true", {}, pipes(true, false, false));
        std::string big(4 * 1024 * 1024, 'z');
        auto [out, err] = co_await p.communicate(big);
        EXPECT_EQ(p.returncode(), 0);
    };
    pyco::run(body());
}

// Writing to a child that is gone: drain raises (broken pipe or lost).
TEST(Subprocess, StdinDrainAfterChildExit) {
    auto body = []() -> coroutine<void> {
        pyco::process p = co_await pyco::create_subprocess_exec("true", {}, pipes(true, false, false));
        std::string big(1024 * 1024, 'z');
        bool raised = false;
        try {
            for (int i = 0; i < 20; ++i) {
                p.stdin.write(big);
                co_await p.stdin.drain();
            }
        } catch (const pyco::connection_error&) {
            raised = true;
        }
        EXPECT_TRUE(raised);
        EXPECT_EQ(co_await p.wait(), 0);
    };
    pyco::run(body());
}

TEST(Subprocess, Devnull) {
    auto body = []() -> coroutine<void> {
        subprocess_options o;
        o.stdin = sp::DEVNULL;
        o.stdout = sp::PIPE;
        o.stderr = sp::DEVNULL;
        pyco::process p = co_await pyco::create_subprocess_shell("cat; echo done; echo noise >&2", o);
        auto [out, err] = co_await p.communicate();
        EXPECT_EQ(out, "done\n");
        EXPECT_EQ(err, "");
    };
    pyco::run(body());
}

TEST(Subprocess, StderrToStdout) {
    auto body = []() -> coroutine<void> {
        subprocess_options o;
        o.stdout = sp::PIPE;
        o.stderr = sp::STDOUT;
        pyco::process p = co_await pyco::create_subprocess_shell("echo a; echo b >&2", o);
        EXPECT_EQ(p.stderr, nullptr);
        auto [out, err] = co_await p.communicate();
        EXPECT_EQ(out, "a\nb\n");
    };
    pyco::run(body());
}

TEST(Subprocess, StdoutToAnFd) {
    char path[] = "/tmp/proc_outXXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    auto body = [fd]() -> coroutine<void> {
        subprocess_options o;
        o.stdout = fd;
        pyco::process p = co_await pyco::create_subprocess_shell("echo to-file", o);
        EXPECT_EQ(co_await p.wait(), 0);
    };
    pyco::run(body());
    ::close(fd);
    std::ifstream f(path);
    std::string s;
    std::getline(f, s);
    EXPECT_EQ(s, "to-file");
    ::unlink(path);
}

TEST(Subprocess, WaitTwiceAndAfterExit) {
    auto body = []() -> coroutine<void> {
        pyco::process p = co_await pyco::create_subprocess_shell("exit 5");
        co_await pyco::sleep(50ms);
        EXPECT_EQ(co_await p.wait(), 5);
        EXPECT_EQ(co_await p.wait(), 5);
    };
    pyco::run(body());
}

TEST(Subprocess, ReadStdoutAfterExit) {
    auto body = []() -> coroutine<void> {
        pyco::process p = co_await pyco::create_subprocess_shell("echo one; echo two", pipes(false, true, false));
        while (!p.returncode()) co_await pyco::sleep(1ms);
        EXPECT_EQ(co_await p.stdout->read(), "one\ntwo\n");
        EXPECT_EQ(co_await p.wait(), 0);
    };
    pyco::run(body());
}

TEST(Subprocess, CancelWaitLeavesChildRunning) {
    auto body = []() -> coroutine<void> {
        pyco::process p = co_await pyco::create_subprocess_exec("sh", {}, pipes(true, false, false));
        bool timed_out = false;
        try {
            co_await pyco::wait_for(p.wait(), 20ms);
        } catch (const pyco::timeout_error&) {
            timed_out = true;
        }
        EXPECT_TRUE(timed_out);
        EXPECT_FALSE(p.returncode());
        EXPECT_EQ(proc_state(p.pid()) == 'Z', false);
        p.stdin.write("exit 9\n");
        EXPECT_EQ(co_await p.wait(), 9);
    };
    pyco::run(body());
}

TEST(Subprocess, CancelCommunicateLeavesChildRunning) {
    auto body = []() -> coroutine<void> {
        pyco::process p = co_await pyco::create_subprocess_shell("echo first; echo second; exec sleep 100", pipes(true, true, false));
        std::string first = co_await p.stdout->readline();
        EXPECT_EQ(first, "first\n");
        pyco::task<std::pair<std::string, std::string>> t = pyco::create_task(p.communicate());
        co_await pyco::sleep(20ms);
        t.cancel();
        bool cancelled = false;
        try {
            co_await t;
        } catch (const pyco::cancelled_error&) {
            cancelled = true;
        }
        EXPECT_TRUE(cancelled);
        EXPECT_FALSE(p.returncode());
        // What the cancelled communicate() had read is still there.
        EXPECT_EQ(co_await p.stdout->readline(), "second\n");
        p.kill();
        EXPECT_EQ(co_await p.wait(), -SIGKILL);
    };
    pyco::run(body());
}

TEST(Subprocess, Cwd) {
    auto body = []() -> coroutine<void> {
        subprocess_options o = pipes(false, true, false);
        o.cwd = "/usr";
        pyco::process p = co_await pyco::create_subprocess_exec("pwd", {}, o);
        auto [out, err] = co_await p.communicate();
        EXPECT_EQ(out, "/usr\n");
    };
    pyco::run(body());
}

TEST(Subprocess, Env) {
    auto body = []() -> coroutine<void> {
        subprocess_options o = pipes(false, true, false);
        o.env = std::vector<std::string>{"PYCO_TEST_VAR=value 1", "PATH=/usr/bin:/bin"};
        pyco::process p = co_await pyco::create_subprocess_shell("echo \"$PYCO_TEST_VAR\"; env | wc -l", o);
        auto [out, err] = co_await p.communicate();
        // sh may add PWD, SHLVL, _ of its own: the variable arrived, and the
        // parent's environment (HOME...) did not.
        EXPECT_EQ(out.substr(0, out.find('\n')), "value 1");
        EXPECT_LT(std::stoi(out.substr(out.find('\n') + 1)), 8);
    };
    pyco::run(body());
}

// A program name is searched in the PATH of env=, as Python does.
TEST(Subprocess, EnvPathSearch) {
    auto body = []() -> coroutine<void> {
        subprocess_options o;
        o.env = std::vector<std::string>{"PATH=/nonexistent"};
        bool raised = false;
        try {
            (void)co_await pyco::create_subprocess_exec("true", {}, o);
        } catch (const pyco::file_not_found_error&) {
            raised = true;
        }
        EXPECT_TRUE(raised);
    };
    pyco::run(body());
}

TEST(Subprocess, ExecFailures) {
    auto body = []() -> coroutine<void> {
        try {
            (void)co_await pyco::create_subprocess_exec("pyco-no-such-program");
            ADD_FAILURE() << "no exception";
        } catch (const pyco::file_not_found_error& e) {
            EXPECT_EQ(e.code().value(), ENOENT);
            EXPECT_STREQ(e.what(), "exec 'pyco-no-such-program': No such file or directory");
        }
        try {
            (void)co_await pyco::create_subprocess_exec("/etc/passwd");
            ADD_FAILURE() << "no exception";
        } catch (const pyco::permission_error& e) {
            EXPECT_EQ(e.code().value(), EACCES);
        }
        try {
            subprocess_options o;
            o.cwd = "/pyco-no-such-dir";
            (void)co_await pyco::create_subprocess_exec("true", {}, o);
            ADD_FAILURE() << "no exception";
        } catch (const pyco::file_not_found_error& e) {
            EXPECT_STREQ(e.what(), "chdir '/pyco-no-such-dir': No such file or directory");
        }
    };
    pyco::run(body());
}

TEST(Subprocess, PassFdsAndCloseFds) {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    int leaky = ::open("/dev/null", O_RDONLY);  // not close-on-exec
    ASSERT_GE(leaky, 0);
    auto body = [&]() -> coroutine<void> {
        subprocess_options o = pipes(false, true, false);
        o.pass_fds = {p[1]};
        std::string cmd = "echo via-fd >&" + std::to_string(p[1]) + "; ls /proc/self/fd";
        pyco::process c = co_await pyco::create_subprocess_shell(cmd, o);
        auto [out, err] = co_await c.communicate();
        // The leaky fd was closed by close_fds; the passed one was kept.
        std::string fds = " " + out;
        for (char& ch : fds) if (ch == '\n') ch = ' ';
        EXPECT_EQ(fds.find(" " + std::to_string(leaky) + " "), std::string::npos) << out;
        EXPECT_NE(fds.find(" " + std::to_string(p[1]) + " "), std::string::npos) << out;
        // close_fds=false: the leaky fd is inherited.
        subprocess_options o2 = pipes(false, true, false);
        o2.close_fds = false;
        pyco::process d = co_await pyco::create_subprocess_shell("ls /proc/self/fd", o2);
        auto [out2, err2] = co_await d.communicate();
        std::string fds2 = " " + out2;
        for (char& ch : fds2) if (ch == '\n') ch = ' ';
        EXPECT_NE(fds2.find(" " + std::to_string(leaky) + " "), std::string::npos) << out2;
    };
    pyco::run(body());
    char buf[64] = {};
    ssize_t n = ::read(p[0], buf, sizeof buf - 1);
    EXPECT_EQ(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0), "via-fd\n");
    ::close(p[0]);
    ::close(p[1]);
    ::close(leaky);
}

TEST(Subprocess, StartNewSession) {
    auto body = []() -> coroutine<void> {
        subprocess_options o = pipes(false, true, false);
        o.start_new_session = true;
        std::vector<std::string> args{"-d", " ", "-f5,6", "/proc/self/stat"};
        pyco::process q = co_await pyco::create_subprocess_exec("cut", args, o);
        auto [out, err] = co_await q.communicate();
        // pgid and sid (fields 5 and 6) are the child's own pid.
        std::string want = std::to_string(q.pid()) + " " + std::to_string(q.pid()) + "\n";
        EXPECT_EQ(out, want);
    };
    pyco::run(body());
}

TEST(Subprocess, ProcessGroup) {
    auto body = []() -> coroutine<void> {
        subprocess_options o = pipes(false, true, false);
        o.process_group = 0;
        std::vector<std::string> args{"-d", " ", "-f5,6", "/proc/self/stat"};
        pyco::process q = co_await pyco::create_subprocess_exec("cut", args, o);
        auto [out, err] = co_await q.communicate();
        std::string want = std::to_string(q.pid()) + " " + std::to_string(::getsid(0)) + "\n";
        EXPECT_EQ(out, want);
    };
    pyco::run(body());
}

// No SIGCHLD handler is installed: the application's stays, and is called.
std::atomic<int> g_sigchld{0};
extern "C" void on_sigchld(int) { g_sigchld.fetch_add(1); }

TEST(Subprocess, ApplicationSigchldHandlerUntouched) {
    struct sigaction sa {};
    sa.sa_handler = on_sigchld;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    struct sigaction old {};
    ASSERT_EQ(sigaction(SIGCHLD, &sa, &old), 0);
    g_sigchld = 0;
    auto body = []() -> coroutine<void> {
        pyco::process p = co_await pyco::create_subprocess_exec("true");
        EXPECT_EQ(co_await p.wait(), 0);
    };
    pyco::run(body());
    struct sigaction now {};
    sigaction(SIGCHLD, nullptr, &now);
    EXPECT_EQ(now.sa_handler, &on_sigchld);
    EXPECT_GE(g_sigchld.load(), 1);
    sigaction(SIGCHLD, &old, nullptr);
}

// Dropping the process before the child exits: no kill, no zombie.
TEST(Subprocess, DropBeforeExitLeavesNoZombie) {
    pid_t pid = -1;
    auto body = [&]() -> coroutine<void> {
        {
            pyco::process p = co_await pyco::create_subprocess_exec("sleep", "0.2");
            pid = p.pid();
        }
        // Still running after the drop (not killed).
        EXPECT_NE(proc_state(pid), 0);
        EXPECT_NE(proc_state(pid), 'Z');
        for (int i = 0; i < 400 && proc_state(pid) != 0; ++i) co_await pyco::sleep(10ms);
        EXPECT_EQ(proc_state(pid), 0) << "left as " << proc_state(pid);
    };
    pyco::run(body());
}

// The loop closes while the child runs: it is reaped in the background.
TEST(Subprocess, LoopClosedBeforeExitLeavesNoZombie) {
    pid_t pid = -1;
    auto body = [&]() -> coroutine<void> {
        pyco::process p = co_await pyco::create_subprocess_exec("sleep", "0.2");
        pid = p.pid();
    };
    pyco::run(body());
    for (int i = 0; i < 400 && proc_state(pid) != 0; ++i) ::usleep(10000);
    EXPECT_EQ(proc_state(pid), 0) << "left as " << proc_state(pid);
}

std::size_t open_fd_count() {
    std::size_t n = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

// test_popen_error: a failed spawn leaks no pipe.
TEST(Subprocess, FailedSpawnLeaksNoFd) {
    auto body = []() -> coroutine<void> {
        const std::size_t before = open_fd_count();
        for (int i = 0; i < 3; ++i) {
            try {
                (void)co_await pyco::create_subprocess_exec("pyco-no-such-program", {}, pipes(true, true, true));
            } catch (const pyco::file_not_found_error&) {
            }
        }
        EXPECT_EQ(open_fd_count(), before);
    };
    pyco::run(body());
}

// test_stdin_not_inheritable: the parent's pipe ends are close-on-exec, so
// a later child (even with close_fds=false) does not inherit them.
TEST(Subprocess, ParentPipeEndsAreNotInherited) {
    auto body = []() -> coroutine<void> {
        pyco::process a = co_await pyco::create_subprocess_exec("cat", {}, pipes(true, true, false));
        subprocess_options o = pipes(false, true, false);
        o.close_fds = false;
        std::vector<std::string> args{"/proc/self/fd"};
        pyco::process b = co_await pyco::create_subprocess_exec("ls", args, o);
        auto [out, err] = co_await b.communicate();
        std::string fds = " " + out;
        for (char& ch : fds) if (ch == '\n') ch = ' ';
        for (int fd : {0, 1}) {
            std::any pipe_fd = a.transport()->get_pipe_transport(fd)->get_extra_info("pipe");
            int n = std::any_cast<int>(pipe_fd);
            EXPECT_EQ(fds.find(" " + std::to_string(n) + " "), std::string::npos) << n << " in " << out;
        }
        a.stdin.close();
        (void)co_await a.communicate();
    };
    pyco::run(body());
}

// test_pause_reading: a small limit pauses the stdout pipe while nobody
// reads; reading resumes it; nothing is lost.
TEST(Subprocess, StdoutFlowControlPausesThePipe) {
    auto body = []() -> coroutine<void> {
        subprocess_options o = pipes(false, true, false);
        o.limit = 1024;
        std::vector<std::string> args{"-c", "1000000", "/dev/zero"};
        pyco::process p = co_await pyco::create_subprocess_exec("head", args, o);
        std::shared_ptr<pyco::transport> pipe = p.transport()->get_pipe_transport(1);
        for (int i = 0; i < 1000 && pipe->is_reading(); ++i) co_await pyco::sleep(1ms);
        EXPECT_FALSE(pipe->is_reading());
        std::string all = co_await p.stdout->read();
        EXPECT_EQ(all.size(), 1000000u);
        EXPECT_EQ(co_await p.wait(), 0);
    };
    pyco::run(body());
}

TEST(Subprocess, BadOptions) {
    auto body = []() -> coroutine<void> {
        subprocess_options o;
        o.stdout = sp::STDOUT;
        bool raised = false;
        try {
            (void)co_await pyco::create_subprocess_exec("true", {}, o);
        } catch (const pyco::value_error&) {
            raised = true;
        }
        EXPECT_TRUE(raised);
    };
    pyco::run(body());
}

}  // namespace
