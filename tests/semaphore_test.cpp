// pyco::semaphore and bounded_semaphore: CPython's SemaphoreTests
// (Lib/test/test_asyncio/test_locks.py). Left out as Python-only: test_repr,
// `await sem` TypeError, the removed loop= parameter.
#include <pyco/semaphore.hpp>

#include <gtest/gtest.h>

#include <algorithm>
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
using strings = std::vector<std::string>;

pyco::loop_options vt{.virtual_time = true};

coroutine<bool> acquire_then_record(pyco::semaphore& s, ints& result, int n) {
    co_await s.acquire();
    result.push_back(n);
    co_return true;
}

coroutine<void> just_acquire(pyco::semaphore& s) { co_await s.acquire(); }

// test_initial_value_zero
TEST(Semaphore, InitialValueZeroIsLocked) {
    pyco::semaphore s(0);
    EXPECT_TRUE(s.locked());
}

// test_semaphore
TEST(Semaphore, DefaultValueIsOne) {
    pyco::semaphore s;
    EXPECT_EQ(s.value(), 1);
    EXPECT_FALSE(s.locked());
}

// test_semaphore_value
TEST(Semaphore, NegativeInitialValueIsAValueError) {
    try {
        pyco::semaphore s(-1);
        FAIL() << "no error";
    } catch (const pyco::value_error& e) {
        EXPECT_STREQ(e.what(), "Semaphore initial value must be >= 0");
    }
}

// test_acquire
TEST(Semaphore, ReleasesHandPermitsToTheFirstWaiters) {
    pyco::semaphore s(3);
    ints result;
    auto body = [&]() -> coroutine<void> {
        co_await s.acquire();
        co_await s.acquire();
        EXPECT_FALSE(s.locked());
        auto t1 = pyco::create_task(acquire_then_record(s, result, 1));
        auto t2 = pyco::create_task(acquire_then_record(s, result, 2));
        auto t3 = pyco::create_task(acquire_then_record(s, result, 3));
        co_await pyco::sleep(0s);
        EXPECT_EQ(result, ints{1});
        EXPECT_TRUE(s.locked());
        EXPECT_EQ(s.waiters(), 2u);
        EXPECT_EQ(s.value(), 0);

        auto t4 = pyco::create_task(acquire_then_record(s, result, 4));
        s.release();
        s.release();
        EXPECT_EQ(s.value(), 0);  // reserved for t2 and t3 at once
        co_await pyco::sleep(0s);
        EXPECT_EQ(s.value(), 0);
        EXPECT_EQ(result.size(), 3u);
        EXPECT_TRUE(s.locked());
        EXPECT_EQ(s.waiters(), 1u);
        EXPECT_TRUE(t1.done() && t1.result());
        EXPECT_EQ(result, (ints{1, 2, 3}));  // CPython: two of t2..t4; FIFO makes it t2, t3
        EXPECT_FALSE(t4.done());
        s.release();
        co_await t2;
        co_await t3;
        co_await t4;
        EXPECT_EQ(result, (ints{1, 2, 3, 4}));
    };
    pyco::run(body(), vt);
}

// test_acquire_cancel
TEST(Semaphore, CancelledAcquireLeavesNoLiveWaiter) {
    pyco::semaphore s;
    auto body = [&]() -> coroutine<void> {
        co_await s.acquire();
        auto t = pyco::create_task(just_acquire(s));
        pyco::get_running_loop().call_soon([t]() mutable { t.cancel(); });
        EXPECT_THROW(co_await t, pyco::cancelled_error);
        EXPECT_EQ(s.waiters(), 0u);
        EXPECT_EQ(s.value(), 0);
    };
    pyco::run(body(), vt);
}

// test_acquire_cancel_before_awoken
TEST(Semaphore, WaitersCancelledBeforeTheReleaseDoNotTakeThePermit) {
    pyco::semaphore s(0);
    auto body = [&]() -> coroutine<void> {
        auto t1 = pyco::create_task(just_acquire(s));
        auto t2 = pyco::create_task(just_acquire(s));
        auto t3 = pyco::create_task(just_acquire(s));
        auto t4 = pyco::create_task(just_acquire(s));
        co_await pyco::sleep(0s);
        t1.cancel();
        t2.cancel();
        s.release();
        co_await pyco::sleep(0s);
        co_await pyco::sleep(0s);
        EXPECT_TRUE(t3.done());
        EXPECT_FALSE(t4.done());
        EXPECT_TRUE(t1.cancelled() && t2.cancelled());
        t4.cancel();
        co_await pyco::sleep(0s);
    };
    pyco::run(body(), vt);
}

