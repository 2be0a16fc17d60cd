// pyco::barrier: CPython's BarrierTests (Lib/test/test_asyncio/
// test_locks.py). Left out as Python-only: repr formats, `await barrier`
// TypeError. The repr checks of state become get_state().
#include <pyco/barrier.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include <pyco/async_with.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using state = pyco::barrier::state;

pyco::loop_options vt{.virtual_time = true};
constexpr std::size_t N = 5;

template <class F>
coroutine<std::vector<std::size_t>> run_n(std::size_t n, F make) {
    std::vector<pyco::task<std::size_t>> ts;
    for (std::size_t i = 0; i < n; ++i) ts.push_back(pyco::create_task(make()));
    std::vector<std::size_t> res;
    for (auto& t : ts) res.push_back(co_await t);
    co_return res;
}

std::vector<std::size_t> iota_n(std::size_t n) {
    std::vector<std::size_t> v(n);
    std::iota(v.begin(), v.end(), 0);
    return v;
}

// test_barrier_parties
TEST(Barrier, PartiesMustBePositive) {
    try {
        pyco::barrier b(0);
        FAIL() << "no error";
    } catch (const pyco::value_error& e) {
        EXPECT_STREQ(e.what(), "parties must be >= 1");
    }
    pyco::barrier b(N);
    EXPECT_EQ(b.parties(), N);
    EXPECT_EQ(b.get_state(), state::filling);
}

TEST(Barrier, BrokenBarrierErrorIsARuntimeError) {
    pyco::broken_barrier_error e("x");
    const pyco::runtime_error& r = e;
    EXPECT_STREQ(r.what(), "x");
}

// test_context_manager: async with barrier as i
TEST(Barrier, AsyncWithGivesEachPartyAUniqueIndex) {
    pyco::barrier b(3);
    std::vector<std::size_t> results;
    auto coro = [](pyco::barrier& br, std::vector<std::size_t>& r) -> coroutine<std::size_t> {
        auto body = [&r](std::size_t& i) -> coroutine<void> {
            r.push_back(i);
            co_return;
        };
        co_await pyco::async_with(br, body);
        co_return 0;
    };
    auto body = [&]() -> coroutine<void> {
        auto make = [&] { return coro(b, results); };
        co_await run_n(3, make);
    };
    pyco::run(body(), vt);
    std::sort(results.begin(), results.end());
    EXPECT_EQ(results, iota_n(3));
    EXPECT_EQ(b.n_waiting(), 0u);
    EXPECT_FALSE(b.broken());
}

// test_filling_one_task, test_filling_one_task_twice
TEST(Barrier, OnePartyPassesAtOnceEveryTime) {
    pyco::barrier b(1);
    auto body = [&]() -> coroutine<void> {
        auto t1 = pyco::create_task(b.wait());
        co_await pyco::sleep(0s);
        EXPECT_EQ(b.n_waiting(), 0u);
        auto t2 = pyco::create_task(b.wait());
        co_await pyco::sleep(0s);
        EXPECT_TRUE(t1.done() && t2.done());
        EXPECT_EQ(t1.result(), 0u);
        EXPECT_EQ(t2.result(), 0u);
        EXPECT_FALSE(b.broken());
    };
    pyco::run(body(), vt);
}

// test_filling_task_by_task
TEST(Barrier, NWaitingCountsArrivals) {
    pyco::barrier b(3);
    auto body = [&]() -> coroutine<void> {
        auto t1 = pyco::create_task(b.wait());
        co_await pyco::sleep(0s);
        EXPECT_EQ(b.n_waiting(), 1u);
        auto t2 = pyco::create_task(b.wait());
        co_await pyco::sleep(0s);
        EXPECT_EQ(b.n_waiting(), 2u);
        EXPECT_EQ(b.get_state(), state::filling);
        auto t3 = pyco::create_task(b.wait());
        const std::size_t i1 = co_await t1;
        const std::size_t i2 = co_await t2;
        const std::size_t i3 = co_await t3;
        EXPECT_EQ(i1 + i2 + i3, 3u);
        EXPECT_EQ(b.n_waiting(), 0u);
        EXPECT_FALSE(b.broken());
    };
    pyco::run(body(), vt);
}

// test_filling_tasks_wait_twice, test_filling_tasks_check_return_value
TEST(Barrier, PartiesCanPassTwice) {
    pyco::barrier b(N);
    int first = 0;
    int second = 0;
    auto coro = [](pyco::barrier& br, int& f, int& s) -> coroutine<std::size_t> {
        co_await br.wait();
        ++f;
        const std::size_t i = co_await br.wait();
        ++s;
        co_return i;
    };
    auto body = [&]() -> coroutine<void> {
        auto make = [&] { return coro(b, first, second); };
        auto res = co_await run_n(N, make);
        std::sort(res.begin(), res.end());
        EXPECT_EQ(res, iota_n(N));
    };
    pyco::run(body(), vt);
    EXPECT_EQ(first, 5);
    EXPECT_EQ(second, 5);
    EXPECT_EQ(b.n_waiting(), 0u);
}

