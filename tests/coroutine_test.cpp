// Coroutines: lazy, awaited inline, once; deep await loops; any awaitable.
#include <pyco/coroutine.hpp>

#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using trace_t = std::vector<std::string>;

coroutine<int> add(int a, int b) { co_return a + b; }

TEST(Coroutine, IsLazy) {
    bool ran = false;
    auto body = [](bool& r) -> coroutine<void> {
        r = true;
        co_return;
    };
    testing::internal::CaptureStderr();
    {
        auto c = body(ran);
        EXPECT_FALSE(ran);
        EXPECT_FALSE(c.done());
    }
    EXPECT_FALSE(ran);
    EXPECT_NE(testing::internal::GetCapturedStderr().find("was never awaited"), std::string::npos);
}

TEST(Coroutine, AwaitingRunsItInlineAndGivesItsResult) {
    trace_t tr;
    auto inner = [](trace_t& t) -> coroutine<std::string> {
        t.push_back("inner");
        co_return "value";
    };
    auto outer = [](trace_t& t, auto mk) -> coroutine<std::string> {
        t.push_back("outer before");
        std::string v = co_await mk(t);
        t.push_back("outer after " + v);
        co_return v + "!";
    };
    EXPECT_EQ(pyco::run(outer(tr, inner)), "value!");
    EXPECT_EQ(tr, (trace_t{"outer before", "inner", "outer after value"}));
}

TEST(Coroutine, ExceptionsPropagateToTheAwaiter) {
    auto inner = []() -> coroutine<int> {
        throw pyco::value_error("inner failed");
        co_return 0;
    };
    auto outer = [](auto mk) -> coroutine<std::string> {
        try {
            co_await mk();
        } catch (const pyco::value_error& e) {
            co_return std::string("caught ") + e.what();
        }
        co_return "no";
    };
    EXPECT_EQ(pyco::run(outer(inner)), "caught inner failed");
}

TEST(Coroutine, AwaitingTwiceIsRuntimeError) {
    auto outer = []() -> coroutine<std::string> {
        auto c = add(1, 2);
        int first = co_await c;
        try {
            co_await c;
        } catch (const pyco::runtime_error& e) {
            co_return std::to_string(first) + " " + e.what();
        }
        co_return "no";
    };
    EXPECT_EQ(pyco::run(outer()), "3 cannot reuse already awaited coroutine");
}

// CPython 3.12: awaiting a coroutine another task is inside of is
// "coroutine is being awaited already"; once it finished, "cannot reuse
// already awaited coroutine".
TEST(Coroutine, AwaitingOneSuspendedInAnotherAwaitIsBeingAwaitedAlready) {
    auto slow = []() -> coroutine<int> {
        co_await pyco::sleep(10ms);
        co_return 1;
    };
    auto wrap = [](coroutine<int>& c) -> coroutine<int> { co_return co_await c; };
    auto main = [&]() -> coroutine<trace_t> {
        trace_t tr;
        auto c = slow();
        auto t = pyco::create_task(wrap(c));
        co_await pyco::sleep(0s);  // t now waits inside c's sleep
        try {
            co_await c;
        } catch (const pyco::runtime_error& e) {
            tr.push_back(std::string("during: ") + e.what());
        }
        tr.push_back("task: " + std::to_string(co_await t));
        try {
            co_await c;
        } catch (const pyco::runtime_error& e) {
            tr.push_back(std::string("after: ") + e.what());
        }
        co_return tr;
    };
    EXPECT_EQ(pyco::run(main(), {.virtual_time = true}),
              (trace_t{"during: coroutine is being awaited already", "task: 1",
                       "after: cannot reuse already awaited coroutine"}));
}

// CPython 3.12: a coroutine awaiting itself, or one awaiting it, gets
// ValueError("coroutine already executing").
TEST(Coroutine, AwaitingOneInTheRunningChainIsAlreadyExecuting) {
    auto main = [](coroutine<std::string>& c) -> coroutine<std::string> { co_return co_await c; };
    coroutine<std::string> self;
    auto self_await = [](coroutine<std::string>& me) -> coroutine<std::string> {
        try {
            co_await me;
        } catch (const pyco::value_error& e) {
            co_return e.what();
        }
        co_return "no";
    };
    self = self_await(self);
    EXPECT_EQ(pyco::run(main(self)), "coroutine already executing");

    coroutine<std::string> parent;
    auto child = [](coroutine<std::string>& p) -> coroutine<std::string> {
        try {
            co_await p;
        } catch (const pyco::value_error& e) {
            co_return e.what();
        }
        co_return "no";
    };
    auto parent_body = [&child](coroutine<std::string>& p) -> coroutine<std::string> {
        co_return co_await child(p);
    };
    parent = parent_body(parent);
    EXPECT_EQ(pyco::run(main(parent)), "coroutine already executing");
}