// test_acquire_hang: a permit handed to a waiter cancelled before it ran
// goes to the next waiter.
TEST(Semaphore, PermitOfACancelledWokenWaiterGoesToTheNext) {
    pyco::semaphore s(0);
    auto body = [&]() -> coroutine<void> {
        auto t1 = pyco::create_task(just_acquire(s));
        auto t2 = pyco::create_task(just_acquire(s));
        co_await pyco::sleep(0s);
        t1.cancel();
        s.release();
        co_await pyco::sleep(0s);
        co_await pyco::sleep(0s);
        EXPECT_TRUE(s.locked());
        EXPECT_TRUE(t2.done());
        EXPECT_TRUE(t1.cancelled());
    };
    pyco::run(body(), vt);
}

// The woken-then-cancelled order of the same race: release() hands the
// permit to t1 first, then t1 is cancelled; t1 gives it back, t2 gets it.
TEST(Semaphore, PermitHandedOverThenCancelledIsReturnedAndPassedOn) {
    pyco::semaphore s(0);
    auto body = [&]() -> coroutine<void> {
        auto t1 = pyco::create_task(just_acquire(s));
        auto t2 = pyco::create_task(just_acquire(s));
        co_await pyco::sleep(0s);
        s.release();  // reserved for t1
        EXPECT_EQ(s.value(), 0);
        t1.cancel();
        EXPECT_THROW(co_await t1, pyco::cancelled_error);
        co_await t2;
        EXPECT_EQ(s.value(), 0);
        EXPECT_EQ(s.waiters(), 0u);
    };
    pyco::run(body(), vt);
}

// test_acquire_no_hang
TEST(Semaphore, CancellingAWaiterThatGotNoPermitDoesNotHang) {
    pyco::semaphore s(1);
    auto body = [&]() -> coroutine<void> {
        pyco::task<void> t2;
        auto c1 = [](pyco::semaphore& sem, pyco::task<void>& other) -> coroutine<void> {
            auto held = co_await sem.scoped();
            co_await pyco::sleep(0s);
            other.cancel();
        };
        auto c2 = [](pyco::semaphore& sem) -> coroutine<void> {
            auto held = co_await sem.scoped();
            ADD_FAILURE() << "c2 got the semaphore";
        };
        auto t1 = pyco::create_task(c1(s, t2));
        t2 = pyco::create_task(c2(s));
        co_await t1;
        EXPECT_THROW(co_await t2, pyco::cancelled_error);
        co_await s.acquire();  // would hang if the permit were lost
        EXPECT_TRUE(s.locked());
    };
    pyco::run(body(), vt);
}

// test_release_not_acquired
TEST(BoundedSemaphore, ReleasePastTheInitialValueIsAValueError) {
    pyco::bounded_semaphore s;
    try {
        s.release();
        FAIL() << "no error";
    } catch (const pyco::value_error& e) {
        EXPECT_STREQ(e.what(), "BoundedSemaphore released too many times");
    }
    EXPECT_EQ(s.value(), 1);
}

TEST(BoundedSemaphore, AcquireReleaseWithinTheBound) {
    pyco::bounded_semaphore s(2);
    auto body = [&]() -> coroutine<void> {
        co_await s.acquire();
        co_await s.acquire();
        EXPECT_TRUE(s.locked());
        s.release();
        s.release();
        EXPECT_THROW(s.release(), pyco::value_error);
        {
            auto held = co_await s.scoped();
            EXPECT_EQ(s.value(), 1);
        }
        EXPECT_EQ(s.value(), 2);
    };
    pyco::run(body(), vt);
}

// test_release_no_waiters
TEST(Semaphore, ReleaseWithoutWaitersUnlocks) {
    pyco::semaphore s;
    auto body = [&]() -> coroutine<void> {
        co_await s.acquire();
        EXPECT_TRUE(s.locked());
        s.release();
        EXPECT_FALSE(s.locked());
    };
    pyco::run(body(), vt);
}

