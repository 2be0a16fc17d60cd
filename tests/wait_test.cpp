// wait, wait_for, as_completed: the wait/as_completed cases of CPython's
// test_asyncio/test_tasks.py and all of test_waitfor.py (3.12). Left out:
// argument-type checks that C++ makes at compile time (checked here with
// static_assert instead), the loop= argument, return_when validation (an
// enum here), and races between equal timer deadlines that CPython's
// float clock never produces.
#include <pyco/wait.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <pyco/detail/pointer_set.hpp>
#include <pyco/gather.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using pyco::future;
using pyco::task;

pyco::loop_options vt{.virtual_time = true};

template <class T>
coroutine<T> value_after(std::chrono::milliseconds d, T v) {
    co_await pyco::sleep(d);
    co_return v;
}

coroutine<int> fail_after(std::chrono::milliseconds d) {
    co_await pyco::sleep(d);
    throw pyco::value_error("failed");
}

std::chrono::milliseconds elapsed(pyco::event_loop::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(pyco::get_running_loop().time() - t0);
}

template <class H>
bool same_set(const std::vector<H>& a, std::vector<H> b) {
    if (a.size() != b.size()) return false;
    for (const H& x : a) {
        if (std::find(b.begin(), b.end(), x) == b.end()) return false;
    }
    return true;
}

// 3.12 refuses coroutines and wants a collection, not one future.
template <class... A>
concept can_wait = requires(A&&... a) { pyco::wait(std::forward<A>(a)...); };
static_assert(can_wait<std::vector<task<int>>&>);
static_assert(can_wait<std::vector<future<int>>&, std::chrono::milliseconds>);
static_assert(!can_wait<std::vector<coroutine<int>>&>);
static_assert(!can_wait<task<int>&>);

// ------------------------------------------------------------------ wait

// test_wait
TEST(Wait, AllCompletedWaitsForEveryOne) {
    auto body = []() -> coroutine<void> {
        const auto t0 = pyco::get_running_loop().time();
        auto a = pyco::create_task(value_after(100ms, 1));
        auto b = pyco::create_task(value_after(150ms, 2));
        std::vector<task<int>> fs{b, a};
        auto [done, pending] = co_await pyco::wait(fs);
        EXPECT_TRUE(same_set(done, {a, b}));
        EXPECT_TRUE(pending.empty());
        EXPECT_EQ(elapsed(t0), 150ms);
    };
    pyco::run(body(), vt);
}

// test_wait_first_completed
TEST(Wait, FirstCompletedReturnsAtTheFirstDone) {
    auto body = []() -> coroutine<void> {
        const auto t0 = pyco::get_running_loop().time();
        auto a = pyco::create_task(value_after(10s, 1));
        auto b = pyco::create_task(value_after(100ms, 2));
        std::vector<task<int>> fs{b, a};
        auto [done, pending] = co_await pyco::wait(fs, pyco::first_completed);
        EXPECT_EQ(done, std::vector<task<int>>{b});
        EXPECT_EQ(pending, std::vector<task<int>>{a});
        EXPECT_FALSE(a.done());
        EXPECT_EQ(elapsed(t0), 100ms);
        a.cancel();  // wait() never cancels: that is ours to do
    };
    pyco::run(body(), vt);
}

// test_wait_really_done
TEST(Wait, FirstCompletedSeesEveryOneDoneByThen) {
    auto body = []() -> coroutine<void> {
        auto coro1 = []() -> coroutine<void> { co_await pyco::sleep(0s); };
        auto coro2 = []() -> coroutine<void> { co_return; };
        std::vector<pyco::task<void>> fs{pyco::create_task(coro1()), pyco::create_task(coro2())};
        auto [done, pending] = co_await pyco::wait(fs, pyco::first_completed);
        EXPECT_EQ(done.size(), 2u);
        EXPECT_TRUE(pending.empty());
    };
    pyco::run(body(), vt);
}