// test_draining_state: all but the last party to leave see it draining.
TEST(Barrier, DrainsUntilTheLastPartyLeaves) {
    pyco::barrier b(N);
    std::vector<bool> draining;
    auto coro = [](pyco::barrier& br, std::vector<bool>& d) -> coroutine<std::size_t> {
        co_await br.wait();
        d.push_back(br.get_state() == state::draining);
        co_return 0;
    };
    auto body = [&]() -> coroutine<void> {
        auto make = [&] { return coro(b, draining); };
        co_await run_n(N, make);
    };
    pyco::run(body(), vt);
    ASSERT_EQ(draining.size(), N);
    EXPECT_FALSE(draining.back());
    EXPECT_TRUE(std::all_of(draining.begin(), draining.end() - 1, [](bool x) { return x; }));
}

// test_blocking_tasks_while_draining
TEST(Barrier, ArrivalsWhileDrainingWaitForTheNextTrip) {
    pyco::barrier b(N);
    pyco::barrier b_nowaiting(N - 2);
    int rewait = 2;
    auto coro = [](pyco::barrier& br, pyco::barrier& bn, int& rw) -> coroutine<std::size_t> {
        co_await br.wait();
        if (rw > 0) {
            --rw;
            co_await br.wait();
        } else {
            co_await bn.wait();
            co_await br.wait();
        }
        co_return 0;
    };
    auto body = [&]() -> coroutine<void> {
        auto make = [&] { return coro(b, b_nowaiting, rewait); };
        co_await run_n(N, make);
    };
    pyco::run(body(), vt);
    EXPECT_EQ(b.n_waiting(), 0u);
}

// test_filling_tasks_cancel_one
TEST(Barrier, CancelledPartyLeavesTheCount) {
    pyco::barrier b(3);
    int passed = 0;
    auto coro = [](pyco::barrier& br, int& p) -> coroutine<void> {
        co_await br.wait();
        ++p;
    };
    auto body = [&]() -> coroutine<void> {
        auto t1 = pyco::create_task(coro(b, passed));
        co_await pyco::sleep(0s);
        EXPECT_EQ(b.n_waiting(), 1u);
        auto t2 = pyco::create_task(coro(b, passed));
        co_await pyco::sleep(0s);
        EXPECT_EQ(b.n_waiting(), 2u);
        t1.cancel();
        co_await pyco::sleep(0s);
        EXPECT_EQ(b.n_waiting(), 1u);
        EXPECT_THROW(co_await t1, pyco::cancelled_error);
        auto t3 = pyco::create_task(coro(b, passed));
        co_await pyco::sleep(0s);
        EXPECT_EQ(b.n_waiting(), 2u);
        auto t4 = pyco::create_task(coro(b, passed));
        co_await t2;
        co_await t3;
        co_await t4;
    };
    pyco::run(body(), vt);
    EXPECT_EQ(passed, 3);
    EXPECT_EQ(b.n_waiting(), 0u);
    EXPECT_FALSE(b.broken());
}

// test_reset_barrier, test_abort_barrier
TEST(Barrier, ResetAndAbortWithoutWaiters) {
    pyco::barrier b(1);
    auto body = [&]() -> coroutine<void> {
        co_await b.reset();
        EXPECT_EQ(b.n_waiting(), 0u);
        EXPECT_FALSE(b.broken());
        co_await b.abort();
        EXPECT_TRUE(b.broken());
        try {
            co_await b.wait();
            ADD_FAILURE() << "no error";
        } catch (const pyco::broken_barrier_error& e) {
            EXPECT_STREQ(e.what(), "Barrier aborted");
        }
        co_await b.reset();
        EXPECT_FALSE(b.broken());
        const std::size_t i = co_await b.wait();
        EXPECT_EQ(i, 0u);
    };
    pyco::run(body(), vt);
}

