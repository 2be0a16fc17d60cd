// Signals: handlers run on the loop; pyco::run turns Ctrl-C into
// cancellation of main. Real signals are sent to the test process.
#include <pyco/event_loop.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/threads.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using pyco::event_loop;

TEST(Signals, HandlerRunsOnTheLoopWhenTheSignalArrives) {
    event_loop loop;
    std::vector<std::string> tr;
    loop.add_signal_handler(SIGUSR1, [&] {
        tr.push_back("usr1 on the loop");
        loop.stop();
    });
    loop.call_soon([] { ::kill(::getpid(), SIGUSR1); });
    auto watchdog = loop.call_later(10s, [&] { loop.stop(); });
    loop.run_forever();
    watchdog.cancel();
    EXPECT_EQ(tr, std::vector<std::string>{"usr1 on the loop"});
    EXPECT_TRUE(loop.remove_signal_handler(SIGUSR1));
    EXPECT_FALSE(loop.remove_signal_handler(SIGUSR1));
}

TEST(Signals, ASignalFromAnotherThreadWakesABlockedLoop) {
    event_loop loop;
    bool got = false;
    loop.add_signal_handler(SIGUSR2, [&] {
        got = true;
        loop.stop();
    });
    std::thread t([] {
        std::this_thread::sleep_for(20ms);
        ::kill(::getpid(), SIGUSR2);
    });
    auto watchdog = loop.call_later(10s, [&] { loop.stop(); });
    loop.run_forever();  // blocked in epoll until the signal's byte arrives
    t.join();
    watchdog.cancel();
    EXPECT_TRUE(got);
    loop.remove_signal_handler(SIGUSR2);
}

TEST(Signals, RemovingRestoresThePreviousAction) {
    event_loop loop;
    struct sigaction before {};
    ::sigaction(SIGUSR1, nullptr, &before);
    loop.add_signal_handler(SIGUSR1, [] {});
    struct sigaction during {};
    ::sigaction(SIGUSR1, nullptr, &during);
    EXPECT_NE(during.sa_handler, before.sa_handler);
    loop.remove_signal_handler(SIGUSR1);
    struct sigaction after {};
    ::sigaction(SIGUSR1, nullptr, &after);
    EXPECT_EQ(after.sa_handler, before.sa_handler);
}

TEST(Signals, BadSignalsAreRefused) {
    event_loop loop;
    EXPECT_THROW(loop.add_signal_handler(0, [] {}), pyco::value_error);
    EXPECT_THROW(loop.add_signal_handler(100000, [] {}), pyco::value_error);
    try {
        loop.add_signal_handler(SIGKILL, [] {});
        FAIL();
    } catch (const pyco::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()), "sig " + std::to_string(SIGKILL) + " cannot be caught");
    }
}

TEST(Signals, OnlyOneLoopOwnsSignalHandlers) {
    event_loop a;
    event_loop b;
    a.add_signal_handler(SIGUSR1, [] {});
    EXPECT_THROW(b.add_signal_handler(SIGUSR2, [] {}), pyco::runtime_error);
    a.close();  // closing gives them up
    EXPECT_NO_THROW(b.add_signal_handler(SIGUSR2, [] {}));
    b.remove_signal_handler(SIGUSR2);
}

TEST(Signals, CtrlCCancelsMainSoItsCleanupRunsThenRunRaisesKeyboardInterrupt) {
    std::vector<std::string> tr;
    auto main_coro = [](std::vector<std::string>& t) -> coroutine<void> {
        try {
            ::kill(::getpid(), SIGINT);  // the user presses Ctrl-C
            co_await pyco::sleep(1h);
        } catch (const pyco::cancelled_error&) {
            t.push_back("main cleaned up");
            throw;
        }
    };
    try {
        pyco::run(main_coro(tr));
        FAIL() << "no keyboard_interrupt";
    } catch (const pyco::keyboard_interrupt&) {
        tr.push_back("keyboard_interrupt");
    }
    EXPECT_EQ(tr, (std::vector<std::string>{"main cleaned up", "keyboard_interrupt"}));
    struct sigaction after {};
    ::sigaction(SIGINT, nullptr, &after);
    EXPECT_EQ(after.sa_handler, SIG_DFL);  // restored
}