// test_wait_first_exception
TEST(Wait, FirstExceptionReturnsAtTheFirstFailure) {
    auto body = []() -> coroutine<void> {
        auto a = pyco::create_task(value_after(10s, 1));
        auto exc = []() -> coroutine<int> {
            throw pyco::value_error("zde");
            co_return 0;
        };
        auto b = pyco::create_task(exc());
        std::vector<task<int>> fs{b, a};
        auto [done, pending] = co_await pyco::wait(fs, pyco::first_exception);
        EXPECT_EQ(done, std::vector<task<int>>{b});
        EXPECT_EQ(pending, std::vector<task<int>>{a});
        a.cancel();
    };
    pyco::run(body(), vt);
}

// test_wait_first_exception_in_wait
TEST(Wait, FirstExceptionWhileWaiting) {
    auto body = []() -> coroutine<void> {
        const auto t0 = pyco::get_running_loop().time();
        auto a = pyco::create_task(value_after(10s, 1));
        auto b = pyco::create_task(fail_after(10ms));
        std::vector<task<int>> fs{b, a};
        auto [done, pending] = co_await pyco::wait(fs, pyco::first_exception);
        EXPECT_EQ(done, std::vector<task<int>>{b});
        EXPECT_EQ(pending, std::vector<task<int>>{a});
        EXPECT_EQ(elapsed(t0), 10ms);
        a.cancel();
    };
    pyco::run(body(), vt);
}

// first_exception does not count a cancellation as an exception
TEST(Wait, FirstExceptionWithoutFailuresIsAllCompleted) {
    auto body = []() -> coroutine<void> {
        const auto t0 = pyco::get_running_loop().time();
        auto a = pyco::create_task(value_after(30ms, 1));
        auto b = pyco::create_task(value_after(10s, 2));
        std::vector<task<int>> fs{a, b};
        auto canceller = [](task<int> t) -> coroutine<void> {
            co_await pyco::sleep(10ms);
            t.cancel();
        };
        auto c = pyco::create_task(canceller(b));
        auto [done, pending] = co_await pyco::wait(fs, pyco::first_exception);
        EXPECT_EQ(done.size(), 2u);
        EXPECT_EQ(elapsed(t0), 30ms);
        co_await c;
    };
    pyco::run(body(), vt);
}

// test_wait_with_exception
TEST(Wait, AllCompletedCarriesOnPastAFailure) {
    auto body = []() -> coroutine<void> {
        const auto t0 = pyco::get_running_loop().time();
        auto a = pyco::create_task(value_after(100ms, 1));
        auto b = pyco::create_task(fail_after(150ms));
        std::vector<task<int>> fs{b, a};
        auto [done, pending] = co_await pyco::wait(fs);
        EXPECT_EQ(done.size(), 2u);
        EXPECT_EQ(elapsed(t0), 150ms);
        EXPECT_THROW(co_await b, pyco::value_error);
    };
    pyco::run(body(), vt);
}

// test_wait_with_timeout: nothing is cancelled at the timeout
TEST(Wait, TimeoutReturnsWhatIsDoneAndCancelsNothing) {
    auto body = []() -> coroutine<void> {
        const auto t0 = pyco::get_running_loop().time();
        auto a = pyco::create_task(value_after(100ms, 1));
        auto b = pyco::create_task(value_after(150ms, 2));
        std::vector<task<int>> fs{b, a};
        auto [done, pending] = co_await pyco::wait(fs, 110ms);
        EXPECT_EQ(done, std::vector<task<int>>{a});
        EXPECT_EQ(pending, std::vector<task<int>>{b});
        EXPECT_EQ(elapsed(t0), 110ms);
        EXPECT_EQ(co_await b, 2);  // still running
    };
    pyco::run(body(), vt);
}

// test_wait_invalid_args
TEST(Wait, AnEmptySetIsAValueError) {
    auto body = []() -> coroutine<std::string> {
        std::vector<task<int>> none;
        try {
            co_await pyco::wait(none);
        } catch (const pyco::value_error& e) {
            co_return e.what();
        }
        co_return "no error";
    };
    EXPECT_EQ(pyco::run(body()), "Set of Tasks/Futures is empty.");
}