// test_acquire_fifo_order
TEST(Semaphore, AcquireIsFifoAcrossRepeatedUse) {
    pyco::semaphore s(1);
    strings result;
    auto coro = [](pyco::semaphore& sem, strings& r, std::string tag) -> coroutine<void> {
        co_await sem.acquire();
        r.push_back(tag + "_1");
        co_await pyco::sleep(10ms);
        sem.release();
        co_await sem.acquire();
        r.push_back(tag + "_2");
        co_await pyco::sleep(10ms);
        sem.release();
    };
    auto body = [&]() -> coroutine<void> {
        auto a = pyco::create_task(coro(s, result, "c1"));
        auto b = pyco::create_task(coro(s, result, "c2"));
        auto c = pyco::create_task(coro(s, result, "c3"));
        co_await a;
        co_await b;
        co_await c;
    };
    pyco::run(body(), vt);
    EXPECT_EQ(result, (strings{"c1_1", "c2_1", "c3_1", "c1_2", "c2_2", "c3_2"}));
}

// test_acquire_fifo_order_2: a task that releases and re-acquires goes to
// the back of the queue.
TEST(Semaphore, ReleaseAndReacquireQueuesBehindEarlierWaiters) {
    pyco::semaphore s(1);
    ints result;
    auto c2f = [](pyco::semaphore& sem, ints& r) -> coroutine<bool> {
        co_await sem.acquire();
        r.push_back(2);
        sem.release();
        co_await sem.acquire();
        r.push_back(4);
        co_return true;
    };
    auto body = [&]() -> coroutine<void> {
        auto t1 = pyco::create_task(acquire_then_record(s, result, 1));
        auto t2 = pyco::create_task(c2f(s, result));
        auto t3 = pyco::create_task(acquire_then_record(s, result, 3));
        co_await pyco::sleep(0s);
        s.release();
        s.release();
        co_await t1;
        co_await t2;
        co_await t3;
    };
    pyco::run(body(), vt);
    EXPECT_EQ(result, (ints{1, 2, 3, 4}));
}

// test_acquire_fifo_order_3
TEST(Semaphore, CancelledWaiterIsSkipped) {
    pyco::semaphore s(0);
    ints result;
    auto body = [&]() -> coroutine<void> {
        auto t1 = pyco::create_task(acquire_then_record(s, result, 1));
        auto t2 = pyco::create_task(acquire_then_record(s, result, 2));
        auto t3 = pyco::create_task(acquire_then_record(s, result, 3));
        co_await pyco::sleep(0s);
        t1.cancel();
        co_await pyco::sleep(0s);
        s.release();
        s.release();
        EXPECT_THROW(co_await t1, pyco::cancelled_error);
        co_await t2;
        co_await t3;
    };
    pyco::run(body(), vt);
    EXPECT_EQ(result, (ints{2, 3}));
}

// test_acquire_fifo_order_4: a successful acquire() wakes further waiters
// that queued (FIFO) while permits were free.
TEST(Semaphore, SuccessfulAcquireWakesWaitersQueuedWhilePermitsWereFree) {
    pyco::semaphore s(0);
    ints result;
    pyco::task<bool> t4;
    auto c4 = [](ints& r) -> coroutine<bool> {
        r.push_back(4);
        co_return true;
    };
    auto c1 = [&c4](pyco::semaphore& sem, ints& r, pyco::task<bool>& t4r) -> coroutine<bool> {
        EXPECT_EQ(sem.value(), 0);
        co_await sem.acquire();
        EXPECT_EQ(sem.value(), 0);  // everyone woken
        t4r = pyco::create_task(c4(r));
        r.push_back(1);
        co_return true;
    };
    auto c2 = [](pyco::semaphore& sem, ints& r) -> coroutine<bool> {
        sem.release();
        sem.release();
        sem.release();
        EXPECT_EQ(sem.value(), 2);
        EXPECT_TRUE(sem.locked());  // c1 has not woken yet
        co_await sem.acquire();
        r.push_back(2);
        co_return true;
    };
    auto c3 = [](pyco::semaphore& sem, ints& r) -> coroutine<bool> {
        co_await sem.acquire();
        EXPECT_TRUE(sem.locked());
        r.push_back(3);
        co_return true;
    };
    auto body = [&]() -> coroutine<void> {
        auto t1 = pyco::create_task(c1(s, result, t4));
        auto t2 = pyco::create_task(c2(s, result));
        auto t3 = pyco::create_task(c3(s, result));
        co_await pyco::sleep(0s);
        EXPECT_EQ(s.value(), 2);
        EXPECT_EQ(s.waiters(), 3u);
        co_await pyco::sleep(0s);
        co_await t1;
        co_await t2;
        co_await t3;
        co_await t4;
    };
    pyco::run(body(), vt);
    EXPECT_EQ(result, (ints{1, 2, 3, 4}));
}