TEST(Signals, MainThatSurvivesCtrlCReturnsNormally) {
    auto main_coro = []() -> coroutine<int> {
        bool cancelled = false;
        try {
            ::kill(::getpid(), SIGINT);
            co_await pyco::sleep(1h);
        } catch (const pyco::cancelled_error&) {
            cancelled = true;
        }
        co_return cancelled ? 7 : 0;  // it chose to finish
    };
    EXPECT_EQ(pyco::run(main_coro()), 7);
}

TEST(Signals, SecondCtrlCRaisesAtOnce) {
    auto main_coro = []() -> coroutine<void> {
        bool cancelled = false;
        try {
            ::kill(::getpid(), SIGINT);
            co_await pyco::sleep(1h);
        } catch (const pyco::cancelled_error&) {
            cancelled = true;
        }
        if (cancelled) {
            ::kill(::getpid(), SIGINT);  // impatient user
            co_await pyco::sleep(1h);    // cleanup that would take forever
        }
    };
    EXPECT_THROW(pyco::run(main_coro()), pyco::keyboard_interrupt);
}

TEST(Signals, ProgramsOwnSigintHandlerIsLeftAlone) {
    struct sigaction mine {};
    mine.sa_handler = SIG_IGN;
    struct sigaction old {};
    ::sigaction(SIGINT, &mine, &old);
    auto main_coro = []() -> coroutine<int> {
        ::kill(::getpid(), SIGINT);  // ignored: nothing happens
        co_await pyco::sleep(10ms);
        co_return 1;
    };
    EXPECT_EQ(pyco::run(main_coro()), 1);
    ::sigaction(SIGINT, &old, nullptr);
}

// --- the C handler and the pipe's lifetime ---------------------------------

extern "C" void ignore_signal(int) {}

// The handler may run on any thread while the loop closes its pipe or makes
// a new one: it must never write to a closed fd, nor to whatever reuses its
// number (TSan reports the race on the fd; the check pipe catches a stray
// byte).
TEST(Signals, AHandlerOnAnotherThreadNeverWritesToAClosedPipe) {
    struct sigaction mine {};
    mine.sa_handler = &ignore_signal;  // under pyco's: a signal between loops is harmless
    sigemptyset(&mine.sa_mask);
    struct sigaction old {};
    ASSERT_EQ(::sigaction(SIGUSR1, &mine, &old), 0);
    std::atomic<bool> stop{false};
    std::atomic<int> sent{0};
    std::thread sender([&] {
        // Sent to itself: the handler runs on this thread, not the loop's.
        while (!stop.load()) {
            ::pthread_kill(::pthread_self(), SIGUSR1);
            ++sent;
        }
    });
    int stray = 0;
    for (int i = 0; i < 300; ++i) {
        {
            event_loop loop;
            loop.add_signal_handler(SIGUSR1, [] {});
            if (i % 3 == 0) {
                loop.stop();
                loop.run_forever();  // reads what the handler wrote
            } else {
                std::this_thread::sleep_for(100us);  // the handler writes meanwhile
            }
            if (i % 2 == 0) loop.remove_signal_handler(SIGUSR1);
        }  // closing the loop closes its pipe
        int p[2];
        ASSERT_EQ(::pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);  // likely reuses the numbers
        std::this_thread::yield();
        char buf[64];
        if (::read(p[0], buf, sizeof buf) > 0) ++stray;
        ::close(p[0]);
        ::close(p[1]);
    }
    stop = true;
    sender.join();
    ::sigaction(SIGUSR1, &old, nullptr);
    EXPECT_EQ(stray, 0) << "a late handler wrote into a pipe that reused the loop's fd";
    EXPECT_GT(sent.load(), 0);
}

// Ends a death test's child. Under TSan through exit(), so that a race seen
// in the child fails the test (TSan's exit code) rather than going unseen.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PYCO_TEST_UNDER_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define PYCO_TEST_UNDER_TSAN 1
#endif
[[noreturn]] void end_child(int code) {
#ifdef PYCO_TEST_UNDER_TSAN
    std::exit(code);
#else
    std::_Exit(code);
#endif
}

// --- Ctrl-C while pyco::run shuts down --------------------------------------
// As asyncio.run: keyboard_interrupt comes out of run() (and the loop is
// still closed). Without it the default action would kill the process, so
// each case runs in a child; a hang there is ended by alarm().