// test_wait_duplicate_coroutines (with tasks)
TEST(Wait, DuplicatesCountOnce) {
    auto body = []() -> coroutine<void> {
        auto t = pyco::create_task(value_after(1ms, 5));
        std::vector<task<int>> fs{t, t};
        auto [done, pending] = co_await pyco::wait(fs);
        EXPECT_EQ(done, std::vector<task<int>>{t});
        EXPECT_TRUE(pending.empty());
    };
    pyco::run(body(), vt);
}

TEST(Wait, FuturesAndMixedTasksThroughAnyTask) {
    auto body = []() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        future<std::string> f(loop);
        f.set_result("ready");
        std::vector<future<std::string>> fs{f};
        auto [done, pending] = co_await pyco::wait(fs, pyco::first_completed);
        EXPECT_EQ(done, fs);
        auto i = pyco::create_task(value_after(1ms, 1));
        auto s = pyco::create_task(value_after(2ms, std::string("s")));
        std::vector<pyco::any_task> mixed{i, s};
        auto r = co_await pyco::wait(mixed);
        EXPECT_EQ(r.done.size(), 2u);
    };
    pyco::run(body(), vt);
}

// Cancelling the waiting task leaves the awaited tasks alone.
TEST(Wait, CancellingTheWaiterCancelsNothingElse) {
    auto body = []() -> coroutine<void> {
        auto a = pyco::create_task(value_after(100ms, 1));
        std::vector<task<int>> fs{a};
        auto waiter = [](std::vector<task<int>> v) -> coroutine<void> { co_await pyco::wait(v); };
        auto w = pyco::create_task(waiter(fs));
        co_await pyco::sleep(10ms);
        w.cancel();
        EXPECT_THROW(co_await w, pyco::cancelled_error);
        EXPECT_FALSE(a.done());
        EXPECT_EQ(co_await a, 1);
    };
    pyco::run(body(), vt);
}

// ------------------------------------------------------------------ wait_for

// SlowTask: runs for 200ms of loop time, ignoring cancel requests.
struct slow_task {
    static constexpr auto duration = 200ms;
    bool exited = false;
    coroutine<void> run() {
        auto& loop = pyco::get_running_loop();
        const auto exit_at = loop.time() + duration;
        for (;;) {
            auto to_sleep = exit_at - loop.time();
            if (to_sleep <= to_sleep.zero()) break;
            try {
                co_await pyco::sleep(to_sleep);
            } catch (const pyco::cancelled_error&) {
            }
        }
        exited = true;
    }
};

// test_asyncio_wait_for_cancelled
TEST(WaitFor, CancelledWaitForWaitsForTheInnerToEnd) {
    auto body = []() -> coroutine<void> {
        slow_task t;
        auto w = pyco::create_task(pyco::wait_for(t.run(), slow_task::duration * 2));
        co_await pyco::sleep(0s);
        w.cancel();
        std::vector<task<void>> ws{w};
        co_await pyco::wait(ws);
        EXPECT_TRUE(t.exited);
    };
    pyco::run(body(), vt);
}

// test_asyncio_wait_for_timeout
TEST(WaitFor, TimeoutWaitsForTheInnerToEnd) {
    auto body = []() -> coroutine<void> {
        slow_task t;
        try {
            co_await pyco::wait_for(t.run(), slow_task::duration / 2);
        } catch (const pyco::timeout_error&) {
        }
        EXPECT_TRUE(t.exited);
    };
    pyco::run(body(), vt);
}

// test_wait_for_timeout_less_then_0_or_0_future_done
TEST(WaitFor, ZeroTimeoutOnADoneFutureGivesItsResult) {
    auto body = []() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        future<std::string> fut(loop);
        fut.set_result("done");
        const auto t0 = loop.time();
        std::string ret = co_await pyco::wait_for(fut, 0s);
        EXPECT_EQ(ret, "done");
        EXPECT_TRUE(fut.done());
        EXPECT_EQ(elapsed(t0), 0ms);
    };
    pyco::run(body(), vt);
}