TEST(Coroutine, TenMillionImmediateAwaitsDoNotGrowTheStack) {
    // folly #2077, cppcoro #31: a loop of awaits that complete at once
    // must not nest. 10 million frames of stack would be far beyond 8 MiB.
    auto outer = []() -> coroutine<long> {
        long sum = 0;
        for (int i = 0; i < 10'000'000; ++i) sum += co_await add(i & 1, 0);
        co_return sum;
    };
    EXPECT_EQ(pyco::run(outer()), 5'000'000);
}

coroutine<int> chain(int depth) {
    if (depth == 0) co_return 0;
    co_return 1 + co_await chain(depth - 1);
}

TEST(Coroutine, DeepRecursionOfAwaits) {
    EXPECT_EQ(pyco::run(chain(100'000)), 100'000);
}

coroutine<int> forgotten() { co_return 1; }

// CPython warns always ("RuntimeWarning: coroutine 'f' was never awaited");
// its debug mode only adds where the coroutine came from.
TEST(Coroutine, NeverAwaitedIsReportedAlwaysWithWhereInDebugMode) {
    auto main_coro = []() -> coroutine<void> {
        { auto c = forgotten(); }
        co_return;
    };
    testing::internal::CaptureStderr();
    pyco::run(main_coro(), {.debug = false});
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("RuntimeWarning: coroutine 'forgotten' was never awaited\n"), std::string::npos) << err;
    EXPECT_EQ(err.find("coroutine_test.cpp"), std::string::npos) << err;

    testing::internal::CaptureStderr();
    pyco::run(main_coro(), {.debug = true});
    err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("RuntimeWarning: coroutine 'forgotten' was never awaited\nCoroutine defined at "),
              std::string::npos)
        << err;
    EXPECT_NE(err.find("coroutine_test.cpp"), std::string::npos) << err;
}

TEST(Coroutine, NeverAwaitedIsReportedOutsideALoopToo) {
    testing::internal::CaptureStderr();
    { auto c = forgotten(); }
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("coroutine 'forgotten' was never awaited"), std::string::npos) << err;
}

TEST(Coroutine, AwaitedTaskedOrMovedFromCoroutinesAreNotReported) {
    auto main_coro = []() -> coroutine<void> {
        co_await forgotten();
        auto t = pyco::create_task(forgotten());
        auto moved = forgotten();
        auto into = std::move(moved);
        co_await into;
        co_await t;
    };
    testing::internal::CaptureStderr();
    pyco::run(main_coro(), {.debug = true});
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(err.find("never awaited"), std::string::npos) << err;
}

// An awaiter that knows nothing of pyco: it hands its handle to a loop
// callback, which resumes it later (the __await__ protocol of a
// third-party awaitable).
struct callback_awaiter {
    int value;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
        pyco::get_running_loop().call_soon([h] { h.resume(); });
    }
    int await_resume() const noexcept { return value * 2; }
};

struct has_operator_co_await {
    int v;
    callback_awaiter operator co_await() const { return {v}; }
};

TEST(Coroutine, AwaitsAForeignAwaiterTrio) {
    auto body = []() -> coroutine<int> {
        int a = co_await callback_awaiter{5};
        int b = co_await has_operator_co_await{7};
        co_await std::suspend_never{};  // never suspends: no task round trip
        co_return a + b + 1;
    };
    EXPECT_EQ(pyco::run(body()), 10 + 14 + 1);
}

TEST(Coroutine, CancellationReachesATaskWaitingInAForeignAwaiter) {
    auto body = []() -> coroutine<std::string> {
        auto victim = [](bool& resumed) -> coroutine<void> {
            try {
                co_await callback_awaiter{1};
            } catch (const pyco::cancelled_error&) {
                resumed = true;
                throw;
            }
        };
        bool resumed = false;
        auto t = pyco::create_task(victim(resumed));
        co_await pyco::sleep(0s);  // t is now inside the foreign awaiter
        t.cancel();
        try {
            co_await t;
        } catch (const pyco::cancelled_error&) {
            co_return resumed ? "cancelled at the foreign await" : "cancelled elsewhere";
        }
        co_return "not cancelled";
    };
    EXPECT_EQ(pyco::run(body()), "cancelled at the foreign await");
}

