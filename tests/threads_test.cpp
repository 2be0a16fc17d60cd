// Threads and the loop: call_soon_threadsafe, executors, to_thread,
// run_coroutine_threadsafe, one loop per thread. Run under TSan (label
// "threads").
#include <pyco/threads.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <pyco/run.hpp>
#include <pyco/sleep.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using pyco::event_loop;

TEST(Threads, CallSoonThreadsafeWakesABlockedLoopAtOnce) {
    event_loop loop;
    bool stopped_by_thread = false;
    // The loop has nothing to do: it blocks in the backend until woken.
    // A watchdog timer fails the test instead of hanging it.
    auto watchdog = loop.call_later(10s, [&] { loop.stop(); });
    std::thread t([&] {
        std::this_thread::sleep_for(20ms);
        loop.call_soon_threadsafe([&] {
            stopped_by_thread = true;
            loop.stop();
        });
    });
    const auto t0 = std::chrono::steady_clock::now();
    loop.run_forever();
    t.join();
    EXPECT_TRUE(stopped_by_thread);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    watchdog.cancel();
}

TEST(Threads, CallSoonThreadsafeKeepsOrderAndTakesMoveOnlyCallables) {
    event_loop loop;
    std::vector<int> got;
    std::thread t([&] {
        for (int i = 0; i < 100; ++i) {
            auto p = std::make_unique<int>(i);
            loop.call_soon_threadsafe([&got, p = std::move(p)] { got.push_back(*p); });
        }
        loop.call_soon_threadsafe([&] { loop.stop(); });
    });
    loop.run_forever();
    t.join();
    ASSERT_EQ(got.size(), 100u);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], i);
}

TEST(Threads, ClosedLoopRefusesThreadsafeCalls) {
    auto proxy = [] {
        event_loop loop;
        auto p = loop.proxy();
        loop.close();
        EXPECT_THROW(loop.call_soon_threadsafe([] {}), pyco::runtime_error);
        return p;
    }();
    EXPECT_TRUE(proxy->closed());
    EXPECT_FALSE(proxy->post([] {}));  // the loop is gone: refused, not UB
}

TEST(Threads, RunInExecutorGivesTheResultOnTheLoop) {
    auto body = []() -> coroutine<std::string> {
        auto loop_thread = std::this_thread::get_id();
        auto fut = pyco::get_running_loop().run_in_executor([loop_thread] {
            EXPECT_NE(std::this_thread::get_id(), loop_thread);
            return std::string("from a worker");
        });
        co_return co_await fut;
    };
    EXPECT_EQ(pyco::run(body()), "from a worker");
}

TEST(Threads, RunInExecutorPropagatesExceptions) {
    auto body = []() -> coroutine<std::string> {
        auto fut = pyco::get_running_loop().run_in_executor([]() -> int { throw pyco::value_error("in thread"); });
        try {
            co_await fut;
        } catch (const pyco::value_error& e) {
            co_return e.what();
        }
        co_return "no";
    };
    EXPECT_EQ(pyco::run(body()), "in thread");
}

TEST(Threads, ToThreadPassesArguments) {
    auto body = []() -> coroutine<int> {
        int a = co_await pyco::to_thread([](int x, int y) { return x * y; }, 6, 7);
        co_await pyco::to_thread([] {});  // void works too
        co_return a;
    };
    EXPECT_EQ(pyco::run(body()), 42);
}

TEST(Threads, CancellingATaskInToThreadRaisesAtOnceAndDropsTheResult) {
    std::atomic<bool> release{false};
    std::atomic<bool> finished{false};
    auto body = [&]() -> coroutine<std::string> {
        auto waiter = [&]() -> coroutine<int> {
            co_return co_await pyco::to_thread([&] {
                while (!release.load()) std::this_thread::sleep_for(1ms);
                finished = true;
                return 1;
            });
        };
        auto t = pyco::create_task(waiter());
        co_await pyco::sleep(10ms);
        t.cancel();
        std::string r = "not cancelled";
        try {
            co_await t;
        } catch (const pyco::cancelled_error&) {
            r = "cancelled while the thread still ran";
        }
        EXPECT_FALSE(finished.load());
        release = true;  // the thread finishes; pyco::run joins it
        co_return r;
    };
    EXPECT_EQ(pyco::run(body()), "cancelled while the thread still ran");
    EXPECT_TRUE(finished.load());
}