// test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started
TEST(WaitFor, ZeroTimeoutNeverStartsACoroutine) {
    auto body = []() -> coroutine<void> {
        bool started = false;
        auto foo = [](bool& s) -> coroutine<void> {
            s = true;
            co_return;
        };
        EXPECT_THROW(co_await pyco::wait_for(foo(started), 0s), pyco::timeout_error);
        EXPECT_FALSE(started);
    };
    pyco::run(body(), vt);
}

// test_wait_for_timeout_less_then_0_or_0
TEST(WaitFor, ZeroOrNegativeTimeoutCancelsARunningTask) {
    for (auto timeout : {0ms, -1000ms}) {
        auto body = [timeout]() -> coroutine<void> {
            auto& loop = pyco::get_running_loop();
            std::optional<bool> running;
            future<void> started(loop);
            auto foo = [](std::optional<bool>& r, future<void> st) -> coroutine<std::string> {
                r = true;
                st.set_result();
                try {
                    co_await pyco::sleep(10s);
                } catch (...) {
                    r = false;
                    throw;
                }
                r = false;
                co_return "done";
            };
            auto fut = pyco::create_task(foo(running, started));
            co_await started;
            const auto t0 = loop.time();
            EXPECT_THROW(co_await pyco::wait_for(fut, timeout), pyco::timeout_error);
            EXPECT_TRUE(fut.done());
            EXPECT_TRUE(fut.cancelled());
            EXPECT_EQ(running, false);
            EXPECT_EQ(elapsed(t0), 0ms);
        };
        pyco::run(body(), vt);
    }
}

// test_wait_for
TEST(WaitFor, TimeoutCancelsTheTaskAndRaisesTimeoutError) {
    auto body = []() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        std::optional<bool> running;
        auto foo = [](std::optional<bool>& r) -> coroutine<std::string> {
            r = true;
            try {
                co_await pyco::sleep(10s);
            } catch (...) {
                r = false;
                throw;
            }
            co_return "done";
        };
        auto fut = pyco::create_task(foo(running));
        const auto t0 = loop.time();
        EXPECT_THROW(co_await pyco::wait_for(fut, 100ms), pyco::timeout_error);
        EXPECT_TRUE(fut.cancelled());
        EXPECT_EQ(elapsed(t0), 100ms);
        EXPECT_EQ(running, false);
        EXPECT_EQ(pyco::current_task().cancelling(), 0);  // the timeout's request is withdrawn
    };
    pyco::run(body(), vt);
}

// test_wait_for_blocking
TEST(WaitFor, NoTimeoutJustAwaits) {
    auto body = []() -> coroutine<std::string> {
        auto coro = []() -> coroutine<std::string> { co_return "done"; };
        co_return co_await pyco::wait_for(coro(), std::nullopt);
    };
    EXPECT_EQ(pyco::run(body(), vt), "done");
}

// test_wait_for_race_condition
TEST(WaitFor, ResultBeforeTheTimeoutIsReturned) {
    auto body = []() -> coroutine<std::string> {
        auto& loop = pyco::get_running_loop();
        future<std::string> fut(loop);
        loop.call_later(100ms, [fut]() mutable { fut.set_result("ok"); });
        co_return co_await pyco::wait_for(fut, 200ms);
    };
    EXPECT_EQ(pyco::run(body(), vt), "ok");
}

// test_wait_for_cancellation_race_condition / test_wait_for_cancel_suppressed:
// an inner that absorbs the cancellation and returns gives its value.
TEST(WaitFor, InnerThatAbsorbsTheCancellationGivesItsValue) {
    auto body = []() -> coroutine<int> {
        auto inner = []() -> coroutine<int> {
            try {
                co_await pyco::sleep(1s);
            } catch (const pyco::cancelled_error&) {
                co_return 42;
            }
            co_return 0;
        };
        int r = co_await pyco::wait_for(inner(), 10ms);
        EXPECT_EQ(pyco::current_task().cancelling(), 0);
        co_return r;
    };
    EXPECT_EQ(pyco::run(body(), vt), 42);
}

