// pyco::lock: CPython's LockTests (Lib/test/test_asyncio/test_locks.py).
// Left out as Python-only: repr formats, `await lock` / `with await lock`
// TypeErrors, the removed loop= parameter.
#include <pyco/lock.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <pyco/async_with.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using ints = std::vector<int>;

pyco::loop_options vt{.virtual_time = true};

coroutine<bool> acquire_then_record(pyco::lock& l, ints& result, int n) {
    const bool ok = co_await l.acquire();  // (GCC 12: never co_await in a condition)
    if (ok) result.push_back(n);
    co_return true;
}

// test_acquire
TEST(Lock, ReleaseWakesWaitersOneAtATimeInFifoOrder) {
    pyco::lock l;
    ints result;
    auto body = [&]() -> coroutine<void> {
        const bool got = co_await l.acquire();
        EXPECT_TRUE(got);
        auto t1 = pyco::create_task(acquire_then_record(l, result, 1));
        auto t2 = pyco::create_task(acquire_then_record(l, result, 2));
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, ints{});

        l.release();
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, ints{1});
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, ints{1});

        auto t3 = pyco::create_task(acquire_then_record(l, result, 3));
        l.release();
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, (ints{1, 2}));

        l.release();
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, (ints{1, 2, 3}));

        EXPECT_TRUE(t1.done() && t1.result());
        EXPECT_TRUE(t2.done() && t2.result());
        EXPECT_TRUE(t3.done() && t3.result());
    };
    pyco::run(body(), vt);
}

coroutine<bool> just_acquire(pyco::lock& l) { co_return co_await l.acquire(); }

// test_acquire_cancel
TEST(Lock, CancelledAcquireRaisesAndLeavesTheQueue) {
    pyco::lock l;
    auto body = [&]() -> coroutine<void> {
        const bool got = co_await l.acquire();
        EXPECT_TRUE(got);
        auto t = pyco::create_task(just_acquire(l));
        pyco::get_running_loop().call_soon([t]() mutable { t.cancel(); });
        EXPECT_THROW(co_await t, pyco::cancelled_error);
        EXPECT_EQ(l.waiters(), 0u);
        EXPECT_TRUE(l.locked());  // still ours
    };
    pyco::run(body(), vt);
}

coroutine<void> lockit(pyco::lock& l, pyco::future<void>* blocker) {
    co_await l.acquire();
    std::exception_ptr err;
    try {
        if (blocker != nullptr) co_await *blocker;
    } catch (...) {
        err = std::current_exception();
    }
    l.release();
    if (err) std::rethrow_exception(err);
}

// test_cancel_race: B is cancelled while A releases; C must get the lock.
TEST(Lock, ReleaseSkipsAWaiterCancelledInTheSameIteration) {
    pyco::lock l;
    auto body = [&]() -> coroutine<void> {
        auto fa = pyco::get_running_loop().create_future<void>();
        auto ta = pyco::create_task(lockit(l, &fa));
        co_await pyco::sleep(0s);
        EXPECT_TRUE(l.locked());
        auto tb = pyco::create_task(lockit(l, nullptr));
        co_await pyco::sleep(0s);
        EXPECT_EQ(l.waiters(), 1u);
        auto tc = pyco::create_task(lockit(l, nullptr));
        co_await pyco::sleep(0s);
        EXPECT_EQ(l.waiters(), 2u);

        fa.set_result();
        tb.cancel();
        co_await pyco::sleep(0s);
        EXPECT_FALSE(l.locked());
        EXPECT_TRUE(ta.done());
        EXPECT_TRUE(tb.cancelled());
        co_await tc;  // would hang if C's wake-up were lost
        EXPECT_FALSE(l.locked());
    };
    pyco::run(body(), vt);
}

// test_cancel_release_race (bpo-32734): cancelling the first waiter and
// releasing in one callback must hand the lock to exactly one task.
TEST(Lock, CancelAndReleaseTogetherHandTheLockToExactlyOneTask) {
    pyco::lock l;
    int lock_count = 0;
    int call_count = 0;
    auto lockit2 = [](pyco::lock& lk, int& locks, int& calls) -> coroutine<void> {
        ++calls;
        co_await lk.acquire();
        ++locks;
    };
    auto body = [&]() -> coroutine<void> {
        co_await l.acquire();
        auto t1 = pyco::create_task(lockit2(l, lock_count, call_count));
        auto t2 = pyco::create_task(lockit2(l, lock_count, call_count));
        auto t3 = pyco::create_task(lockit2(l, lock_count, call_count));
        co_await pyco::sleep(0s);
        pyco::get_running_loop().call_soon([&l, t1]() mutable {
            t1.cancel();
            l.release();
        });
        EXPECT_THROW(co_await t1, pyco::cancelled_error);
        EXPECT_EQ(lock_count, 1);
        EXPECT_EQ(call_count, 3);
        EXPECT_TRUE(t1.cancelled() && t2.done());
        t3.cancel();
        co_await pyco::sleep(0s);
        EXPECT_TRUE(t3.cancelled());
    };
    pyco::run(body(), vt);
}

