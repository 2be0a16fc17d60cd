// Generator-based coroutines driven by tasks (issue: the pre-PEP-492 style).
#include <pyco/generator_task.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <pyco/run.hpp>
#include <pyco/sleep.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using pyco::generator;

coroutine<int> fetch(int x) {
    co_await pyco::sleep(1ms);
    co_return x * 10;
}

// The old style: yield what to wait for; the result comes back in.
generator<coroutine<int>, int, int> old_style_sum() {
    int a = co_yield fetch(1);
    int b = co_yield fetch(2);
    co_return a + b;
}

// The same logic with co_await.
coroutine<int> new_style_sum() {
    int a = co_await fetch(1);
    int b = co_await fetch(2);
    co_return a + b;
}

TEST(GeneratorTask, ResultsAreSentBackInAndTheReturnValueIsTheResult) {
    auto body = []() -> coroutine<std::pair<int, int>> {
        int old_way = co_await pyco::create_task(old_style_sum());
        int new_way = co_await new_style_sum();
        co_return std::pair{old_way, new_way};
    };
    auto [old_way, new_way] = pyco::run(body(), {.virtual_time = true});
    EXPECT_EQ(old_way, 30);
    EXPECT_EQ(old_way, new_way);
}

TEST(GeneratorTask, DriveAwaitsInline) {
    auto body = []() -> coroutine<int> { co_return co_await pyco::drive(old_style_sum()); };
    EXPECT_EQ(pyco::run(body(), {.virtual_time = true}), 30);
}

coroutine<int> failing() {
    co_await pyco::sleep(1ms);
    throw pyco::value_error("fetch failed");
}

TEST(GeneratorTask, FailuresAreThrownInAtTheYield) {
    auto gen = []() -> generator<coroutine<int>, int, std::string> {
        std::string outcome;
        try {
            co_yield failing();
            outcome = "no error";
        } catch (const pyco::value_error& e) {
            outcome = std::string("caught inside: ") + e.what();
        }
        int after = co_yield fetch(4);  // and it goes on
        co_return outcome + ", then " + std::to_string(after);
    };
    auto body = [&]() -> coroutine<std::string> { co_return co_await pyco::create_task(gen()); };
    EXPECT_EQ(pyco::run(body(), {.virtual_time = true}), "caught inside: fetch failed, then 40");
}

TEST(GeneratorTask, UncaughtFailureFailsTheTask) {
    auto gen = []() -> generator<coroutine<int>, int, int> {
        co_yield failing();
        co_return 0;
    };
    auto body = [&]() -> coroutine<std::string> {
        try {
            co_await pyco::create_task(gen());
        } catch (const pyco::value_error& e) {
            co_return e.what();
        }
        co_return "no";
    };
    EXPECT_EQ(pyco::run(body(), {.virtual_time = true}), "fetch failed");
}

TEST(GeneratorTask, CancellationIsThrownIntoTheGenerator) {
    std::vector<std::string> tr;
    auto gen = [](std::vector<std::string>& t) -> generator<pyco::sleep_awaiter> {
        try {
            co_yield pyco::sleep(1h);
        } catch (const pyco::cancelled_error&) {
            t.push_back("generator saw the cancellation");
            throw;
        }
    };
    auto body = [&]() -> coroutine<bool> {
        auto t = pyco::create_task(gen(tr));
        co_await pyco::sleep(1ms);
        t.cancel();
        try {
            co_await t;
        } catch (const pyco::cancelled_error&) {
        }
        co_return t.cancelled();
    };
    EXPECT_TRUE(pyco::run(body(), {.virtual_time = true}));
    EXPECT_EQ(tr, std::vector<std::string>{"generator saw the cancellation"});
}

generator<coroutine<int>, int, int> inner_steps() {
    int x = co_yield fetch(5);
    co_return x + 1;
}

TEST(GeneratorTask, YieldFromDelegatesAsItDidForOldCoroutines) {
    auto outer = []() -> generator<coroutine<int>, int, int> {
        int r = co_yield pyco::from(inner_steps());
        int s = co_yield fetch(1);
        co_return r + s;
    };
    auto body = [&]() -> coroutine<int> { co_return co_await pyco::create_task(outer()); };
    EXPECT_EQ(pyco::run(body(), {.virtual_time = true}), 51 + 10);
}

}  // namespace