TEST(Threads, ThreadPoolStartsThreadsAsWorkArrivesUpToItsBound) {
    EXPECT_EQ(pyco::thread_pool_executor::default_max_workers(),
              std::min<std::size_t>(32, std::max(1u, std::thread::hardware_concurrency()) + 4));
    pyco::thread_pool_executor pool(2);
    EXPECT_EQ(pool.threads_started(), 0u);
    std::atomic<int> done{0};
    for (int i = 0; i < 10; ++i) pool.submit([&] { ++done; });
    pool.shutdown(true);
    EXPECT_EQ(done.load(), 10);
    EXPECT_LE(pool.threads_started(), 2u);
    try {
        pool.submit([] {});
        FAIL();
    } catch (const pyco::runtime_error& e) {
        EXPECT_STREQ(e.what(), "cannot schedule new futures after shutdown");
    }
    EXPECT_THROW(pyco::thread_pool_executor(0), pyco::value_error);
}

TEST(Threads, RunInAGivenExecutor) {
    pyco::thread_pool_executor pool(1);
    auto body = [&]() -> coroutine<int> {
        co_return co_await pyco::get_running_loop().run_in_executor(pool, [] { return 9; });
    };
    EXPECT_EQ(pyco::run(body()), 9);
}

coroutine<int> later(int v) {
    co_await pyco::sleep(5ms);
    co_return v;
}

TEST(Threads, RunCoroutineThreadsafeFromAnotherThread) {
    event_loop loop;
    std::thread other([&] {
        auto f = pyco::run_coroutine_threadsafe(later(11), loop);
        EXPECT_EQ(f.get(), 11);
        auto failing = [](int) -> coroutine<int> { throw pyco::value_error("remote failure"); co_return 0; };
        auto g = pyco::run_coroutine_threadsafe(failing(0), loop);
        EXPECT_THROW(g.get(), pyco::value_error);
        loop.call_soon_threadsafe([&] { loop.stop(); });
    });
    loop.run_forever();
    other.join();
}

TEST(Threads, CancellingTheThreadsafeFutureCancelsTheTask) {
    event_loop loop;
    std::thread other([&] {
        auto forever = []() -> coroutine<int> {
            co_await pyco::sleep(1h);
            co_return 0;
        };
        auto f = pyco::run_coroutine_threadsafe(forever(), loop);
        std::this_thread::sleep_for(10ms);
        EXPECT_TRUE(f.cancel());
        EXPECT_THROW(f.get(), pyco::cancelled_error);
        loop.call_soon_threadsafe([&] { loop.stop(); });
    });
    loop.run_forever();
    other.join();
}

TEST(Threads, DebugModeReportsLoopCallsFromAnotherThread) {
    event_loop loop({.debug = true});
    std::string error;
    loop.call_soon([&] {
        std::thread t([&] {
            try {
                loop.call_soon([] {});
            } catch (const pyco::runtime_error& e) {
                error = e.what();
            }
        });
        t.join();
        loop.stop();
    });
    loop.run_forever();
    EXPECT_NE(error.find("Non-thread-safe operation invoked on an event loop other than the current one"),
              std::string::npos)
        << error;
}

TEST(Threads, OneLoopPerThreadRunsSideBySide) {
    auto work = [](int id) -> coroutine<int> {
        int sum = 0;
        for (int i = 0; i < 1000; ++i) {
            co_await pyco::sleep(0s);
            sum += id;
        }
        co_return sum;
    };
    std::vector<int> results(4);
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
        threads.emplace_back([&, i] { results[static_cast<std::size_t>(i)] = pyco::run(work(i + 1)); });
    }
    for (auto& t : threads) t.join();
    for (int i = 0; i < 4; ++i) EXPECT_EQ(results[static_cast<std::size_t>(i)], 1000 * (i + 1));
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

// --- a job still running when main returns --------------------------------

std::atomic<bool> g_main_returned{false};

// asyncio.run joins the default executor from a helper thread while the
// loop keeps running, so a job that still needs the loop finishes. Run in a
// child: a hang there is ended by alarm() and fails the test.
[[noreturn]] void job_waiting_for_the_loop_at_exit() {
    ::alarm(30);
    std::atomic<int> got{0};
    auto main_coro = [&]() -> coroutine<int> {
        event_loop& loop = pyco::get_running_loop();
        auto job = [&loop, &got] {
            while (!g_main_returned.load()) std::this_thread::sleep_for(1ms);
            std::this_thread::sleep_for(20ms);  // run() is shutting down by now
            got = pyco::run_coroutine_threadsafe(later(5), loop).get();
        };
        auto running = pyco::create_task(pyco::to_thread(job));  // still running at the end
        co_await pyco::sleep(0s);
        g_main_returned = true;
        co_return 1;
    };
    const int r = pyco::run(main_coro());
    end_child(r == 1 && got.load() == 5 ? 0 : 2);
}