// ------------------------------------------------ user awaitables, any shape
// What C++ users write as awaitables, awaited inside a task as they would
// be anywhere: a type whose operator co_await (member or free) gives a pyco
// awaiter or a pyco coroutine, awaiters of every await_suspend shape, an
// awaiter that runs a coroutine of the user's own inline, and one that
// wraps pyco's awaiter without saying so.

coroutine<int> doubled_later(int v) {
    co_await pyco::sleep(0s);  // suspends the task through its protocol
    co_await pyco::sleep(1ms);
    co_return v * 2;
}

// (Constructors, not aggregates: GCC 12 destroys an aggregate built in a
// co_await full-expression twice; see toolchain.md.)
struct member_gives_coroutine_awaiter {
    explicit member_gives_coroutine_awaiter(coroutine<int> co) : c(std::move(co)) {}
    coroutine<int> c;
    coroutine<int>::awaiter operator co_await() { return c.operator co_await(); }
};

struct free_gives_coroutine_awaiter {
    explicit free_gives_coroutine_awaiter(coroutine<int> co) : c(std::move(co)) {}
    coroutine<int> c;
};
coroutine<int>::awaiter operator co_await(free_gives_coroutine_awaiter& a) { return a.c.operator co_await(); }
coroutine<int>::awaiter operator co_await(free_gives_coroutine_awaiter&& a) { return a.c.operator co_await(); }

struct gives_a_coroutine {
    int v;
    coroutine<int> operator co_await() const { return doubled_later(v); }
};

struct gives_future_awaiter {
    explicit gives_future_awaiter(pyco::future<int> fut) : f(std::move(fut)) {}
    pyco::future<int> f;
    auto operator co_await() const { return f.operator co_await(); }
};

TEST(CoroutineUserAwaitable, OperatorCoAwaitGivingACoroutinesAwaiter) {
    auto body = []() -> coroutine<int> {
        int a = co_await member_gives_coroutine_awaiter{doubled_later(1)};
        member_gives_coroutine_awaiter named{doubled_later(2)};
        int b = co_await named;
        int c = co_await free_gives_coroutine_awaiter{doubled_later(3)};
        free_gives_coroutine_awaiter free_named{doubled_later(4)};
        int d = co_await free_named;
        co_return a + b + c + d;
    };
    EXPECT_EQ(pyco::run(body()), 2 + 4 + 6 + 8);
}

TEST(CoroutineUserAwaitable, OperatorCoAwaitGivingACoroutineObject) {
    auto body = []() -> coroutine<int> {
        int a = co_await gives_a_coroutine{5};
        const gives_a_coroutine named{6};
        int b = co_await named;
        co_return a + b;
    };
    EXPECT_EQ(pyco::run(body()), 10 + 12);
}

TEST(CoroutineUserAwaitable, OperatorCoAwaitGivingAFuturesAwaiter) {
    auto body = []() -> coroutine<int> {
        auto& loop = pyco::get_running_loop();
        auto f = loop.create_future<int>();
        loop.call_soon([f]() mutable { f.set_result(21); });
        co_return co_await gives_future_awaiter{f} * 2;
    };
    EXPECT_EQ(pyco::run(body()), 42);
}

TEST(CoroutineUserAwaitable, CancellingATaskInsideOneCancelsTheCoroutineBehindIt) {
    auto body = []() -> coroutine<std::string> {
        auto sleeper = []() -> coroutine<int> {
            co_await pyco::sleep(1h);
            co_return 0;
        };
        auto victim = [](coroutine<int> c) -> coroutine<int> { co_return co_await member_gives_coroutine_awaiter{std::move(c)}; };
        auto t = pyco::create_task(victim(sleeper()));
        co_await pyco::sleep(0s);
        co_await pyco::sleep(0s);
        t.cancel();
        try {
            co_await t;
        } catch (const pyco::cancelled_error&) {
            co_return "cancelled";
        }
        co_return "not cancelled";
    };
    EXPECT_EQ(pyco::run(body()), "cancelled");
}

TEST(CoroutineUserAwaitable, TheTaskStackGoesThroughOne) {
    auto body = []() -> coroutine<void> {
        auto leaf = []() -> coroutine<int> {
            co_await pyco::sleep(1h);
            co_return 0;
        };
        auto root = [](coroutine<int> c) -> coroutine<int> { co_return co_await member_gives_coroutine_awaiter{std::move(c)}; };
        auto t = pyco::create_task(root(leaf()));
        co_await pyco::sleep(1ms);
        EXPECT_EQ(t.get_stack().size(), 2u);
        t.cancel();
        try {
            co_await t;
        } catch (const pyco::cancelled_error&) {
        }
    };
    pyco::run(body());
}