// test_wait_for_waits_for_task_cancellation
TEST(WaitFor, WaitsForTheTaskToFinishCancelling) {
    auto body = []() -> coroutine<void> {
        bool task_done = false;
        auto inner = [](bool& d) -> coroutine<void> {
            std::exception_ptr cancel;
            try {
                co_await pyco::sleep(10s);
            } catch (const pyco::cancelled_error&) {
                cancel = std::current_exception();
            }
            if (cancel) co_await pyco::sleep(1ms);  // (no co_await in a handler)
            d = true;
            if (cancel) std::rethrow_exception(cancel);
        };
        auto inner_task = pyco::create_task(inner(task_done));
        EXPECT_THROW(co_await pyco::wait_for(inner_task, 1ms), pyco::timeout_error);
        EXPECT_TRUE(task_done);
    };
    pyco::run(body(), vt);
}

// test_wait_for_waits_for_task_cancellation_w_timeout_0
TEST(WaitFor, ZeroTimeoutWaitsForTheTaskToFinishCancelling) {
    auto body = []() -> coroutine<void> {
        bool task_done = false;
        auto inner = [](bool& d) -> coroutine<void> {
            std::exception_ptr cancel;
            try {
                co_await pyco::sleep(10s);
            } catch (const pyco::cancelled_error&) {
                cancel = std::current_exception();
            }
            if (cancel) co_await pyco::sleep(1ms);
            d = true;
            if (cancel) std::rethrow_exception(cancel);
        };
        auto inner_task = pyco::create_task(inner(task_done));
        co_await pyco::sleep(1ms);
        EXPECT_THROW(co_await pyco::wait_for(inner_task, 0s), pyco::timeout_error);
        EXPECT_TRUE(task_done);
    };
    pyco::run(body(), vt);
}

// test_wait_for_reraises_exception_during_cancellation
TEST(WaitFor, AnExceptionRaisedWhileCancellingIsReraised) {
    auto body = []() -> coroutine<void> {
        auto inner = []() -> coroutine<void> {
            try {
                co_await pyco::sleep(200ms);
            } catch (...) {
            }
            throw pyco::runtime_error("foo");
        };
        auto inner_task = pyco::create_task(inner());
        EXPECT_THROW(co_await pyco::wait_for(inner_task, 1ms), pyco::runtime_error);
    };
    pyco::run(body(), vt);
}

// test_wait_for_self_cancellation
TEST(WaitFor, WaitForIsCancellableWhileTheInnerHoldsOut) {
    auto body = []() -> coroutine<void> {
        auto inner = []() -> coroutine<int> {
            bool c1 = false, c2 = false;
            try {
                co_await pyco::sleep(300ms);
            } catch (const pyco::cancelled_error&) {
                c1 = true;
            }
            if (c1) {
                try {
                    co_await pyco::sleep(300ms);
                } catch (const pyco::cancelled_error&) {
                    c2 = true;
                }
            }
            if (c2) co_await pyco::sleep(300ms);
            co_return 42;
        };
        auto inner_task = pyco::create_task(inner());
        auto wait = pyco::wait_for(inner_task, 100ms);
        auto t = pyco::create_task(std::move(wait));
        t.cancel();
        EXPECT_THROW(co_await t, pyco::cancelled_error);
        EXPECT_EQ(co_await inner_task, 42);
    };
    pyco::run(body(), vt);
}

// test_cancel_blocking_wait_for / test_cancel_wait_for (Python issue #23219)
TEST(WaitFor, CancellingTheWaitCancelsTheTask) {
    for (bool with_timeout : {false, true}) {
        auto body = [with_timeout]() -> coroutine<void> {
            auto& loop = pyco::get_running_loop();
            auto blocking = [](pyco::event_loop& l) -> coroutine<void> {
                future<void> fut(l);
                co_await fut;  // never set
            };
            auto t = pyco::create_task(blocking(loop));
            coroutine<void> w = with_timeout ? pyco::wait_for(t, 60s) : pyco::wait_for(t, std::nullopt);
            auto wait = pyco::create_task(std::move(w));
            loop.call_soon([wait]() mutable { wait.cancel(); });
            EXPECT_THROW(co_await wait, pyco::cancelled_error);
            EXPECT_TRUE(t.cancelled());
        };
        pyco::run(body(), vt);
    }
}