TEST(Threads, AJobStillRunningWhenMainReturnsMayStillUseTheLoop) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(job_waiting_for_the_loop_at_exit(), ::testing::ExitedWithCode(0), "");
}

// --- awaiters resumed from another thread ----------------------------------

// A thread-pool awaitable as users write them: await_suspend hands the
// coroutine's handle to another thread, which resumes it there.
class resume_elsewhere {
public:
    explicit resume_elsewhere(std::chrono::milliseconds delay) : delay_(delay) {}
    ~resume_elsewhere() { join(); }
    void join() {
        std::lock_guard<std::mutex> lock(m_);
        for (std::thread& t : threads_) t.join();
        threads_.clear();
    }

    struct awaiter {
        resume_elsewhere* pool;
        int value;
        bool await_ready() const noexcept { return false; }
        void await_suspend(std::coroutine_handle<> h) const {
            std::lock_guard<std::mutex> lock(pool->m_);
            pool->threads_.emplace_back([h, d = pool->delay_] {
                std::this_thread::sleep_for(d);
                h.resume();
            });
        }
        int await_resume() const noexcept { return value; }
    };
    awaiter operator()(int v) { return {this, v}; }

private:
    std::mutex m_;
    std::vector<std::thread> threads_;
    std::chrono::milliseconds delay_;
};

TEST(Threads, AForeignAwaiterResumedOnAnotherThreadWakesTheSleepingLoop) {
    resume_elsewhere elsewhere(20ms);  // the loop is asleep in epoll by then
    int watchdog_fired = 0;
    auto body = [&]() -> coroutine<int> {
        // Bounds each sleep of a loop nobody wakes, and counts them.
        auto watch = [](int& fired) -> coroutine<void> {
            for (;;) {
                co_await pyco::sleep(2s);
                ++fired;
            }
        };
        auto watchdog = pyco::create_task(watch(watchdog_fired));
        const auto loop_thread = std::this_thread::get_id();
        int sum = 0;
        for (int i = 1; i <= 3; ++i) {
            sum += co_await elsewhere(i);
            EXPECT_EQ(std::this_thread::get_id(), loop_thread);  // back on the loop
        }
        watchdog.cancel();
        co_return sum;
    };
    EXPECT_EQ(pyco::run(body()), 6);
    EXPECT_EQ(watchdog_fired, 0) << "the loop slept through a resume from another thread";
}

TEST(Threads, ManyForeignResumesFromOtherThreadsWhileTheLoopIsBusy) {
    resume_elsewhere elsewhere(0ms);
    auto body = [&]() -> coroutine<int> {
        bool stop = false;
        auto spinner = [](bool& s) -> coroutine<int> {
            int n = 0;
            while (!s) {
                co_await pyco::sleep(0s);  // keeps the ready queue busy
                ++n;
            }
            co_return n;
        };
        auto busy = pyco::create_task(spinner(stop));
        auto awaiting = [&](int k) -> coroutine<int> {
            int sum = 0;
            for (int i = 0; i < 50; ++i) sum += co_await elsewhere(k);
            co_return sum;
        };
        auto a = pyco::create_task(awaiting(1));
        auto b = pyco::create_task(awaiting(2));
        int total = co_await a;
        total += co_await b;
        stop = true;
        co_await busy;
        co_return total;
    };
    EXPECT_EQ(pyco::run(body()), 150);
}

TEST(Threads, CancellingATaskWaitingOnAnotherThreadRaisesWhenItIsResumed) {
    resume_elsewhere elsewhere(20ms);
    auto body = [&]() -> coroutine<std::string> {
        auto victim = [&]() -> coroutine<int> { co_return co_await elsewhere(1); };
        auto t = pyco::create_task(victim());
        co_await pyco::sleep(0s);  // t now waits for the other thread
        t.cancel();
        try {
            co_await t;
        } catch (const pyco::cancelled_error&) {
            co_return "cancelled";
        }
        co_return "not cancelled";
    };
    EXPECT_EQ(pyco::run(body()), "cancelled");
}

}  // namespace
