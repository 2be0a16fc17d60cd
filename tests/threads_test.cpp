// Threads and the loop: call_soon_threadsafe, executors, to_thread,
// run_coroutine_threadsafe, one loop per thread. Run under TSan (label
// "threads").
#include <pyco/threads.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
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

}  // namespace