// test_wait_for_issue86296
TEST(WaitFor, CancelAfterAnEarlyReturnIsNotLost) {
    auto body = []() -> coroutine<void> {
        bool reached_end = false;
        auto inner = []() -> coroutine<void> { co_return; };
        auto wait_for_coro = [](auto mk, bool& end) -> coroutine<void> {
            co_await pyco::wait_for(mk(), 100s);
            co_await pyco::sleep(1s);
            end = true;
        };
        auto t = pyco::create_task(wait_for_coro(inner, reached_end));
        co_await pyco::sleep(0s);
        EXPECT_FALSE(t.done());
        t.cancel();
        EXPECT_THROW(co_await t, pyco::cancelled_error);
        EXPECT_FALSE(reached_end);
    };
    pyco::run(body(), vt);
}

// 3.12 (timeouts): a cancel from elsewhere that arrives with the timeout
// wins; wait_for does not turn it into timeout_error.
TEST(WaitFor, AnOutsideCancelBeatsTheTimeout) {
    auto body = []() -> coroutine<void> {
        auto victim = []() -> coroutine<void> {
            auto& loop = pyco::get_running_loop();
            pyco::any_task me = pyco::current_task();
            loop.call_later(10ms, [me]() mutable { me.cancel(); });
            co_await pyco::wait_for(pyco::sleep(1h), 10ms);
        };
        auto t = pyco::create_task(victim());
        EXPECT_THROW(co_await t, pyco::cancelled_error);
        EXPECT_TRUE(t.cancelled());
    };
    pyco::run(body(), vt);
}

// --------------------------------------------------------------- as_completed

// test_as_completed
TEST(AsCompleted, GivesResultsInCompletionOrder) {
    auto body = []() -> coroutine<void> {
        const auto t0 = pyco::get_running_loop().time();
        std::vector<coroutine<std::string>> cs;
        cs.push_back(value_after(100ms, std::string("a")));
        cs.push_back(value_after(150ms, std::string("b")));
        cs.push_back(value_after(50ms, std::string("c")));
        std::vector<std::string> values;
        for (auto& f : pyco::as_completed(cs)) values.push_back(co_await f);
        EXPECT_EQ(values, (std::vector<std::string>{"c", "a", "b"}));
        EXPECT_EQ(elapsed(t0), 150ms);
    };
    pyco::run(body(), vt);
}

// CPython 3.12: as_completed takes the running loop and refuses a future
// of another one, even when every future is of that other loop.
TEST(AsCompleted, AFutureOfAnotherLoopIsRefused) {
    std::optional<pyco::event_loop> other(std::in_place);
    future<int> theirs(*other);
    auto body = [&]() -> coroutine<void> {
        future<int> mine(pyco::get_running_loop());
        std::vector<future<int>> only_theirs{theirs};
        std::vector<future<int>> mixed{mine, theirs};
        for (auto* fs : {&only_theirs, &mixed}) {
            try {
                (void)pyco::as_completed(*fs);
                ADD_FAILURE() << "no error";
            } catch (const pyco::value_error& e) {
                EXPECT_STREQ(e.what(),
                             "The future belongs to a different loop than the one specified as the loop argument");
            }
        }
        other.reset();  // now theirs is of a destroyed loop
        EXPECT_THROW((void)pyco::as_completed(only_theirs), pyco::value_error);
        mine.set_result(1);
        co_return;
    };
    pyco::run(body());
}

// test_as_completed_with_timeout
TEST(AsCompleted, TimeoutRaisesInTheOnesStillWaiting) {
    auto body = []() -> coroutine<void> {
        const auto t0 = pyco::get_running_loop().time();
        auto a = pyco::create_task(value_after(100ms, 1));
        auto b = pyco::create_task(value_after(150ms, 2));
        std::vector<task<int>> fs{a, b};
        std::vector<std::string> values;
        for (auto& f : pyco::as_completed(fs, 120ms)) {
            try {
                values.push_back(std::to_string(co_await f));
            } catch (const pyco::timeout_error&) {
                values.push_back("timeout");
            }
        }
        EXPECT_EQ(values, (std::vector<std::string>{"1", "timeout"}));
        EXPECT_EQ(elapsed(t0), 120ms);
        EXPECT_FALSE(b.done());  // not cancelled
        EXPECT_EQ(co_await b, 2);
    };
    pyco::run(body(), vt);
}

