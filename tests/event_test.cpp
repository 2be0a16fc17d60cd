// pyco::event: CPython's EventTests (Lib/test/test_asyncio/test_locks.py).
// Left out as Python-only: test_repr, the removed loop= parameter.
#include <pyco/event.hpp>

#include <gtest/gtest.h>

#include <vector>

#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using ints = std::vector<int>;

pyco::loop_options vt{.virtual_time = true};

coroutine<bool> wait_then_record(pyco::event& ev, ints& result, int n) {
    const bool ok = co_await ev.wait();  // (GCC 12: never co_await in a condition)
    if (ok) result.push_back(n);
    co_return true;
}

// test_wait: set() wakes the waiters in order, but a task scheduled before
// the set() (t3, not yet started) runs first and finds the flag set.
TEST(Event, SetWakesAllWaitersInOrderAfterTasksAlreadyScheduled) {
    pyco::event ev;
    ints result;
    auto body = [&]() -> coroutine<void> {
        EXPECT_FALSE(ev.is_set());
        auto t1 = pyco::create_task(wait_then_record(ev, result, 1));
        auto t2 = pyco::create_task(wait_then_record(ev, result, 2));
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, ints{});
        auto t3 = pyco::create_task(wait_then_record(ev, result, 3));
        ev.set();
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, (ints{3, 1, 2}));
        EXPECT_TRUE(t1.done() && t2.done() && t3.done());
        EXPECT_EQ(ev.waiters(), 0u);
    };
    pyco::run(body(), vt);
}

// test_wait_on_set
TEST(Event, WaitOnASetEventReturnsAtOnce) {
    pyco::event ev;
    ev.set();
    int steps = 0;
    auto counter = [](int& s) -> coroutine<void> {
        ++s;
        co_return;
    };
    auto body = [&]() -> coroutine<void> {
        auto t = pyco::create_task(counter(steps));
        const bool res = co_await ev.wait();
        EXPECT_TRUE(res);
        EXPECT_EQ(steps, 0);  // did not yield to the loop
        co_await t;
    };
    pyco::run(body(), vt);
}

coroutine<bool> just_wait(pyco::event& ev) { co_return co_await ev.wait(); }

// test_wait_cancel
TEST(Event, CancelledWaitRaisesAndLeavesNoWaiter) {
    pyco::event ev;
    auto body = [&]() -> coroutine<void> {
        auto w = pyco::create_task(just_wait(ev));
        pyco::get_running_loop().call_soon([w]() mutable { w.cancel(); });
        EXPECT_THROW(co_await w, pyco::cancelled_error);
        EXPECT_EQ(ev.waiters(), 0u);
    };
    pyco::run(body(), vt);
}

// test_clear
TEST(Event, ClearResetsTheFlag) {
    pyco::event ev;
    EXPECT_FALSE(ev.is_set());
    ev.set();
    EXPECT_TRUE(ev.is_set());
    ev.clear();
    EXPECT_FALSE(ev.is_set());
}

// test_clear_with_waiters: set(); clear() before the waiter ran still
// wakes it; a second set() does not wake it twice.
TEST(Event, ClearAfterSetDoesNotTakeBackTheWakeUp) {
    pyco::event ev;
    ints result;
    auto body = [&]() -> coroutine<void> {
        auto t = pyco::create_task(wait_then_record(ev, result, 1));
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, ints{});
        ev.set();
        ev.clear();
        EXPECT_FALSE(ev.is_set());
        ev.set();
        ev.set();
        EXPECT_EQ(ev.waiters(), 1u);
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, ints{1});
        EXPECT_EQ(ev.waiters(), 0u);
        EXPECT_TRUE(t.done() && t.result());
    };
    pyco::run(body(), vt);
}

// A waiter cancelled after set() woke it still ends cancelled, and the
// others are not disturbed.
TEST(Event, WaiterCancelledAfterSetRaisesOthersStillWake) {
    pyco::event ev;
    ints result;
    auto body = [&]() -> coroutine<void> {
        auto t1 = pyco::create_task(wait_then_record(ev, result, 1));
        auto t2 = pyco::create_task(wait_then_record(ev, result, 2));
        co_await pyco::sleep(0s);
        ev.set();
        t1.cancel();
        EXPECT_THROW(co_await t1, pyco::cancelled_error);
        co_await t2;
        EXPECT_EQ(result, ints{2});
    };
    pyco::run(body(), vt);
}

TEST(Event, TenThousandWaitersAllWakeOnce) {
    pyco::event ev;
    int woke = 0;
    auto waiter = [](pyco::event& e, int& w) -> coroutine<void> {
        co_await e.wait();
        ++w;
    };
    auto body = [&]() -> coroutine<void> {
        std::vector<pyco::task<void>> ts;
        for (int i = 0; i < 10000; ++i) ts.push_back(pyco::create_task(waiter(ev, woke)));
        co_await pyco::sleep(0s);
        EXPECT_EQ(ev.waiters(), 10000u);
        ev.set();
        for (auto& t : ts) co_await t;
    };
    pyco::run(body(), vt);
    EXPECT_EQ(woke, 10000);
}

}  // namespace