coroutine<void> slow_to_cancel() {
    bool cancelled = false;
    try {
        co_await pyco::sleep(1h);
    } catch (const pyco::cancelled_error&) {
        cancelled = true;
    }
    if (cancelled) {
        ::kill(::getpid(), SIGINT);  // the user presses Ctrl-C during the shutdown
        co_await pyco::sleep(1h);    // cleanup that would take forever
    }
}

bool sigint_is_default() {
    struct sigaction now {};
    ::sigaction(SIGINT, nullptr, &now);
    return now.sa_handler == SIG_DFL;
}

[[noreturn]] void ctrl_c_while_cancelling_leftovers() {
    ::alarm(30);
    auto main_coro = []() -> coroutine<int> {
        auto leftover = pyco::create_task(slow_to_cancel());
        co_await pyco::sleep(0s);
        co_return 1;
    };
    try {
        pyco::run(main_coro());
    } catch (const pyco::keyboard_interrupt&) {
        end_child(sigint_is_default() ? 0 : 3);
    }
    end_child(2);
}

TEST(Signals, CtrlCWhileRunCancelsLeftoverTasksRaisesKeyboardInterrupt) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    // The leftover task is still pending when the loop closes, as in CPython.
    EXPECT_EXIT(ctrl_c_while_cancelling_leftovers(), ::testing::ExitedWithCode(0),
                "Task was destroyed but it is pending!");
}

[[noreturn]] void ctrl_c_after_main_failed() {
    ::alarm(30);
    auto main_coro = []() -> coroutine<int> {
        auto leftover = pyco::create_task(slow_to_cancel());
        co_await pyco::sleep(0s);
        throw pyco::value_error("main failed");
    };
    try {
        pyco::run(main_coro());
    } catch (const pyco::keyboard_interrupt&) {
        end_child(0);
    } catch (const pyco::value_error&) {
        end_child(3);
    }
    end_child(2);
}

TEST(Signals, CtrlCDuringShutdownReplacesMainsException) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(ctrl_c_after_main_failed(), ::testing::ExitedWithCode(0), "");
}

[[noreturn]] void ctrl_c_while_a_stopped_main_is_cancelled() {
    ::alarm(30);
    auto main_coro = []() -> coroutine<void> {
        pyco::get_running_loop().stop();  // run() ends with main still pending
        co_await slow_to_cancel();        // which run() then cancels
    };
    try {
        pyco::run(main_coro());
    } catch (const pyco::keyboard_interrupt&) {
        end_child(0);
    } catch (const pyco::runtime_error&) {
        end_child(3);  // "Event loop stopped before Future completed."
    }
    end_child(2);
}

// Once run() shuts down, Ctrl-C raises even if main is still pending: it no
// longer means "cancel main" (CPython restores Python's default handler).
TEST(Signals, CtrlCDuringShutdownRaisesEvenWhileMainIsStillPending) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(ctrl_c_while_a_stopped_main_is_cancelled(), ::testing::ExitedWithCode(0), "");
}

std::atomic<bool> g_release_job{false};
std::atomic<bool> g_job_done{false};
std::atomic<bool> g_main_done{false};

[[noreturn]] void ctrl_c_while_joining_the_executor() {
    ::alarm(30);
    auto main_coro = []() -> coroutine<int> {
        auto job = [] {
            while (!g_main_done.load()) std::this_thread::sleep_for(1ms);
            std::this_thread::sleep_for(20ms);  // run() now joins the executor
            ::kill(::getpid(), SIGINT);
            while (!g_release_job.load()) std::this_thread::sleep_for(1ms);
            g_job_done = true;
        };
        (void)pyco::get_running_loop().run_in_executor(job);
        g_main_done = true;
        co_return 1;
    };
    try {
        pyco::run(main_coro());
    } catch (const pyco::keyboard_interrupt&) {
        const bool job_still_running = !g_job_done.load();
        g_release_job = true;
        while (!g_job_done.load()) std::this_thread::sleep_for(1ms);
        end_child(job_still_running && sigint_is_default() ? 0 : 3);
    }
    end_child(2);
}

// Ctrl-C while run() waits for the default executor's threads: run() raises
// at once (CPython's asyncio.run does too); the job goes on in its thread.
TEST(Signals, CtrlCWhileRunJoinsTheExecutorRaisesKeyboardInterrupt) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(ctrl_c_while_joining_the_executor(), ::testing::ExitedWithCode(0), "");
}

}  // namespace