TEST(Semaphore, AsyncWithTakesAndGivesBackAPermit) {
    pyco::semaphore s(2);
    auto body = [&]() -> coroutine<void> {
        auto inside = [&]() -> coroutine<void> {
            EXPECT_EQ(s.value(), 1);
            co_return;
        };
        co_await pyco::async_with(s, inside);
        EXPECT_EQ(s.value(), 2);
    };
    pyco::run(body(), vt);
}

// No permit is ever lost or duplicated under random cancellations.
TEST(Semaphore, PermitsAreConservedUnderCancellations) {
    pyco::semaphore s(3);
    int inside = 0;
    int max_inside = 0;
    auto worker = [](pyco::semaphore& sem, int& in, int& mx, int i) -> coroutine<void> {
        auto held = co_await sem.scoped();
        struct count_inside {
            int& n;
            explicit count_inside(int& c) : n(c) { ++n; }
            ~count_inside() { --n; }  // also when cancelled in the sleep
        } counted(in);
        mx = std::max(mx, in);
        co_await pyco::sleep(std::chrono::milliseconds(1 + i % 3));
    };
    auto body = [&]() -> coroutine<void> {
        std::vector<pyco::task<void>> ts;
        for (int i = 0; i < 60; ++i) ts.push_back(pyco::create_task(worker(s, inside, max_inside, i)));
        for (int round = 0; round < 20; ++round) {
            co_await pyco::sleep(0s);
            ts[static_cast<std::size_t>((round * 7) % 60)].cancel();
            co_await pyco::sleep(1ms);
        }
        for (auto& t : ts) {
            try {
                co_await t;
            } catch (const pyco::cancelled_error&) {
            }
        }
        EXPECT_EQ(s.value(), 3);
        EXPECT_EQ(s.waiters(), 0u);
    };
    pyco::run(body(), vt);
    EXPECT_EQ(max_inside, 3);
    EXPECT_EQ(inside, 0);
}

// The everyday form of `async with sem:`: guards bound the concurrency and
// give every permit back, whichever way their scope ends.
TEST(Semaphore, ScopedGuardsBoundTheConcurrencyAndGiveEveryPermitBack) {
    pyco::semaphore sem(3);
    int inside = 0;
    int max_inside = 0;
    auto worker = [](pyco::semaphore& s, int& in, int& mx, int i) -> coroutine<void> {
        auto held = co_await s.scoped();
        ++in;
        mx = std::max(mx, in);
        co_await pyco::sleep(std::chrono::milliseconds(1 + i % 3));
        --in;
        if (i % 4 == 0) throw pyco::value_error("worker");
    };
    auto body = [&]() -> coroutine<void> {
        std::vector<pyco::task<void>> ts;
        for (int i = 0; i < 12; ++i) ts.push_back(pyco::create_task(worker(sem, inside, max_inside, i)));
        int failed = 0;
        for (auto& t : ts) {
            try {
                co_await t;
            } catch (const pyco::value_error&) {
                ++failed;
            }
        }
        EXPECT_EQ(failed, 3);
    };
    pyco::run(body(), vt);
    EXPECT_EQ(max_inside, 3);
    EXPECT_EQ(sem.value(), 3);
}

// A bounded semaphore's guard releases through the bounded release(), and
// only once: an early release() leaves nothing for its end of scope.
TEST(BoundedSemaphore, ScopedGuardReleasesOnceWithinTheBound) {
    pyco::bounded_semaphore s(1);
    auto body = [&]() -> coroutine<void> {
        {
            auto held = co_await s.scoped();
            EXPECT_EQ(s.value(), 0);
            held.release();
            EXPECT_EQ(s.value(), 1);
        }  // nothing more: a second release would be value_error
        EXPECT_EQ(s.value(), 1);
        try {
            auto held = co_await s.scoped();
            throw pyco::type_error("body");
        } catch (const pyco::type_error&) {
        }
        EXPECT_EQ(s.value(), 1);
    };
    pyco::run(body(), vt);
}

}  // namespace
