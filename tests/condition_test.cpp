// pyco::condition: CPython's ConditionTests (Lib/test/test_asyncio/
// test_locks.py). Left out as Python-only: test_repr, test_ambiguous_loops
// (private _loop), the removed loop= parameter; test_timeout_in_block needs
// wait_for(), which is not part of this header.
#include <pyco/condition.hpp>

#include <gtest/gtest.h>

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

// c1/c2/c3 of test_wait: take the lock, wait, record; keep the lock.
coroutine<bool> wait_keep_lock(pyco::condition& c, ints& result, int n) {
    co_await c.acquire();
    const bool ok = co_await c.wait();  // (GCC 12: never co_await in a condition)
    if (ok) result.push_back(n);
    co_return true;
}
// c1/c2/c3 of test_notify: the same, releasing the lock after.
coroutine<bool> wait_release(pyco::condition& c, ints& result, int n) {
    co_await c.acquire();
    const bool ok = co_await c.wait();
    if (ok) {
        result.push_back(n);
        c.release();
    }
    co_return true;
}

// test_wait
TEST(Condition, NotifiedWaitersRetakeTheLockOneByOne) {
    pyco::condition c;
    ints result;
    auto body = [&]() -> coroutine<void> {
        auto t1 = pyco::create_task(wait_keep_lock(c, result, 1));
        auto t2 = pyco::create_task(wait_keep_lock(c, result, 2));
        auto t3 = pyco::create_task(wait_keep_lock(c, result, 3));
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, ints{});
        EXPECT_FALSE(c.locked());

        co_await c.acquire();
        c.notify();
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, ints{});
        EXPECT_TRUE(c.locked());

        c.release();
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, ints{1});
        EXPECT_TRUE(c.locked());

        c.notify(2);
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, ints{1});
        EXPECT_TRUE(c.locked());

        c.release();
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, (ints{1, 2}));
        EXPECT_TRUE(c.locked());

        c.release();
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, (ints{1, 2, 3}));
        EXPECT_TRUE(c.locked());
        EXPECT_TRUE(t1.done() && t2.done() && t3.done());
    };
    pyco::run(body(), vt);
}

coroutine<bool> just_wait(pyco::condition& c) { co_return co_await c.wait(); }

// test_wait_cancel: a cancelled wait still re-takes the lock.
TEST(Condition, CancelledWaitRetakesTheLockAndLeavesNoWaiter) {
    pyco::condition c;
    auto body = [&]() -> coroutine<void> {
        co_await c.acquire();
        auto w = pyco::create_task(just_wait(c));
        pyco::get_running_loop().call_soon([w]() mutable { w.cancel(); });
        EXPECT_THROW(co_await w, pyco::cancelled_error);
        EXPECT_EQ(c.waiters(), 0u);
        EXPECT_TRUE(c.locked());
    };
    pyco::run(body(), vt);
}

// test_wait_cancel_contested
TEST(Condition, CancelWhileTheLockIsContestedStillEndsWithTheLockHeld) {
    pyco::condition c;
    auto body = [&]() -> coroutine<void> {
        co_await c.acquire();
        auto w = pyco::create_task(just_wait(c));
        co_await pyco::sleep(0s);
        EXPECT_FALSE(c.locked());
        co_await c.acquire();
        EXPECT_TRUE(c.locked());
        c.notify();
        auto& loop = pyco::get_running_loop();
        loop.call_soon([w]() mutable { w.cancel(); });
        loop.call_soon([&c] { c.release(); });
        try {
            co_await w;
        } catch (const pyco::cancelled_error&) {
        }
        EXPECT_TRUE(c.locked());
    };
    pyco::run(body(), vt);
}