// An awaiter that wraps pyco's coroutine awaiter and does not say so: pyco
// treats it as foreign and hands it a resumer, which the coroutine it
// starts resumes when it ends.
struct wraps_coroutine_awaiter {
    explicit wraps_coroutine_awaiter(coroutine<int> co) : c(std::move(co)) {}
    coroutine<int> c;
    std::optional<coroutine<int>::awaiter> inner;
    bool await_ready() {
        inner.emplace(c.operator co_await());
        return inner->await_ready();
    }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> h) { return inner->await_suspend(h); }
    int await_resume() { return inner->await_resume() + 1; }
};

coroutine<int> via_callback(int v) { co_return co_await callback_awaiter{v}; }

TEST(CoroutineUserAwaitable, AnAwaiterWrappingACoroutineThatSuspends) {
    auto body = []() -> coroutine<int> {
        int a = co_await wraps_coroutine_awaiter{doubled_later(1)};
        // The coroutine inside waits in a foreign awaiter of its own: the
        // inner wake-up resumes it, the outer one (when it ends) this body.
        int b = co_await wraps_coroutine_awaiter{via_callback(2)};
        co_return a * 100 + b;
    };
    EXPECT_EQ(pyco::run(body()), 3 * 100 + 5);
}

TEST(CoroutineUserAwaitable, CancellingATaskInsideAWrappingAwaiter) {
    auto body = []() -> coroutine<std::string> {
        auto victim = []() -> coroutine<int> { co_return co_await wraps_coroutine_awaiter{via_callback(1)}; };
        auto t = pyco::create_task(victim());
        co_await pyco::sleep(0s);  // t waits in the callback awaiter inside
        t.cancel();
        try {
            co_await t;
        } catch (const pyco::cancelled_error&) {
            co_return "cancelled";
        }
        co_return "not cancelled";
    };
    EXPECT_EQ(pyco::run(body()), "cancelled");
}

struct throws_in_suspend {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<>) { throw std::runtime_error("refused"); }
    int await_resume() const noexcept { return 0; }
};

coroutine<int> catches_a_refused_await() {
    try {
        co_await throws_in_suspend{};
    } catch (const std::runtime_error&) {
    }
    co_return 40;
}

// A foreign await whose await_suspend throws has no await_resume: the
// await around it must still be the one its wake-up goes on at.
TEST(CoroutineUserAwaitable, AForeignAwaitThatThrowsInsideAnother) {
    auto body = []() -> coroutine<int> { co_return co_await wraps_coroutine_awaiter{catches_a_refused_await()}; };
    EXPECT_EQ(pyco::run(body()), 41);
}

// await_suspend returning bool: false resumes at once, true waits.
struct bool_awaiter {
    bool suspend;
    int value;
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
        if (!suspend) return false;
        pyco::get_running_loop().call_soon([h] { h.resume(); });
        return true;
    }
    int await_resume() const noexcept { return value; }
};

// await_suspend returning a handle: the awaiting one (resume at once) or
// noop (someone resumes it later).
struct handle_awaiter {
    bool at_once;
    int value;
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> h) {
        if (at_once) return h;
        pyco::get_running_loop().call_soon([h] { h.resume(); });
        return std::noop_coroutine();
    }
    int await_resume() const noexcept { return value; }
};

TEST(CoroutineUserAwaitable, EveryAwaitSuspendShape) {
    auto body = []() -> coroutine<int> {
        int a = co_await bool_awaiter{false, 1};
        int b = co_await bool_awaiter{true, 2};
        int c = co_await handle_awaiter{true, 3};
        int d = co_await handle_awaiter{false, 4};
        int e = co_await callback_awaiter{5};  // void, as std::suspend_always's
        co_return a + b + c + d + e;
    };
    EXPECT_EQ(pyco::run(body()), 1 + 2 + 3 + 4 + 10);
}

