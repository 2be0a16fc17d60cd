// pyco::run: CPython's test_asyncio/test_runners.py, observable cases.
#include <pyco/run.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <pyco/sleep.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;

TEST(Run, ReturnsMainsResult) {  // test_asyncio_run_return
    auto main_coro = []() -> coroutine<int> {
        co_await pyco::sleep(0s);
        co_return 42;
    };
    EXPECT_EQ(pyco::run(main_coro()), 42);
}

TEST(Run, RaisesMainsException) {  // test_asyncio_run_raises
    auto main_coro = []() -> coroutine<void> {
        co_await pyco::sleep(0s);
        throw pyco::value_error("spam");
    };
    try {
        pyco::run(main_coro());
        FAIL();
    } catch (const pyco::value_error& e) {
        EXPECT_STREQ(e.what(), "spam");
    }
}

TEST(Run, RunsInsideAFreshLoopThatIsClosedAfter) {  // test_asyncio_run_only_coro / closes loop
    pyco::event_loop* seen = nullptr;
    auto main_coro = [](pyco::event_loop*& s) -> coroutine<void> {
        s = &pyco::get_running_loop();
        EXPECT_TRUE(s->is_running());
        co_return;
    };
    pyco::run(main_coro(seen));
    EXPECT_NE(seen, nullptr);
    EXPECT_THROW(pyco::get_running_loop(), pyco::runtime_error);
}

TEST(Run, CannotBeCalledFromARunningLoop) {  // test_asyncio_run_from_running_loop
    auto inner = []() -> coroutine<void> { co_return; };
    auto main_coro = [](auto mk) -> coroutine<std::string> {
        try {
            pyco::run(mk());
        } catch (const pyco::runtime_error& e) {
            co_return e.what();
        }
        co_return "no";
    };
    EXPECT_EQ(pyco::run(main_coro(inner)), "pyco::run() cannot be called from a running event loop");
}

TEST(Run, LeftoverTasksAreCancelledAndAwaited) {  // test_asyncio_run_cancels_hanging_tasks
    std::vector<std::string> tr;
    auto leftover = [](std::vector<std::string>& t) -> coroutine<void> {
        try {
            co_await pyco::sleep(1h);
        } catch (const pyco::cancelled_error&) {
            t.push_back("leftover cancelled");
            throw;
        }
    };
    auto main_coro = [&]() -> coroutine<int> {
        pyco::create_task(leftover(tr));
        co_await pyco::sleep(1ms);
        co_return 1;
    };
    EXPECT_EQ(pyco::run(main_coro(), {.virtual_time = true}), 1);
    EXPECT_EQ(tr, std::vector<std::string>{"leftover cancelled"});
}

TEST(Run, LeftoverTaskCleanupMayStillAwait) {
    std::vector<std::string> tr;
    auto leftover = [](std::vector<std::string>& t) -> coroutine<void> {
        bool cancelled = false;
        try {
            co_await pyco::sleep(1h);
        } catch (const pyco::cancelled_error&) {
            cancelled = true;
        }
        if (cancelled) {
            co_await pyco::sleep(10ms);  // cleanup that takes time
            t.push_back("cleanup done");
        }
    };
    auto main_coro = [&]() -> coroutine<void> {
        pyco::create_task(leftover(tr));
        co_await pyco::sleep(0s);
    };
    pyco::run(main_coro(), {.virtual_time = true});
    EXPECT_EQ(tr, std::vector<std::string>{"cleanup done"});
}

TEST(Run, LeftoverTaskFailingDuringShutdownIsReported) {  // test_asyncio_run_reports_hanging_tasks_errors
    auto leftover = []() -> coroutine<void> {
        bool cancelled = false;
        try {
            co_await pyco::sleep(1h);
        } catch (const pyco::cancelled_error&) {
            cancelled = true;
        }
        if (cancelled) throw pyco::value_error("failed in cleanup");
    };
    auto main_coro = [&]() -> coroutine<void> {
        pyco::create_task(leftover());
        co_await pyco::sleep(0s);
    };
    testing::internal::CaptureStderr();
    pyco::run(main_coro(), {.virtual_time = true});
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("unhandled exception during pyco::run() shutdown"), std::string::npos) << err;
    EXPECT_NE(err.find("failed in cleanup"), std::string::npos) << err;
}

TEST(Run, DebugOption) {  // test_asyncio_run_debug
    auto main_coro = []() -> coroutine<bool> { co_return pyco::get_running_loop().get_debug(); };
    EXPECT_TRUE(pyco::run(main_coro(), {.debug = true}));
    EXPECT_FALSE(pyco::run(main_coro(), {.debug = false}));
}

TEST(Run, MainCancellingItselfEndsInCancelledError) {
    auto main_coro = []() -> coroutine<void> {
        pyco::current_task().cancel();
        co_await pyco::sleep(0s);
    };
    EXPECT_THROW(pyco::run(main_coro()), pyco::cancelled_error);
}

}  // namespace