// test_wait_cancel_after_notify (bpo-32841)
TEST(Condition, CancelAfterNotifyWhileRetakingTheLock) {
    pyco::condition c;
    bool waited = false;
    auto wait_on_cond = [](pyco::condition& cv, bool& w) -> coroutine<void> {
        auto held = co_await cv.scoped();
        w = true;
        co_await cv.wait();
    };
    auto body = [&]() -> coroutine<void> {
        auto waiter = pyco::create_task(wait_on_cond(c, waited));
        co_await pyco::sleep(0s);
        co_await c.acquire();
        c.notify();
        co_await pyco::sleep(0s);
        waiter.cancel();
        co_await pyco::sleep(0s);
        c.release();
        co_await pyco::sleep(0s);
        EXPECT_TRUE(waiter.cancelled());
        EXPECT_TRUE(waited);
        EXPECT_FALSE(c.locked());
    };
    pyco::run(body(), vt);
}

// test_wait_unacquired
TEST(Condition, WaitWithoutTheLockIsARuntimeError) {
    pyco::condition c;
    auto body = [&]() -> coroutine<void> {
        try {
            co_await c.wait();
            ADD_FAILURE() << "no error";
        } catch (const pyco::runtime_error& e) {
            EXPECT_STREQ(e.what(), "cannot wait on un-acquired lock");
        }
    };
    pyco::run(body(), vt);
}

// test_wait_for
TEST(Condition, WaitForRechecksThePredicateAfterEachNotify) {
    pyco::condition c;
    bool presult = false;
    ints result;
    auto c1 = [](pyco::condition& cv, bool& p, ints& r) -> coroutine<bool> {
        co_await cv.acquire();
        auto pred = [&p] { return p; };
        const bool ok = co_await cv.wait_for(pred);
        if (ok) {
            r.push_back(1);
            cv.release();
        }
        co_return true;
    };
    auto body = [&]() -> coroutine<void> {
        auto t = pyco::create_task(c1(c, presult, result));
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, ints{});
        co_await c.acquire();
        c.notify();
        c.release();
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, ints{});
        presult = true;
        co_await c.acquire();
        c.notify();
        c.release();
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, ints{1});
        EXPECT_TRUE(t.done() && t.result());
    };
    pyco::run(body(), vt);
}

// test_wait_for_unacquired
TEST(Condition, WaitForReturnsATruePredicateWithoutTheLockElseRaises) {
    pyco::condition c;
    auto body = [&]() -> coroutine<void> {
        auto vec = [] { return ints{1, 2, 3}; };
        auto lift = [&vec] { return !vec().empty() ? 3 : 0; };
        const int res = co_await c.wait_for(lift);
        EXPECT_EQ(res, 3);
        auto never = [] { return false; };
        EXPECT_THROW(co_await c.wait_for(never), pyco::runtime_error);
    };
    pyco::run(body(), vt);
}

// test_notify
TEST(Condition, NotifyWakesAtMostNInOrder) {
    pyco::condition c;
    ints result;
    auto body = [&]() -> coroutine<void> {
        auto t1 = pyco::create_task(wait_release(c, result, 1));
        auto t2 = pyco::create_task(wait_release(c, result, 2));
        auto t3 = pyco::create_task(wait_release(c, result, 3));
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, ints{});
        co_await c.acquire();
        c.notify(1);
        c.release();
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, ints{1});
        co_await c.acquire();
        c.notify(1);
        c.notify(2048);
        c.release();
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, (ints{1, 2, 3}));
        EXPECT_TRUE(t1.done() && t2.done() && t3.done());
    };
    pyco::run(body(), vt);
}

// test_notify_all
TEST(Condition, NotifyAllWakesEveryWaiter) {
    pyco::condition c;
    ints result;
    auto body = [&]() -> coroutine<void> {
        auto t1 = pyco::create_task(wait_release(c, result, 1));
        auto t2 = pyco::create_task(wait_release(c, result, 2));
        co_await pyco::sleep(0s);
        co_await c.acquire();
        c.notify_all();
        c.release();
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, (ints{1, 2}));
        EXPECT_TRUE(t1.done() && t2.done());
    };
    pyco::run(body(), vt);
}