// test_reset_barrier_while_tasks_waiting
TEST(Barrier, ResetBreaksTheCurrentWaiters) {
    pyco::barrier b(N);
    int broken = 0;
    auto coro = [](pyco::barrier& br, int& n) -> coroutine<std::size_t> {
        try {
            co_await br.wait();
        } catch (const pyco::broken_barrier_error& e) {
            EXPECT_STREQ(e.what(), "Abort or reset of barrier");
            ++n;
        }
        co_return 0;
    };
    auto body = [&]() -> coroutine<void> {
        std::vector<pyco::task<std::size_t>> ts;
        for (std::size_t i = 0; i < N - 1; ++i) ts.push_back(pyco::create_task(coro(b, broken)));
        co_await pyco::sleep(0s);
        auto r = pyco::create_task(b.reset());
        for (auto& t : ts) co_await t;
        co_await r;
    };
    pyco::run(body(), vt);
    EXPECT_EQ(broken, static_cast<int>(N - 1));
    EXPECT_EQ(b.n_waiting(), 0u);
    EXPECT_NE(b.get_state(), state::resetting);
    EXPECT_FALSE(b.broken());
}

// test_reset_barrier_while_tasks_waiting_and_waiting_again
TEST(Barrier, PartiesBrokenByResetCanWaitAgain) {
    pyco::barrier b(N);
    int r1 = 0;
    int r2 = 0;
    auto coro1 = [](pyco::barrier& br, int& a, int& c) -> coroutine<std::size_t> {
        try {
            co_await br.wait();
        } catch (const pyco::broken_barrier_error&) {
            ++a;
        }
        co_await br.wait();
        ++c;
        co_return 0;
    };
    auto coro2 = [](pyco::barrier& br, int& c) -> coroutine<std::size_t> {
        co_await br.wait();
        ++c;
        co_return 0;
    };
    auto body = [&]() -> coroutine<void> {
        std::vector<pyco::task<std::size_t>> ts;
        for (std::size_t i = 0; i < N - 1; ++i) ts.push_back(pyco::create_task(coro1(b, r1, r2)));
        auto r = pyco::create_task(b.reset());
        co_await pyco::sleep(0s);
        auto last = pyco::create_task(coro2(b, r2));
        for (auto& t : ts) co_await t;
        co_await last;
        co_await r;
    };
    pyco::run(body(), vt);
    EXPECT_FALSE(b.broken());
    EXPECT_EQ(r1, static_cast<int>(N - 1));
    EXPECT_EQ(r2, static_cast<int>(N));
    EXPECT_EQ(b.n_waiting(), 0u);
}

// test_abort_barrier_when_exception: one party fails and aborts; everyone
// else gets broken_barrier_error, now or at the next wait().
TEST(Barrier, AbortAfterAFailureBreaksEveryone) {
    pyco::barrier b(N);
    int passed = 0;
    int broken = 0;
    auto coro = [](pyco::barrier& br, int& p, int& bk) -> coroutine<std::size_t> {
        bool failed = false;
        try {
            const std::size_t i = co_await br.wait();
            if (i == N / 2) throw pyco::runtime_error("fail");
            co_await br.wait();
            ++p;
        } catch (const pyco::broken_barrier_error&) {
            ++bk;
        } catch (const pyco::runtime_error&) {
            failed = true;
        }
        if (failed) co_await br.abort();
        co_return 0;
    };
    auto body = [&]() -> coroutine<void> {
        auto make = [&] { return coro(b, passed, broken); };
        co_await run_n(N, make);
    };
    pyco::run(body(), vt);
    EXPECT_TRUE(b.broken());
    EXPECT_EQ(passed, 0);
    EXPECT_EQ(broken, static_cast<int>(N - 1));
    EXPECT_EQ(b.n_waiting(), 0u);
}

// test_abort_barrier_when_exception_then_resetting
TEST(Barrier, AbortThenResetLetsEveryonePassAgain) {
    pyco::barrier b1(N);
    pyco::barrier b2(N);
    int r1 = 0;
    int r2 = 0;
    int r3 = 0;
    auto coro = [](pyco::barrier& x, pyco::barrier& y, int& a, int& bk, int& c) -> coroutine<std::size_t> {
        bool failed = false;
        try {
            const std::size_t i = co_await x.wait();
            if (i == N / 2) throw pyco::runtime_error("fail");
            co_await x.wait();
            ++a;
        } catch (const pyco::broken_barrier_error&) {
            ++bk;
        } catch (const pyco::runtime_error&) {
            failed = true;
        }
        if (failed) co_await x.abort();
        const std::size_t j = co_await y.wait();
        if (j == N / 2) co_await x.reset();
        co_await y.wait();
        co_await x.wait();
        ++c;
        co_return 0;
    };
    auto body = [&]() -> coroutine<void> {
        auto make = [&] { return coro(b1, b2, r1, r2, r3); };
        co_await run_n(N, make);
    };
    pyco::run(body(), vt);
    EXPECT_FALSE(b1.broken());
    EXPECT_EQ(r1, 0);
    EXPECT_EQ(r2, static_cast<int>(N - 1));
    EXPECT_EQ(r3, static_cast<int>(N));
    EXPECT_EQ(b1.n_waiting(), 0u);
}

}  // namespace