// test_as_completed_reverse_wait
TEST(AsCompletedReverse, WhicheverIsAwaitedFirstGetsTheFirstDone) {
    auto body = []() -> coroutine<void> {
        std::vector<coroutine<std::string>> cs;
        cs.push_back(value_after(50ms, std::string("a")));
        cs.push_back(value_after(100ms, std::string("b")));
        auto futs = pyco::as_completed(cs);
        EXPECT_EQ(futs.size(), 2u);
        std::string x = co_await futs[1];
        EXPECT_EQ(x, "a");
        std::string y = co_await futs[0];
        EXPECT_EQ(y, "b");
    };
    pyco::run(body(), vt);
}

// test_as_completed_concurrent
TEST(AsCompleted, AwaitedConcurrently) {
    auto body = []() -> coroutine<void> {
        std::vector<coroutine<std::string>> cs;
        cs.push_back(value_after(50ms, std::string("a")));
        cs.push_back(value_after(50ms, std::string("b")));
        auto futs = pyco::as_completed(cs);
        std::vector<std::string> got = co_await pyco::gather(futs);
        std::sort(got.begin(), got.end());
        EXPECT_EQ(got, (std::vector<std::string>{"a", "b"}));
    };
    pyco::run(body(), vt);
}

// test_as_completed_duplicate_coroutines (with tasks)
TEST(AsCompleted, DuplicatesCountOnce) {
    auto body = []() -> coroutine<void> {
        auto t = pyco::create_task(value_after(1ms, 3));
        std::vector<task<int>> fs{t, t};
        auto futs = pyco::as_completed(fs);
        EXPECT_EQ(futs.size(), 1u);
        EXPECT_EQ(co_await futs[0], 3);
    };
    pyco::run(body(), vt);
}

TEST(AsCompleted, ExceptionsComeOutOfTheirTurn) {
    auto body = []() -> coroutine<void> {
        std::vector<coroutine<int>> cs;
        cs.push_back(value_after(20ms, 1));
        cs.push_back(fail_after(10ms));
        auto futs = pyco::as_completed(cs);
        EXPECT_THROW(co_await futs[0], pyco::value_error);
        EXPECT_EQ(co_await futs[1], 1);
    };
    pyco::run(body(), vt);
}

// Dropping the coroutines early detaches from the futures: nothing leaks
// (the sanitizer build checks) and the futures are left alone.
TEST(AsCompleted, DroppedEarlyLeavesTheFuturesAlone) {
    auto body = []() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        future<int> never(loop);
        future<int> soon(loop);
        {
            std::vector<future<int>> fs{never, soon};
            auto futs = pyco::as_completed(fs, 1s);
            soon.set_result(4);
            EXPECT_EQ(co_await futs[0], 4);
        }
        co_await pyco::sleep(2s);  // the timer was cancelled with the state
        EXPECT_FALSE(never.done());
    };
    // CPython makes each coroutine when it is asked for: the one never
    // asked for does not exist, so it cannot be "never awaited".
    testing::internal::CaptureStderr();
    pyco::run(body(), vt);
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(err.find("never awaited"), std::string::npos) << err;
}

// A timeout beyond the clock's range used to overflow into the past and time
// out at once; CPython's wait_for(aw, 1e300) just waits.
TEST(WaitFor, TimeoutBeyondTheClockJustWaits) {
    auto main = []() -> coroutine<int> {
        int a = co_await pyco::wait_for(value_after(1h, 1), std::chrono::seconds::max());
        int b = co_await pyco::wait_for(value_after(1h, 2), std::chrono::nanoseconds::max());
        int c = co_await pyco::wait_for(value_after(1h, 3), std::chrono::duration<double>(1e300));
        co_return a + b + c;
    };
    EXPECT_EQ(pyco::run(main(), vt), 6);
}