// test_notify_unacquired, test_notify_all_unacquired
TEST(Condition, NotifyWithoutTheLockIsARuntimeError) {
    pyco::condition c;
    try {
        c.notify();
        FAIL() << "no error";
    } catch (const pyco::runtime_error& e) {
        EXPECT_STREQ(e.what(), "cannot notify on un-acquired lock");
    }
    EXPECT_THROW(c.notify_all(), pyco::runtime_error);
}

// test_context_manager, test_explicit_lock
TEST(Condition, SharesAnExplicitLock) {
    auto check = [](pyco::lock& l, pyco::condition& cv) -> coroutine<void> {
        EXPECT_EQ(&cv.underlying_lock(), &l);
        EXPECT_FALSE(l.locked());
        auto in_cond = [&]() -> coroutine<void> {
            EXPECT_TRUE(l.locked());
            EXPECT_TRUE(cv.locked());
            co_return;
        };
        co_await pyco::async_with(cv, in_cond);
        EXPECT_FALSE(l.locked() || cv.locked());
        {
            auto held = co_await l.scoped();
            EXPECT_TRUE(cv.locked());
        }
        EXPECT_FALSE(cv.locked());
    };
    auto body = [&]() -> coroutine<void> {
        pyco::lock l1;
        pyco::condition c1(l1);
        co_await check(l1, c1);
        pyco::condition c2;
        co_await check(c2.underlying_lock(), c2);
    };
    pyco::run(body(), vt);
}

// test_cancelled_error_wakeup: the cancelled_error raised is the very one
// the cancellation made (same object, same message).
TEST(Condition, CancellationWhileWaitingRaisesTheSameErrorObject) {
    pyco::condition c;
    const pyco::cancelled_error* raised = nullptr;
    auto func = [](pyco::condition& cv, const pyco::cancelled_error*& out) -> coroutine<void> {
        auto held = co_await cv.scoped();
        std::exception_ptr err;
        try {
            auto never = [] { return false; };
            co_await cv.wait_for(never);
        } catch (const pyco::cancelled_error& e) {
            out = &e;
            err = std::current_exception();
        }
        if (err) std::rethrow_exception(err);
    };
    auto body = [&]() -> coroutine<void> {
        auto t = pyco::create_task(func(c, raised));
        co_await pyco::sleep(0s);
        t.cancel("foo");
        try {
            co_await t;
            ADD_FAILURE() << "not cancelled";
        } catch (const pyco::cancelled_error& e) {
            EXPECT_STREQ(e.what(), "foo");
            EXPECT_EQ(&e, raised);
        }
    };
    pyco::run(body(), vt);
}

// test_cancelled_error_re_aquire: the same, cancelled while re-taking the lock.
TEST(Condition, CancellationWhileRetakingTheLockRaisesTheSameErrorObject) {
    pyco::condition c;
    bool wake = false;
    const pyco::cancelled_error* raised = nullptr;
    auto func = [](pyco::condition& cv, bool& w, const pyco::cancelled_error*& out) -> coroutine<void> {
        auto held = co_await cv.scoped();
        std::exception_ptr err;
        try {
            auto pred = [&w] { return w; };
            co_await cv.wait_for(pred);
        } catch (const pyco::cancelled_error& e) {
            out = &e;
            err = std::current_exception();
        }
        if (err) std::rethrow_exception(err);
    };
    auto body = [&]() -> coroutine<void> {
        auto t = pyco::create_task(func(c, wake, raised));
        co_await pyco::sleep(0s);
        co_await c.acquire();
        wake = true;
        c.notify();
        co_await pyco::sleep(0s);  // t now waits for the lock
        t.cancel("foo");
        c.release();
        try {
            co_await t;
            ADD_FAILURE() << "not cancelled";
        } catch (const pyco::cancelled_error& e) {
            EXPECT_STREQ(e.what(), "foo");
            EXPECT_EQ(&e, raised);
        }
    };
    pyco::run(body(), vt);
}

