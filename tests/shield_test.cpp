// shield: the shield cases of CPython's test_asyncio/test_tasks.py
// (test_shield_result, _exception, _cancel_inner, _cancel_outer,
// _shortcut, _effect, _gather, test_gather_shield). Left out: the loop=
// argument and the weakref-based background-task case (pyco tasks keep
// themselves alive).
#include <pyco/shield.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <pyco/gather.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using pyco::future;

pyco::loop_options vt{.virtual_time = true};

coroutine<void> run_briefly() {
    for (int i = 0; i < 4; ++i) co_await pyco::sleep(0s);
}

// test_shield_result
TEST(Shield, GivesTheInnerResult) {
    auto body = []() -> coroutine<void> {
        future<int> inner(pyco::get_running_loop());
        auto outer = pyco::shield(inner);
        inner.set_result(42);
        co_await run_briefly();
        EXPECT_EQ(outer.result(), 42);
    };
    pyco::run(body());
}

// test_shield_exception
TEST(Shield, GivesTheInnerException) {
    auto body = []() -> coroutine<void> {
        future<int> inner(pyco::get_running_loop());
        auto outer = pyco::shield(inner);
        co_await run_briefly();
        auto exc = std::make_exception_ptr(pyco::runtime_error("expected"));
        inner.set_exception(exc);
        co_await run_briefly();
        EXPECT_EQ(outer.exception(), exc);
    };
    pyco::run(body());
}

// test_shield_cancel_inner
TEST(Shield, CancellingTheInnerCancelsTheOuter) {
    auto body = []() -> coroutine<void> {
        future<int> inner(pyco::get_running_loop());
        auto outer = pyco::shield(inner);
        co_await run_briefly();
        inner.cancel();
        co_await run_briefly();
        EXPECT_TRUE(outer.cancelled());
    };
    pyco::run(body());
}

// test_shield_cancel_outer
TEST(Shield, CancellingTheOuterLeavesTheInnerAlone) {
    auto body = []() -> coroutine<void> {
        future<int> inner(pyco::get_running_loop());
        auto outer = pyco::shield(inner);
        co_await run_briefly();
        EXPECT_TRUE(outer.cancel());
        co_await run_briefly();
        EXPECT_TRUE(outer.cancelled());
        EXPECT_FALSE(inner.cancelled());
        inner.set_result(1);  // nobody listens any more: nothing happens
        co_await run_briefly();
        EXPECT_TRUE(outer.cancelled());
    };
    pyco::run(body());
}

// test_shield_cancel_outer_result_mark_retrieved /
// test_shield_cancel_outer_exception_mark_retrieved: a failure of the inner
// after the outer was cancelled is not reported as never retrieved.
TEST(Shield, InnerFailureAfterOuterCancelIsMarkedRetrieved) {
    std::vector<std::string> reports;
    auto body = [&]() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        loop.set_exception_handler(
            [&](pyco::event_loop&, const pyco::exception_context& c) { reports.push_back(c.message); });
        {
            future<int> inner(loop);
            auto outer = pyco::shield(inner);
            co_await run_briefly();
            outer.cancel();
            co_await run_briefly();
            inner.set_exception(pyco::value_error("late"));
            co_await run_briefly();
        }
        co_await run_briefly();
    };
    pyco::run(body());
    EXPECT_TRUE(reports.empty()) << reports.front();
}

// test_shield_shortcut
TEST(Shield, ADoneFutureIsGivenBackAsItIs) {
    auto body = []() -> coroutine<void> {
        future<int> fut(pyco::get_running_loop());
        fut.set_result(42);
        auto res = pyco::shield(fut);
        EXPECT_TRUE(res == fut);
        EXPECT_EQ(co_await res, 42);
    };
    pyco::run(body());
}

TEST(Shield, ADoneTaskGivesADoneFutureAtOnce) {
    auto body = []() -> coroutine<void> {
        auto quick = []() -> coroutine<int> { co_return 5; };
        auto doomed = []() -> coroutine<int> { co_await pyco::sleep(1h); co_return 0; };
        auto t = pyco::create_task(quick());
        auto c = pyco::create_task(doomed());
        co_await pyco::sleep(0s);
        c.cancel("gone");
        co_await pyco::sleep(0s);
        EXPECT_TRUE(t.done() && c.done());
        auto a = pyco::shield(t);
        EXPECT_TRUE(a.done());
        EXPECT_EQ(a.result(), 5);
        auto b = pyco::shield(c);
        EXPECT_TRUE(b.cancelled());
        try {
            b.result();
            ADD_FAILURE();
        } catch (const pyco::cancelled_error& e) {
            EXPECT_STREQ(e.what(), "gone");
        }
    };
    pyco::run(body());
}

// test_shield_effect: cancelling the task awaiting a shield raises in it at
// once; the shielded work runs on.
TEST(Shield, CancellingTheAwaitingTaskDoesNotCancelTheInnerWork) {
    auto body = []() -> coroutine<void> {
        int proof = 0;
        future<void> waiter(pyco::get_running_loop());
        auto inner = [](future<void> w, int& p) -> coroutine<void> {
            co_await w;
            p += 1;
        };
        auto outer = [](coroutine<void> in, int& p) -> coroutine<void> {
            co_await pyco::shield(std::move(in));
            p += 100;
        };
        auto f = pyco::create_task(outer(inner(waiter, proof), proof));
        co_await run_briefly();
        EXPECT_TRUE(f.cancel());
        EXPECT_THROW(co_await f, pyco::cancelled_error);
        EXPECT_FALSE(waiter.cancelled());
        EXPECT_EQ(proof, 0);
        waiter.set_result();
        co_await run_briefly();
        EXPECT_EQ(proof, 1);  // the inner finished; the outer never went on
    };
    pyco::run(body());
}

TEST(Shield, AwaitingAShieldedCoroutineGivesItsResult) {
    auto body = []() -> coroutine<int> {
        auto work = []() -> coroutine<int> {
            co_await pyco::sleep(5ms);
            co_return 11;
        };
        co_return co_await pyco::shield(work());
    };
    EXPECT_EQ(pyco::run(body(), vt), 11);
}

// test_shield_gather
TEST(Shield, ShieldingAGatherKeepsItsChildrenGoing) {
    auto body = []() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        future<int> child1(loop), child2(loop);
        auto parent = pyco::gather(child1, child2);
        auto outer = pyco::shield(parent);
        co_await run_briefly();
        outer.cancel();
        co_await run_briefly();
        EXPECT_TRUE(outer.cancelled());
        child1.set_result(1);
        child2.set_result(2);
        co_await run_briefly();
        EXPECT_EQ(parent.result(), std::make_tuple(1, 2));
    };
    pyco::run(body());
}

// test_gather_shield
TEST(Shield, GatheringShieldsCancelsOnlyTheShields) {
    auto body = []() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        future<int> child1(loop), child2(loop);
        auto inner1 = pyco::shield(child1);
        auto inner2 = pyco::shield(child2);
        auto parent = pyco::gather(inner1, inner2);
        co_await run_briefly();
        parent.cancel();
        // This cancels inner1 and inner2 but not child1 and child2.
        co_await run_briefly();
        EXPECT_TRUE(pyco::exception_group::matches<pyco::cancelled_error>(parent.exception()));
        EXPECT_TRUE(inner1.cancelled());
        EXPECT_TRUE(inner2.cancelled());
        EXPECT_FALSE(child1.done());
        child1.set_result(1);
        child2.set_result(2);
        co_await run_briefly();
    };
    pyco::run(body());
}

}  // namespace