TEST(Wait, TimeoutBeyondTheClockJustWaits) {
    auto main = []() -> coroutine<std::size_t> {
        std::vector<task<int>> fs{pyco::create_task(value_after(1h, 1))};
        auto r = co_await pyco::wait(fs, std::chrono::hours::max());
        co_return r.done.size();
    };
    EXPECT_EQ(pyco::run(main(), vt), 1u);
}

TEST(AsCompleted, TimeoutBeyondTheClockJustWaits) {
    auto main = []() -> coroutine<int> {
        std::vector<task<int>> fs{pyco::create_task(value_after(1h, 5))};
        auto cs = pyco::as_completed(fs, std::chrono::seconds::max());
        co_return co_await std::move(cs.front());
    };
    EXPECT_EQ(pyco::run(main(), vt), 5);
}

// ---------------------------------------------------------------- scale
// Set-up is linear in the number of futures (a scan for duplicates made
// 300,000 take 10-28 s): counted, not timed — every slot the duplicate
// check looks at is counted (see PointerSet in gather_test). Duplicates
// count once, as in CPython's set(fs).

constexpr std::size_t many = 300'000;

// Each future twice, the second time in reverse order.
std::vector<future<int>> twice(const std::vector<future<int>>& distinct) {
    std::vector<future<int>> fs(distinct);
    fs.insert(fs.end(), distinct.rbegin(), distinct.rend());
    return fs;
}

TEST(WaitScale, ManyFuturesWithDuplicatesSetUpLinearly) {
    pyco::event_loop loop;
    std::vector<future<int>> distinct;
    distinct.reserve(many);
    for (std::size_t i = 0; i < many; ++i) distinct.emplace_back(loop);
    for (std::size_t i = 0; i < many; i += 2) distinct[i].set_result(static_cast<int>(i));
    const std::vector<future<int>> fs = twice(distinct);

    const auto before = pyco::detail::pointer_set::probes();
    auto [done, pending] = loop.run_until_complete(pyco::wait(fs, pyco::first_completed));
    const std::uint64_t probes = pyco::detail::pointer_set::probes() - before;
    EXPECT_GE(probes, fs.size());
    EXPECT_LE(probes, 3 * fs.size());

    ASSERT_EQ(done.size(), many / 2);
    ASSERT_EQ(pending.size(), many / 2);
    for (std::size_t i = 0; i < many / 2; ++i) {  // first occurrences, in order
        ASSERT_TRUE(done[i] == distinct[2 * i]);
        ASSERT_TRUE(pending[i] == distinct[2 * i + 1]);
    }
    loop.close();
}

coroutine<std::vector<int>> await_each(std::vector<coroutine<int>> cs) {
    std::vector<int> out;
    out.reserve(cs.size());
    for (auto& c : cs) out.push_back(co_await c);
    co_return out;
}

// Set-up, and the completions too: each finds its place in todo at once
// (a search and an erase in a vector made them quadratic as well).
TEST(AsCompletedScale, ManyFuturesWithDuplicatesAreLinear) {
    pyco::event_loop loop;
    std::vector<future<int>> distinct;
    distinct.reserve(many);
    for (std::size_t i = 0; i < many; ++i) distinct.emplace_back(loop);
    const std::vector<future<int>> fs = twice(distinct);

    const auto before = pyco::detail::pointer_set::probes();
    auto cs = pyco::as_completed(fs);
    const std::uint64_t probes = pyco::detail::pointer_set::probes() - before;
    EXPECT_GE(probes, fs.size());
    EXPECT_LE(probes, 3 * fs.size());
    ASSERT_EQ(cs.size(), many);

    for (std::size_t i = many; i-- > 0;) distinct[i].set_result(static_cast<int>(i));
    std::vector<int> got = loop.run_until_complete(await_each(std::move(cs)));
    ASSERT_EQ(got.size(), many);
    for (std::size_t k = 0; k < many; ++k) ASSERT_EQ(got[k], static_cast<int>(many - 1 - k));
    loop.close();
}

}  // namespace
