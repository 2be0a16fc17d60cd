// Signals: handlers run on the loop; pyco::run turns Ctrl-C into
// cancellation of main. Real signals are sent to the test process.
#include <pyco/event_loop.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <pyco/run.hpp>
#include <pyco/sleep.hpp>

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

}  // namespace