// consumer of test_cancelled_wakeup / test_cancelled_wakeup_relock.
coroutine<void> consumer(pyco::condition& cv, int& state) {
    auto held = co_await cv.scoped();
    auto ready = [&state] { return state != 0; };
    for (;;) {
        co_await cv.wait_for(ready);
        if (state < 0) co_return;
        --state;
    }
}

// Waits (holding the lock) until state == 0, giving up after 10 ms (the
// asyncio.timeout(0.01) of the CPython tests, by a cancelling timer).
coroutine<void> wait_state_zero(pyco::condition& cv, int& state) {
    auto self = pyco::current_task();
    auto timer = pyco::get_running_loop().call_later(10ms, [self]() mutable { self.cancel(); });
    auto zero = [&state] { return state == 0; };
    try {
        co_await cv.wait_for(zero);
    } catch (const pyco::cancelled_error&) {
        self.uncancel();
    }
    timer.cancel();
}

// test_cancelled_wakeup: a notify racing with a cancellation of the
// notified task is passed on, not lost.
TEST(Condition, NotifyRacingACancellationIsNotLost) {
    for (bool relock : {false, true}) {  // relock: test_cancelled_wakeup_relock
        pyco::condition c;
        int state = 0;
        auto body = [&]() -> coroutine<void> {
            auto c0 = pyco::create_task(consumer(c, state));
            auto c1 = pyco::create_task(consumer(c, state));
            co_await pyco::sleep(0s);
            {
                auto held = co_await c.scoped();
                ++state;
                c.notify(1);
                // relock: let c0 wake and queue on the lock first
                if (relock) co_await pyco::sleep(0s);
                c0.cancel();
                co_await wait_state_zero(c, state);
                EXPECT_EQ(state, 0) << "relock=" << relock;
                state = -1;
                c.notify_all();
            }
            co_await c1;
            EXPECT_THROW(co_await c0, pyco::cancelled_error);
        };
        pyco::run(body(), vt);
    }
}

// The everyday form, no lambda around the body: the guard holds the lock
// across wait_for (which gives it up while waiting and takes it back), and
// releases it at the end of its scope.
TEST(Condition, ScopedGuardHoldsTheLockAroundWaitFor) {
    pyco::condition cv;
    std::vector<int> items;
    int consumed = -1;
    auto consumer = [](pyco::condition& c, std::vector<int>& its, int& out) -> coroutine<void> {
        auto held = co_await c.scoped();
        auto ready = [&] { return !its.empty(); };
        co_await c.wait_for(ready);
        EXPECT_TRUE(c.locked());
        out = its.back();
        its.pop_back();
    };
    auto body = [&]() -> coroutine<void> {
        auto t = pyco::create_task(consumer(cv, items, consumed));
        co_await pyco::sleep(0s);
        EXPECT_FALSE(cv.locked());  // the consumer waits, without the lock
        {
            auto held = co_await cv.scoped();
            items.push_back(7);
            cv.notify();
        }
        co_await t;
        EXPECT_FALSE(cv.locked());
    };
    pyco::run(body(), vt);
    EXPECT_EQ(consumed, 7);
}

// wait_for takes a predicate written inline when it captures by reference
// (GCC 12 refuses, at compile time, only one that captures by value
// something with a destructor: tests/compile_fail).
TEST(Condition, WaitForTakesAnInlineReferenceCapturingPredicate) {
    pyco::condition cv;
    bool ready = false;
    auto body = [&]() -> coroutine<void> {
        auto setter = [](pyco::condition& c, bool& r) -> coroutine<void> {
            auto held = co_await c.scoped();
            r = true;
            c.notify_all();
        };
        auto t = pyco::create_task(setter(cv, ready));
        auto held = co_await cv.scoped();
        const bool seen = co_await cv.wait_for([&] { return ready; });
        EXPECT_TRUE(seen);
        co_await t;
    };
    pyco::run(body(), vt);
}

}  // namespace