// A lazy coroutine type of the user's own, which knows nothing of pyco:
// awaiting it transfers into it (await_suspend returns its handle), it
// awaits pyco's sleep inside the task, and transfers back when it ends.
struct user_task {
    struct promise_type {
        int value = 0;
        std::coroutine_handle<> continuation;
        user_task get_return_object() { return {std::coroutine_handle<promise_type>::from_promise(*this)}; }
        std::suspend_always initial_suspend() noexcept { return {}; }
        auto final_suspend() noexcept {
            struct to_continuation {
                bool await_ready() noexcept { return false; }
                std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> self) noexcept {
                    return self.promise().continuation;
                }
                void await_resume() noexcept {}
            };
            return to_continuation{};
        }
        void return_value(int v) { value = v; }
        void unhandled_exception() { std::terminate(); }
    };
    std::coroutine_handle<promise_type> h;
    user_task(std::coroutine_handle<promise_type> handle) : h(handle) {}
    user_task(user_task&& o) noexcept : h(std::exchange(o.h, nullptr)) {}
    ~user_task() {
        if (h) h.destroy();
    }
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) {
        h.promise().continuation = awaiting;
        return h;
    }
    int await_resume() const { return h.promise().value; }
};

user_task user_sleeps_then(int v) {
    co_await pyco::sleep(0s);
    co_await pyco::sleep(1ms);
    co_return v;
}

TEST(CoroutineUserAwaitable, ACoroutineTypeOfTheUsersOwnRunInline) {
    auto body = []() -> coroutine<int> {
        int a = co_await user_sleeps_then(7);
        int b = co_await user_sleeps_then(8);
        co_return a + b;
    };
    EXPECT_EQ(pyco::run(body()), 15);
}

// ---------------------------------------------------------------- destruction
// A frame destroyed while suspended destroys the coroutine it awaits, and
// that one the next: a chain 200,000 deep would recurse past any stack.
// pyco destroys such a chain from the bottom up in a loop, in the order the
// recursion had (a level's locals go after its child's frame).

struct goes_at {
    std::vector<int>* order;
    int level;
    ~goes_at() { order->push_back(level); }
};

coroutine<int> parked_chain(int n, pyco::future<int> bottom, std::vector<int>& order) {
    goes_at g{&order, n};
    if (n == 0) co_return co_await bottom;
    co_return co_await parked_chain(n - 1, bottom, order);
}

coroutine<void> one_step() { co_await pyco::sleep(0s); }

void ignore_errors(pyco::event_loop&, const pyco::exception_context&) {}

coroutine<int> await_borrowed(coroutine<int>& c) { co_return co_await c; }

// The chain hangs from a coroutine object that a task only borrowed: the
// task goes (the loop closes), then the object is dropped.
TEST(CoroutineDestruction, ADeepSuspendedChainGoesBottomUpWithItsObject) {
    constexpr int depth = 200'000;
    std::vector<int> order;
    pyco::event_loop loop;
    loop.set_exception_handler(ignore_errors);
    auto bottom = loop.create_future<int>();
    {
        coroutine<int> held = parked_chain(depth, bottom, order);
        auto t = loop.create_task(await_borrowed(held));
        loop.run_until_complete(one_step());
        loop.close();  // abandons t; `held` is not its to destroy
        EXPECT_TRUE(order.empty());
        EXPECT_TRUE(held);
    }
    ASSERT_EQ(order.size(), static_cast<std::size_t>(depth) + 1);
    for (int i = 0; i <= depth; ++i) {
        if (order[static_cast<std::size_t>(i)] != i) {
            ADD_FAILURE() << "level " << order[static_cast<std::size_t>(i)] << " went " << i << "th";
            break;
        }
    }
}

coroutine<int> await_first(std::vector<coroutine<int>>& v) { co_return co_await v[0]; }
coroutine<int> await_first_below(std::vector<coroutine<int>>& v) { co_return co_await await_first(v); }

// A borrowed coroutine (here in a vector, moved while it is suspended)
// found suspended in a chain being destroyed goes with the chain, and its
// object is left empty: its frame could never be resumed again (who awaited
// it is gone), and leaving it would leave a frame whose continuation dangles.
TEST(CoroutineDestruction, ABorrowedCoroutineInADestroyedChainGoesWithIt) {
    std::vector<int> order;
    pyco::event_loop loop;
    loop.set_exception_handler(ignore_errors);
    auto bottom = loop.create_future<int>();
    std::vector<coroutine<int>> v;
    v.push_back(parked_chain(3, bottom, order));
    auto t = loop.create_task(await_first_below(v));
    loop.run_until_complete(one_step());
    for (int i = 0; i < 100; ++i) v.emplace_back();  // v[0] moves; its frame follows it
    loop.close();
    EXPECT_FALSE(v[0]);
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
}

}  // namespace