// test_finished_waiter_cancelled: the woken first waiter is cancelled
// before it runs; the second must still be woken.
TEST(Lock, WokenWaiterCancelledBeforeItRunsPassesTheLockOn) {
    pyco::lock l;
    auto body = [&]() -> coroutine<void> {
        co_await l.acquire();
        EXPECT_TRUE(l.locked());
        auto tb = pyco::create_task(just_acquire(l));
        co_await pyco::sleep(0s);
        EXPECT_EQ(l.waiters(), 1u);
        auto tc = pyco::create_task(just_acquire(l));
        tb.cancel();
        l.release();
        co_await pyco::sleep(0s);
        EXPECT_TRUE(l.locked());
        EXPECT_TRUE(tb.cancelled());
        const bool c_got = co_await tc;
        EXPECT_TRUE(c_got);
    };
    pyco::run(body(), vt);
}

// The same race the other way round: release() wakes B, then B is
// cancelled before it runs (the lock hand-off must reach C).
TEST(Lock, CancelAfterTheWakeUpHandsTheLockToTheNextWaiter) {
    pyco::lock l;
    auto body = [&]() -> coroutine<void> {
        co_await l.acquire();
        auto tb = pyco::create_task(just_acquire(l));
        auto tc = pyco::create_task(just_acquire(l));
        co_await pyco::sleep(0s);
        EXPECT_EQ(l.waiters(), 2u);
        l.release();  // wakes B
        tb.cancel();  // B's waiter is done: the cancellation comes in at its step
        EXPECT_THROW(co_await tb, pyco::cancelled_error);
        const bool c_got = co_await tc;
        EXPECT_TRUE(c_got);
        EXPECT_TRUE(l.locked());
        EXPECT_EQ(l.waiters(), 0u);
    };
    pyco::run(body(), vt);
}

// test_release_not_acquired
TEST(Lock, ReleasingAnUnlockedLockIsARuntimeError) {
    pyco::lock l;
    try {
        l.release();
        FAIL() << "no error";
    } catch (const pyco::runtime_error& e) {
        EXPECT_STREQ(e.what(), "Lock is not acquired.");
    }
}

// test_release_no_waiters
TEST(Lock, ReleaseWithoutWaitersUnlocks) {
    pyco::lock l;
    auto body = [&]() -> coroutine<void> {
        co_await l.acquire();
        EXPECT_TRUE(l.locked());
        l.release();
        EXPECT_FALSE(l.locked());
    };
    pyco::run(body(), vt);
}

// test_context_manager: async with lock
TEST(Lock, AsyncWithHoldsTheLockForTheBody) {
    pyco::lock l;
    auto body = [&]() -> coroutine<void> {
        EXPECT_FALSE(l.locked());
        auto inside = [&]() -> coroutine<void> {
            EXPECT_TRUE(l.locked());
            co_return;
        };
        co_await pyco::async_with(l, inside);
        EXPECT_FALSE(l.locked());
    };
    pyco::run(body(), vt);
}

TEST(Lock, ScopedGuardReleasesWhenItDiesEvenOnAnException) {
    pyco::lock l;
    auto body = [&]() -> coroutine<void> {
        {
            auto held = co_await l.scoped();
            EXPECT_TRUE(held.owns());
            EXPECT_TRUE(l.locked());
        }
        EXPECT_FALSE(l.locked());
        try {
            auto held = co_await l.scoped();
            throw pyco::value_error("boom");
        } catch (const pyco::value_error&) {
        }
        EXPECT_FALSE(l.locked());
        auto held = co_await l.scoped();
        held.release();
        EXPECT_FALSE(l.locked());
        EXPECT_FALSE(held.owns());
    };
    pyco::run(body(), vt);
}

// Fairness (the 3.12 acquire fast path): while a woken waiter has not run
// yet, a newcomer queues behind it even though the lock is free.
TEST(Lock, NewcomerCannotBargeInFrontOfAWokenWaiter) {
    pyco::lock l;
    ints order;
    auto body = [&]() -> coroutine<void> {
        co_await l.acquire();
        auto t1 = pyco::create_task(acquire_then_record(l, order, 1));
        co_await pyco::sleep(0s);
        l.release();  // wakes t1; t1 has not run
        EXPECT_FALSE(l.locked());
        auto t2 = pyco::create_task(acquire_then_record(l, order, 2));
        co_await pyco::sleep(0s);
        EXPECT_EQ(order, ints{1});
        EXPECT_EQ(l.waiters(), 1u);  // t2 queued
        l.release();
        co_await t2;
        EXPECT_EQ(order, (ints{1, 2}));
    };
    pyco::run(body(), vt);
}

// Fairness: if every queued waiter is cancelled, acquire() takes the free
// lock at once (asyncio's "jumping the queue if all are cancelled").
TEST(Lock, AcquireTakesAFreeLockAtOnceWhenAllWaitersAreCancelled) {
    pyco::lock l;
    auto body = [&]() -> coroutine<void> {
        co_await l.acquire();
        auto t1 = pyco::create_task(just_acquire(l));
        co_await pyco::sleep(0s);
        t1.cancel();  // its waiter is cancelled, not yet unlinked
        l.release();
        EXPECT_EQ(l.waiters(), 1u);
        co_await l.acquire();  // fast path: no suspension
        EXPECT_TRUE(l.locked());
        EXPECT_FALSE(t1.done());
        EXPECT_THROW(co_await t1, pyco::cancelled_error);
        EXPECT_TRUE(l.locked());  // t1 did not wake anyone: we hold it
        l.release();
    };
    pyco::run(body(), vt);
}

TEST(Lock, ManyTasksSerialiseAndEachGetsItOnce) {
    pyco::lock l;
    int inside = 0;
    int max_inside = 0;
    int done = 0;
    auto worker = [](pyco::lock& lk, int& in, int& mx, int& d) -> coroutine<void> {
        for (int i = 0; i < 10; ++i) {
            auto held = co_await lk.scoped();
            ++in;
            mx = std::max(mx, in);
            co_await pyco::sleep(1ms);
            --in;
            ++d;
        }
    };
    auto body = [&]() -> coroutine<void> {
        std::vector<pyco::task<void>> ts;
        for (int i = 0; i < 20; ++i) ts.push_back(pyco::create_task(worker(l, inside, max_inside, done)));
        for (auto& t : ts) co_await t;
    };
    pyco::run(body(), vt);
    EXPECT_EQ(max_inside, 1);
    EXPECT_EQ(done, 200);
    EXPECT_FALSE(l.locked());
}

TEST(Lock, UsedFromTwoLoopsIsARuntimeError) {
    pyco::lock l;
    pyco::event_loop loop1(vt);
    pyco::event_loop loop2(vt);  // both alive: distinct loops
    auto first = [&]() -> coroutine<void> {
        co_await l.acquire();
        auto t = pyco::create_task(just_acquire(l));
        co_await pyco::sleep(0s);
        l.release();
        co_await t;
        l.release();
    };
    loop1.run_until_complete(first());
    auto second = [&]() -> coroutine<void> {
        co_await l.acquire();
        auto t = pyco::create_task(just_acquire(l));
        try {
            co_await t;
            ADD_FAILURE() << "no error";
        } catch (const pyco::runtime_error& e) {
            EXPECT_STREQ(e.what(), "Lock is bound to a different event loop");
        }
        l.release();
    };
    loop2.run_until_complete(second());
}

// The everyday form of `async with lock:`, no lambda: a guard released at
// the end of its scope. A task cancelled while it waits for its guard gets
// none and releases nothing; a moved guard releases once, by its new owner.
TEST(Lock, ScopedGuardIsOnlyMadeForTheTaskThatGotTheLock) {
    pyco::lock l;
    bool got = false;
    auto waiter = [](pyco::lock& lk, bool& g) -> coroutine<void> {
        auto held = co_await lk.scoped();
        g = true;
    };
    auto body = [&]() -> coroutine<void> {
        auto mine = co_await l.scoped();
        auto t = pyco::create_task(waiter(l, got));
        co_await pyco::sleep(0s);
        EXPECT_EQ(l.waiters(), 1u);
        t.cancel();
        EXPECT_THROW(co_await t, pyco::cancelled_error);
        EXPECT_FALSE(got);
        EXPECT_TRUE(l.locked());  // still ours
        {
            auto moved = std::move(mine);
            EXPECT_FALSE(mine.owns());
            EXPECT_TRUE(moved.owns());
        }
        EXPECT_FALSE(l.locked());
        auto again = co_await l.scoped();  // free again, and `mine` owns nothing
        EXPECT_TRUE(again.owns());
    };
    pyco::run(body(), vt);
    EXPECT_FALSE(l.locked());
}

}  // namespace
