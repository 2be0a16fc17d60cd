// Async generators (PEP 525): a port of the observable cases of CPython's
// Lib/test/test_asyncgen.py (AsyncGenTest, AsyncGenAsyncioTest). Left out:
// the syntax tests, __name__/__qualname__/ag_frame/ag_code, aiter() and
// anext()'s default argument, Python-defined __anext__ classes, driving
// the asend/athrow objects by hand with .send()/.throw() (C++ awaitables
// have no such protocol; asend/athrow cover the same paths), the tuple and
// StopIteration values (Python's unwrapping quirks), async comprehensions
// with await in the condition, and the deprecated 3-argument athrow.
// Every `finally:` with an await is written the C++ way: catch, leave the
// handler, await, rethrow.
#include <pyco/async_generator.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <source_location>
#include <string>
#include <vector>

#include <pyco/future.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::async_generator;
using pyco::coroutine;
using pyco::event_loop;
using pyco::gen_state;

pyco::loop_options vt{.virtual_time = true};

// Python's ZeroDivisionError, for ports that raise one.
struct zero_division : pyco::error {
    zero_division() : pyco::error("division by zero") {}
};
struct foo_error : pyco::error {
    foo_error() : pyco::error("FooEr") {}
};

template <class Y, class S>
coroutine<std::vector<Y>> to_list(async_generator<Y, S>& g) {
    std::vector<Y> out;
    while (auto x = co_await g.anext()) out.push_back(*x);
    co_return out;
}

std::size_t count_live(event_loop& loop) {
    std::size_t n = 0;
    for (auto* l = loop.live_asyncgens().next; l != &loop.live_asyncgens(); l = l->next) ++n;
    return n;
}

template <class E>
bool holds(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const E&) {
        return true;
    } catch (...) {
        return false;
    }
}

// ---- iteration -----------------------------------------------------------

// test_async_gen_iteration_01
TEST(AsyncGenerator, YieldsBetweenAwaitsAndAnextSendsNone) {
    std::vector<int> sent;
    auto gen = [&]() -> async_generator<int, int> {
        co_await pyco::sleep(0s);
        sent.push_back(co_yield 123);
        co_await pyco::sleep(0s);
        sent.push_back(co_yield 456);
        co_await pyco::sleep(0s);
        sent.push_back(co_yield 789);
    };
    auto body = [&]() -> coroutine<std::vector<int>> {
        auto g = gen();
        co_return co_await to_list(g);
    };
    EXPECT_EQ(pyco::run(body(), vt), (std::vector<int>{123, 456, 789}));
    EXPECT_EQ(sent, (std::vector<int>{0, 0, 0}));  // S{}: Python's None
}

// test_async_gen_iteration_02, test_async_generator_anext
TEST(AsyncGenerator, AnextIsEmptyOnceFinishedAndStaysEmpty) {
    auto gen = []() -> async_generator<int> {
        co_await pyco::sleep(1ms);
        co_yield 1;
        co_yield 2;
        co_await pyco::sleep(1ms);
    };
    auto body = [&]() -> coroutine<void> {
        auto g = gen();
        EXPECT_EQ(g.state(), gen_state::created);
        EXPECT_EQ(co_await g.anext(), 1);
        EXPECT_EQ(g.state(), gen_state::suspended);
        EXPECT_EQ(co_await g.anext(), 2);
        EXPECT_EQ(co_await g.anext(), std::nullopt);
        EXPECT_EQ(g.state(), gen_state::closed);
        EXPECT_EQ(co_await g.anext(), std::nullopt);
    };
    pyco::run(body(), vt);
}

// test_async_gen_asyncio_01
TEST(AsyncGenerator, ReturnEndsIterationAfterSleeps) {
    auto gen = []() -> async_generator<int> {
        co_yield 1;
        co_await pyco::sleep(10ms);
        co_yield 2;
        co_await pyco::sleep(10ms);
        co_return;
    };
    auto body = [&]() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        const auto t0 = loop.time();
        auto g = gen();
        const std::vector<int> got = co_await to_list(g);
        EXPECT_EQ(got, (std::vector<int>{1, 2}));
        EXPECT_EQ(loop.time() - t0, 20ms);
    };
    pyco::run(body(), vt);
}

// test_async_gen_expression_01 (an async comprehension over a generator)
TEST(AsyncGenerator, OneGeneratorIteratesAnother) {
    auto arange = [](int n) -> async_generator<int> {
        for (int i = 0; i < n; ++i) {
            co_await pyco::sleep(10ms);
            co_yield i;
        }
    };
    auto doubled = [](async_generator<int> src) -> async_generator<int> {
        while (auto i = co_await src.anext()) co_yield *i * 2;
    };
    auto body = [&]() -> coroutine<std::vector<int>> {
        auto g = doubled(arange(10));
        co_return co_await to_list(g);
    };
    EXPECT_EQ(pyco::run(body(), vt), (std::vector<int>{0, 2, 4, 6, 8, 10, 12, 14, 16, 18}));
}

TEST(AsyncGenerator, MoveOnlyValues) {
    auto gen = []() -> async_generator<std::unique_ptr<int>> {
        co_yield std::make_unique<int>(1);
        auto p = std::make_unique<int>(2);
        co_yield std::move(p);
    };
    auto body = [&]() -> coroutine<int> {
        auto g = gen();
        int sum = 0;
        while (auto p = co_await g.anext()) sum += **p;
        co_return sum;
    };
    EXPECT_EQ(pyco::run(body(), vt), 3);
}

// Symmetric transfer both ways: a long run of values that never suspend
// the task does not grow the stack.
TEST(AsyncGenerator, AMillionValuesWithoutGrowingTheStack) {
    auto gen = []() -> async_generator<int> {
        for (int i = 0; i < 1'000'000; ++i) co_yield i;
    };
    auto body = [&]() -> coroutine<long long> {
        auto g = gen();
        long long sum = 0;
        while (auto x = co_await g.anext()) sum += *x;
        co_return sum;
    };
    EXPECT_EQ(pyco::run(body(), vt), 499999500000LL);
}

// ---- exceptions ----------------------------------------------------------

// test_async_gen_exception_03
TEST(AsyncGenerator, ExceptionFromAnAwaitInTheBodyReachesTheConsumer) {
    auto fails = []() -> coroutine<void> {
        co_await pyco::sleep(1ms);
        throw zero_division();
    };
    auto gen = [&]() -> async_generator<int> {
        co_await pyco::sleep(1ms);
        co_yield 123;
        co_await fails();
        co_yield 456;
    };
    auto body = [&]() -> coroutine<void> {
        auto g = gen();
        co_await to_list(g);
    };
    EXPECT_THROW(pyco::run(body(), vt), zero_division);
}

// test_async_gen_exception_04, test_async_gen_asyncio_02
TEST(AsyncGenerator, ExceptionEscapingTheBodyClosesIt) {
    auto gen = []() -> async_generator<int> {
        co_await pyco::sleep(1ms);
        co_yield 123;
        throw zero_division();
    };
    auto body = [&]() -> coroutine<void> {
        auto g = gen();
        EXPECT_EQ(co_await g.anext(), 123);
        EXPECT_THROW(co_await g.anext(), zero_division);
        EXPECT_EQ(g.state(), gen_state::closed);
        EXPECT_EQ(co_await g.anext(), std::nullopt);
    };
    pyco::run(body(), vt);
}

// Python's compare_generators: what a sync generator gives, as strings.
template <class Step>
std::vector<std::string> record(Step step) {
    std::vector<std::string> res;
    for (;;) {
        try {
            auto v = step();
            if (!v) {
                res.push_back("STOP");
                break;
            }
            res.push_back(std::to_string(*v));
        } catch (const zero_division&) {
            res.push_back("ZeroDivisionError");
        }
    }
    return res;
}

// test_async_gen_exception_07 (yields in a finally after an exception)
TEST(AsyncGenerator, YieldsInCleanupMatchTheSyncGenerator) {
    auto sync_gen = []() -> pyco::generator<int> {
        std::exception_ptr e;
        try {
            co_yield 1;
            throw zero_division();
        } catch (...) {
            e = std::current_exception();
        }
        co_yield 2;
        co_yield 3;
        if (e) std::rethrow_exception(e);
        co_yield 100;
    };
    auto async_gen = []() -> async_generator<int> {
        std::exception_ptr e;
        try {
            co_yield 1;
            throw zero_division();
        } catch (...) {
            e = std::current_exception();
        }
        co_yield 2;
        co_await pyco::sleep(1ms);
        co_yield 3;
        if (e) std::rethrow_exception(e);
        co_yield 100;
    };
    auto sg = sync_gen();
    const auto expected = record([&] { return sg.next(); });
    EXPECT_EQ(expected, (std::vector<std::string>{"1", "2", "3", "ZeroDivisionError", "STOP"}));
    auto body = [&]() -> coroutine<std::vector<std::string>> {
        auto g = async_gen();
        std::vector<std::string> res;
        for (;;) {
            std::optional<int> v;
            bool failed = false;
            try {
                v = co_await g.anext();
            } catch (const zero_division&) {
                failed = true;
            }
            if (failed) {
                res.push_back("ZeroDivisionError");
                continue;
            }
            if (!v) break;
            res.push_back(std::to_string(*v));
        }
        res.push_back("STOP");
        co_return res;
    };
    EXPECT_EQ(pyco::run(body(), vt), expected);
}

// test_async_gen_exception_10
TEST(AsyncGenerator, AsendOnAJustStartedGeneratorIsATypeError) {
    auto gen = []() -> async_generator<int, int> { co_yield 123; };
    auto body = [&]() -> coroutine<void> {
        auto g = gen();
        try {
            co_await g.asend(100);
            ADD_FAILURE();
        } catch (const pyco::type_error& e) {
            EXPECT_STREQ(e.what(), "can't send non-None value to a just-started async generator");
        }
        EXPECT_EQ(g.state(), gen_state::created);  // it never ran
        EXPECT_EQ(co_await g.anext(), 123);
        co_await g.aclose();
    };
    pyco::run(body(), vt);
}

// test_async_gen_exception_11 (athrow(GeneratorExit) from another generator)
TEST(AsyncGenerator, AthrowGeneratorExitComesBackOutOfTheInnerGenerator) {
    auto inner = []() -> async_generator<int> {
        co_yield 10;
        co_yield 20;
    };
    auto wrapper = [&]() -> async_generator<int> {
        co_yield 1;
        auto asg = inner();
        co_await asg.anext();
        bool caught = false;
        try {
            co_await asg.athrow(pyco::generator_exit());
        } catch (const pyco::generator_exit&) {
            caught = true;
        }
        if (caught) co_yield 2;
        co_yield 3;
    };
    auto body = [&]() -> coroutine<std::vector<int>> {
        auto g = wrapper();
        co_return co_await to_list(g);
    };
    EXPECT_EQ(pyco::run(body(), vt), (std::vector<int>{1, 2, 3}));
}

// ---- anext / asend / athrow sequences -------------------------------------

// test_async_gen_asyncio_anext_04
TEST(AsyncGenerator, AthrowIsCaughtAtTheYieldAndIterationGoesOn) {
    auto foo = []() -> async_generator<int> {
        co_yield 1;
        co_await pyco::sleep(10ms);
        bool caught = false;
        try {
            co_yield 2;
            co_yield 3;
        } catch (const zero_division&) {
            caught = true;
        }
        if (caught) co_yield 1000;
        co_await pyco::sleep(10ms);
        co_yield 4;
    };
    auto run1 = [&]() -> coroutine<void> {
        auto it = foo();
        EXPECT_EQ(co_await it.anext(), 1);
        EXPECT_EQ(co_await it.anext(), 2);
        EXPECT_EQ(co_await it.anext(), 3);
        EXPECT_EQ(co_await it.anext(), 4);
        EXPECT_EQ(co_await it.anext(), std::nullopt);
        EXPECT_EQ(co_await it.anext(), std::nullopt);
    };
    auto run2 = [&]() -> coroutine<void> {
        auto it = foo();
        EXPECT_EQ(co_await it.anext(), 1);
        EXPECT_EQ(co_await it.anext(), 2);
        EXPECT_EQ(co_await it.athrow(zero_division()), 1000);
        EXPECT_EQ(co_await it.anext(), 4);
        EXPECT_EQ(co_await it.anext(), std::nullopt);
    };
    event_loop loop(vt);
    loop.run_until_complete(run1());
    loop.run_until_complete(run2());
}

// test_async_gen_asyncio_anext_05
TEST(AsyncGenerator, AsendValuesBecomeTheYieldExpression) {
    auto foo = []() -> async_generator<int, int> {
        int v = co_yield 1;
        v = co_yield v;
        co_yield v * 100;
    };
    auto body = [&]() -> coroutine<void> {
        auto it = foo();
        EXPECT_EQ(co_await it.anext(), 1);
        EXPECT_EQ(co_await it.asend(10), 10);
        EXPECT_EQ(co_await it.asend(12), 1200);
        EXPECT_EQ(co_await it.anext(), std::nullopt);
    };
    pyco::run(body(), vt);
}

// test_async_gen_asyncio_anext_06
TEST(AsyncGenerator, AnextAfterTheLastYieldFinishes) {
    int done = 0;
    auto gen = [&]() -> async_generator<int> {
        try {
            co_yield 0;
        } catch (...) {
        }
        done = 1;
    };
    auto body = [&]() -> coroutine<void> {
        auto g = gen();
        co_await g.anext();
        EXPECT_EQ(co_await g.anext(), std::nullopt);
        done += 10;
    };
    pyco::run(body(), vt);
    EXPECT_EQ(done, 11);
}

// test_async_gen_asyncio_asend_01
TEST(AsyncGenerator, AsendRunsCleanupWithAwaitsAtTheEnd) {
    int done = 0;
    auto gen = [&]() -> async_generator<int, int> {
        std::exception_ptr e;
        try {
            co_await pyco::sleep(10ms);
            int v = co_yield 1;
            co_await pyco::sleep(10ms);
            co_yield v * 2;
            co_await pyco::sleep(10ms);
        } catch (...) {
            e = std::current_exception();
        }
        co_await pyco::sleep(10ms);
        co_await pyco::sleep(10ms);
        done = 1;
        if (e) std::rethrow_exception(e);
    };
    auto body = [&]() -> coroutine<void> {
        auto g = gen();
        EXPECT_EQ(co_await g.anext(), 1);
        EXPECT_EQ(co_await g.asend(100), 200);
        EXPECT_EQ(co_await g.asend(0), std::nullopt);
    };
    pyco::run(body(), vt);
    EXPECT_EQ(done, 1);
}

coroutine<void> sleep_n_crash(std::chrono::milliseconds d) {
    co_await pyco::sleep(d);
    throw zero_division();
}

// A sleep in its own task, cancelled half-way (asyncio's
// ensure_future(sleep(d)) plus loop.call_later(d / 2, fut.cancel)).
coroutine<void> sleep_for(std::chrono::milliseconds d) {
    co_await pyco::sleep(d);
}
coroutine<void> sleep_n_cancelled(std::chrono::milliseconds d) {
    auto t = pyco::create_task(sleep_for(d));
    pyco::get_running_loop().call_later(d / 2, [t]() mutable { t.cancel(); });
    co_await t;
}

// test_async_gen_asyncio_asend_02
TEST(AsyncGenerator, ErrorInsideTheBodyAfterAsendReachesTheConsumer) {
    int done = 0;
    auto gen = [&]() -> async_generator<int, int> {
        std::exception_ptr e;
        try {
            co_await pyco::sleep(10ms);
            int v = co_yield 1;
            co_await sleep_n_crash(10ms);
            done += 1000;
            co_yield v * 2;
        } catch (...) {
            e = std::current_exception();
        }
        co_await pyco::sleep(10ms);
        co_await pyco::sleep(10ms);
        done = 1;
        if (e) std::rethrow_exception(e);
    };
    auto body = [&]() -> coroutine<void> {
        auto g = gen();
        EXPECT_EQ(co_await g.anext(), 1);
        co_await g.asend(100);
    };
    EXPECT_THROW(pyco::run(body(), vt), zero_division);
    EXPECT_EQ(done, 1);
}

// test_async_gen_asyncio_asend_03
TEST(AsyncGenerator, CancellationInsideTheBodyRunsCleanupAndReachesTheConsumer) {
    int done = 0;
    auto gen = [&]() -> async_generator<int, int> {
        std::exception_ptr e;
        try {
            co_await pyco::sleep(10ms);
            int v = co_yield 1;
            co_await sleep_n_cancelled(10ms);
            done += 1000;
            co_yield v * 2;
        } catch (...) {
            e = std::current_exception();
        }
        co_await pyco::sleep(10ms);
        co_await pyco::sleep(10ms);
        done = 1;
        if (e) std::rethrow_exception(e);
    };
    auto body = [&]() -> coroutine<void> {
        auto g = gen();
        EXPECT_EQ(co_await g.anext(), 1);
        co_await g.asend(100);
    };
    EXPECT_THROW(pyco::run(body(), vt), pyco::cancelled_error);
    EXPECT_EQ(done, 1);
}

// test_async_gen_asyncio_athrow_01
TEST(AsyncGenerator, AthrowGivesTheNextYieldedValue) {
    int done = 0;
    auto gen = [&]() -> async_generator<int, int> {
        std::exception_ptr e;
        try {
            co_await pyco::sleep(10ms);
            int v = 0;
            bool caught = false;
            try {
                v = co_yield 1;
            } catch (const foo_error&) {
                v = 1000;
                caught = true;
            }
            if (caught) co_await pyco::sleep(10ms);
            co_yield v * 2;
            co_await pyco::sleep(10ms);
        } catch (...) {
            e = std::current_exception();
        }
        co_await pyco::sleep(10ms);
        co_await pyco::sleep(10ms);
        done = 1;
        if (e) std::rethrow_exception(e);
    };
    auto body = [&]() -> coroutine<void> {
        auto g = gen();
        EXPECT_EQ(co_await g.anext(), 1);
        EXPECT_EQ(co_await g.athrow(foo_error()), 2000);
        EXPECT_EQ(co_await g.anext(), std::nullopt);
    };
    pyco::run(body(), vt);
    EXPECT_EQ(done, 1);
}

// test_async_gen_asyncio_athrow_02
TEST(AsyncGenerator, CancellationWhileHandlingAthrowRunsCleanupFirst) {
    int done = 0;
    auto gen = [&]() -> async_generator<int, int> {
        std::exception_ptr e;
        try {
            co_await pyco::sleep(10ms);
            int v = 0;
            bool caught = false;
            try {
                v = co_yield 1;
            } catch (const foo_error&) {
                caught = true;
            }
            if (caught) co_await sleep_n_cancelled(10ms);
            co_yield v * 2;
            co_await pyco::sleep(10ms);
        } catch (...) {
            e = std::current_exception();
        }
        co_await pyco::sleep(10ms);
        co_await pyco::sleep(10ms);
        done = 1;
        if (e) std::rethrow_exception(e);
    };
    auto body = [&]() -> coroutine<void> {
        auto g = gen();
        EXPECT_EQ(co_await g.anext(), 1);
        bool cancelled = false;
        try {
            co_await g.athrow(foo_error());
        } catch (const pyco::cancelled_error&) {
            cancelled = true;
            EXPECT_EQ(done, 1);
        }
        EXPECT_TRUE(cancelled);
        if (cancelled) throw pyco::cancelled_error();
    };
    EXPECT_THROW(pyco::run(body(), vt), pyco::cancelled_error);
    EXPECT_EQ(done, 1);
}

// test_async_gen_asyncio_athrow_03
TEST(AsyncGenerator, AthrowThatTheBodySwallowsEndsIteration) {
    int done = 0;
    auto gen = [&]() -> async_generator<int> {
        try {
            co_yield 0;
        } catch (...) {
        }
        done = 1;
    };
    auto body = [&]() -> coroutine<void> {
        auto g = gen();
        co_await g.anext();
        EXPECT_EQ(co_await g.athrow(pyco::value_error("x")), std::nullopt);
        done += 10;
    };
    pyco::run(body(), vt);
    EXPECT_EQ(done, 11);
}

// athrow on a created generator raises at once (the body never runs); on
// a finished one it does nothing (CPython 3.12's StopIteration).
TEST(AsyncGenerator, AthrowOnACreatedGeneratorRaisesWithoutRunningTheBody) {
    bool ran = false;
    auto gen = [&]() -> async_generator<int> {
        ran = true;
        co_yield 1;
    };
    auto body = [&]() -> coroutine<void> {
        auto g = gen();
        EXPECT_THROW(co_await g.athrow(foo_error()), foo_error);
        EXPECT_EQ(g.state(), gen_state::closed);
        EXPECT_EQ(co_await g.anext(), std::nullopt);
        EXPECT_EQ(co_await g.athrow(foo_error()), std::nullopt);
        auto& loop = pyco::get_running_loop();
        EXPECT_EQ(count_live(loop), 0u);  // never started: never tracked
    };
    pyco::run(body(), vt);
    EXPECT_FALSE(ran);
}

// ---- aclose --------------------------------------------------------------

// test_async_gen_asyncio_aclose_06
TEST(AsyncGenerator, YieldingAfterAcloseIsIgnoredGeneratorExit) {
    auto foo = []() -> async_generator<int> {
        std::exception_ptr e;
        try {
            co_yield 1;
            throw zero_division();
        } catch (...) {
            e = std::current_exception();
        }
        co_await pyco::sleep(10ms);
        co_yield 12;
    };
    auto body = [&]() -> coroutine<void> {
        auto g = foo();
        co_await g.anext();
        co_await g.aclose();
    };
    try {
        pyco::run(body(), vt);
        ADD_FAILURE();
    } catch (const pyco::runtime_error& e) {
        EXPECT_STREQ(e.what(), "async generator ignored GeneratorExit");
    }
}

// test_async_gen_asyncio_aclose_07
TEST(AsyncGenerator, AcloseRunsCleanupThatAwaits) {
    int done = 0;
    auto foo = [&]() -> async_generator<int> {
        std::exception_ptr e;
        try {
            co_yield 1;
            throw zero_division();
        } catch (...) {
            e = std::current_exception();
        }
        co_await pyco::sleep(10ms);
        co_await pyco::sleep(10ms);
        done += 1;
        if (e) std::rethrow_exception(e);
        done += 1000;
    };
    auto body = [&]() -> coroutine<void> {
        auto g = foo();
        co_await g.anext();
        co_await g.aclose();
        EXPECT_EQ(g.state(), gen_state::closed);
    };
    pyco::run(body(), vt);
    EXPECT_EQ(done, 1);
}

// test_async_gen_asyncio_aclose_08
TEST(AsyncGenerator, AcloseAtAYieldNeverReachesTheAwaitAfterIt) {
    int done = 0;
    auto body = [&]() -> coroutine<void> {
        auto fut = pyco::get_running_loop().create_future<void>();
        auto foo = [&]() -> async_generator<int> {
            std::exception_ptr e;
            try {
                co_yield 1;
                co_await fut;
                done += 1000;
                co_yield 2;
            } catch (...) {
                e = std::current_exception();
            }
            co_await pyco::sleep(10ms);
            co_await pyco::sleep(10ms);
            done += 1;
            if (e) std::rethrow_exception(e);
            done += 1000;
        };
        auto g = foo();
        EXPECT_EQ(co_await g.anext(), 1);
        co_await g.aclose();
        fut.cancel();
    };
    pyco::run(body(), vt);
    EXPECT_EQ(done, 1);
}

// test_async_gen_asyncio_aclose_10
TEST(AsyncGenerator, AcloseOfABodyThatSwallowsEverythingAndReturns) {
    int done = 0;
    auto gen = [&]() -> async_generator<int> {
        try {
            co_yield 0;
        } catch (...) {
        }
        done = 1;
    };
    auto body = [&]() -> coroutine<void> {
        auto g = gen();
        co_await g.anext();
        co_await g.aclose();
        done += 10;
    };
    pyco::run(body(), vt);
    EXPECT_EQ(done, 11);
}

// test_async_gen_asyncio_aclose_11
TEST(AsyncGenerator, AcloseOfABodyThatSwallowsEverythingAndYields) {
    int done = 0;
    auto gen = [&]() -> async_generator<int> {
        try {
            co_yield 0;
        } catch (...) {
        }
        co_yield 0;
        done += 1;
    };
    auto body = [&]() -> coroutine<void> {
        auto g = gen();
        co_await g.anext();
        try {
            co_await g.aclose();
            ADD_FAILURE();
        } catch (const pyco::runtime_error& e) {
            EXPECT_NE(std::string(e.what()).find("ignored GeneratorExit"), std::string::npos);
        }
        done += 10;
        // aclose() was started: a second one is a no-op (CPython's ag_closed).
        co_await g.aclose();
    };
    pyco::run(body(), vt);
    EXPECT_EQ(done, 10);
}

// test_async_gen_asyncio_aclose_12
TEST(AsyncGenerator, CleanupAwaitsATaskMadeInTheBody) {
    int done = 0;
    auto target = []() -> coroutine<void> {
        co_await pyco::sleep(10ms);
        throw zero_division();
    };
    auto foo = [&]() -> async_generator<int> {
        auto t = pyco::create_task(target());
        std::exception_ptr e;
        try {
            co_yield 1;
        } catch (...) {
            e = std::current_exception();
        }
        try {
            co_await t;
        } catch (const zero_division&) {
            done = 1;
        }
        if (e) std::rethrow_exception(e);
    };
    auto body = [&]() -> coroutine<void> {
        auto g = foo();
        co_await g.anext();
        co_await g.aclose();
    };
    pyco::run(body(), vt);
    EXPECT_EQ(done, 1);
}

// test_async_gen_aclose_twice_with_different_coros
TEST(AsyncGenerator, AcloseOfACreatedGeneratorIsANoOpTwice) {
    bool ran = false;
    auto gen = [&]() -> async_generator<int> {
        ran = true;
        co_yield 1;
    };
    auto body = [&]() -> coroutine<void> {
        auto g = gen();
        co_await g.aclose();
        co_await g.aclose();
        EXPECT_EQ(g.state(), gen_state::closed);
        EXPECT_EQ(co_await g.anext(), std::nullopt);
    };
    pyco::run(body(), vt);
    EXPECT_FALSE(ran);
}

// test_async_gen_aclose_after_exhaustion
TEST(AsyncGenerator, AcloseAfterExhaustionIsANoOp) {
    auto gen = []() -> async_generator<int> {
        co_yield 1;
        co_yield 2;
    };
    auto body = [&]() -> coroutine<void> {
        auto g = gen();
        co_await to_list(g);
        co_await g.aclose();
    };
    pyco::run(body(), vt);
}

TEST(AsyncGenerator, AnExceptionOtherThanGeneratorExitComesOutOfAclose) {
    auto gen = []() -> async_generator<int> {
        try {
            co_yield 1;
        } catch (const pyco::generator_exit&) {
            throw foo_error();
        }
    };
    auto body = [&]() -> coroutine<void> {
        auto g = gen();
        co_await g.anext();
        EXPECT_THROW(co_await g.aclose(), foo_error);
        EXPECT_EQ(g.state(), gen_state::closed);
    };
    pyco::run(body(), vt);
}

// ---- one-shot awaitables and concurrent use --------------------------------

// test_async_gen_await_same_anext_coro_twice
TEST(AsyncGenerator, AwaitingTheSameAnextTwiceIsAnError) {
    auto gen = []() -> async_generator<int> {
        co_yield 1;
        co_yield 2;
    };
    auto body = [&]() -> coroutine<void> {
        auto it = gen();
        auto nxt = it.anext();
        EXPECT_EQ(co_await nxt, 1);
        try {
            co_await nxt;
            ADD_FAILURE();
        } catch (const pyco::runtime_error& e) {
            EXPECT_STREQ(e.what(), "cannot reuse already awaited __anext__()/asend()");
        }
        co_await it.aclose();
    };
    pyco::run(body(), vt);
}

// test_async_gen_await_same_aclose_coro_twice
TEST(AsyncGenerator, AwaitingTheSameAcloseTwiceIsAnError) {
    auto gen = []() -> async_generator<int> {
        co_yield 1;
        co_yield 2;
    };
    auto body = [&]() -> coroutine<void> {
        auto it = gen();
        auto nxt = it.aclose();
        co_await nxt;
        try {
            co_await nxt;
            ADD_FAILURE();
        } catch (const pyco::runtime_error& e) {
            EXPECT_STREQ(e.what(), "cannot reuse already awaited aclose()/athrow()");
        }
    };
    pyco::run(body(), vt);
}

// The concurrency guard (CPython's ag_running_async): a second task's
// operation while the first is inside the body, suspended at its await.
TEST(AsyncGenerator, OperationsFromASecondTaskWhileRunningAreRefused) {
    auto gen = []() -> async_generator<int, int> {
        for (int i = 0;; ++i) {
            co_await pyco::sleep(10ms);
            co_yield i;
        }
    };
    auto body = [&]() -> coroutine<void> {
        auto g = gen();
        EXPECT_EQ(co_await g.anext(), 0);
        auto consume = [&]() -> coroutine<std::optional<int>> { co_return co_await g.anext(); };
        auto first = pyco::create_task(consume());
        co_await pyco::sleep(0s);  // first is inside the body now
        EXPECT_EQ(g.state(), gen_state::running);
        std::vector<std::string> errors;
        auto expect_running = [&](auto& op) -> coroutine<void> {
            try {
                co_await op;
            } catch (const pyco::runtime_error& e) {
                errors.emplace_back(e.what());
            }
        };
        auto a = g.anext();
        co_await expect_running(a);
        auto b = g.asend(5);
        co_await expect_running(b);
        auto c = g.athrow(foo_error());
        co_await expect_running(c);
        auto d = g.aclose();
        co_await expect_running(d);
        EXPECT_EQ(errors, (std::vector<std::string>{"anext(): asynchronous generator is already running",
                                                    "anext(): asynchronous generator is already running",
                                                    "athrow(): asynchronous generator is already running",
                                                    "aclose(): asynchronous generator is already running"}));
        // A refused awaitable is spent.
        EXPECT_THROW(co_await a, pyco::runtime_error);
        EXPECT_EQ(co_await first, 1);
        EXPECT_EQ(co_await g.anext(), 2);
        co_await g.aclose();
    };
    pyco::run(body(), vt);
}

TEST(AsyncGenerator, TheBodyCannotIterateItself) {
    struct holder {
        async_generator<int> g;
    } h;
    auto gen = [&]() -> async_generator<int> {
        co_yield 1;
        co_await h.g.anext();
    };
    auto body = [&]() -> coroutine<void> {
        h.g = gen();
        co_await h.g.anext();
        try {
            co_await h.g.anext();
            ADD_FAILURE();
        } catch (const pyco::runtime_error& e) {
            EXPECT_STREQ(e.what(), "anext(): asynchronous generator is already running");
        }
        EXPECT_EQ(h.g.state(), gen_state::closed);
    };
    pyco::run(body(), vt);
}

// CPython 3.12: the body awaiting the coroutine that awaits its anext():
// ValueError("coroutine already executing").
TEST(AsyncGenerator, TheBodyAwaitingItsConsumerIsAlreadyExecuting) {
    coroutine<std::optional<int>> consumer;
    std::string why;
    auto gen = [&]() -> async_generator<int> {
        try {
            co_await consumer;
        } catch (const pyco::value_error& e) {
            why = e.what();
        }
        co_yield 1;
    };
    auto consume = [](async_generator<int> g) -> coroutine<std::optional<int>> { co_return co_await g.anext(); };
    auto main = [](coroutine<std::optional<int>>& c) -> coroutine<std::optional<int>> { co_return co_await c; };
    consumer = consume(gen());
    EXPECT_EQ(pyco::run(main(consumer), vt), 1);
    EXPECT_EQ(why, "coroutine already executing");
}

// ---- the consuming task ----------------------------------------------------

TEST(AsyncGenerator, CancellingTheConsumerRaisesCancelledErrorAtTheBodysAwait) {
    std::vector<std::string> trace;
    auto gen = [&]() -> async_generator<int> {
        co_yield 1;
        try {
            co_await pyco::sleep(1h);
        } catch (const pyco::cancelled_error&) {
            trace.push_back("cancelled in body");
            throw;
        }
        co_yield 2;
    };
    auto body = [&]() -> coroutine<void> {
        auto g = gen();
        auto consume = [&]() -> coroutine<void> {
            co_await g.anext();
            co_await g.anext();
            trace.push_back("not reached");
        };
        auto t = pyco::create_task(consume());
        auto& loop = pyco::get_running_loop();
        const auto t0 = loop.time();
        co_await pyco::sleep(10ms);
        t.cancel();
        try {
            co_await t;
        } catch (const pyco::cancelled_error&) {
            trace.push_back("consumer cancelled");
        }
        EXPECT_TRUE(t.cancelled());
        EXPECT_EQ(g.state(), gen_state::closed);
        EXPECT_EQ(co_await g.anext(), std::nullopt);
        EXPECT_EQ(loop.time() - t0, 10ms);  // cancelled at once, not after the hour
    };
    pyco::run(body(), vt);
    EXPECT_EQ(trace, (std::vector<std::string>{"cancelled in body", "consumer cancelled"}));
}

unsigned ticker_await_line = 0;
async_generator<int> stack_ticker() {
    ticker_await_line = std::source_location::current().line() + 1;
    co_await pyco::sleep(10ms);
    co_yield 1;
}
coroutine<void> stack_consumer(async_generator<int>& g) {
    co_await g.anext();
}
coroutine<void> stack_closer(async_generator<int>& g) {
    co_await g.aclose();
}

// test_async_gen_aclose_compatible_with_get_stack, and the consumer's
// stack runs through the generator's frame.
TEST(AsyncGenerator, TheConsumersStackShowsTheGeneratorFrame) {
    auto body = [&]() -> coroutine<void> {
        auto g = stack_ticker();
        auto t = pyco::create_task(stack_consumer(g));
        co_await pyco::sleep(0s);
        auto stack = t.get_stack();
        EXPECT_EQ(stack.size(), 2u);
        if (stack.size() == 2) {
            EXPECT_NE(stack[0].function.find("stack_consumer"), std::string::npos) << stack[0].function;
            EXPECT_NE(stack[1].function.find("stack_ticker"), std::string::npos) << stack[1].function;
            EXPECT_EQ(stack[1].line, ticker_await_line);
        }
        co_await t;
        EXPECT_EQ(t.get_stack().size(), 0u);
        auto c = pyco::create_task(stack_closer(g));
        for (auto& task : pyco::all_tasks()) task.get_stack();
        co_await c;
    };
    pyco::run(body(), vt);
}

// ---- tracking and finalisation --------------------------------------------

TEST(AsyncGenerator, AStartedGeneratorIsTrackedUntilItFinishes) {
    auto gen = []() -> async_generator<int> {
        co_yield 1;
        co_yield 2;
    };
    auto body = [&]() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        auto a = gen();
        auto b = gen();
        EXPECT_EQ(count_live(loop), 0u);
        co_await a.anext();
        EXPECT_EQ(count_live(loop), 1u);
        co_await b.anext();
        EXPECT_EQ(count_live(loop), 2u);
        co_await to_list(a);
        EXPECT_EQ(count_live(loop), 1u);
        co_await b.aclose();
        EXPECT_EQ(count_live(loop), 0u);
    };
    pyco::run(body(), vt);
}

// test_async_gen_asyncio_gc_aclose_09
TEST(AsyncGenerator, DroppedWhileTheLoopRunsTheLoopClosesIt) {
    int done = 0;
    auto gen = [&]() -> async_generator<int> {
        std::exception_ptr e;
        try {
            for (;;) co_yield 1;
        } catch (...) {
            e = std::current_exception();
        }
        co_await pyco::sleep(10ms);
        co_await pyco::sleep(10ms);
        done = 1;
        std::rethrow_exception(e);
    };
    auto body = [&]() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        {
            auto g = gen();
            co_await g.anext();
            co_await g.anext();
            EXPECT_EQ(count_live(loop), 1u);
        }
        EXPECT_EQ(count_live(loop), 0u);  // discarded, as the finaliser hook does
        co_await pyco::sleep(0s);         // the hook's callback makes the task
        EXPECT_EQ(pyco::all_tasks().size(), 2u);  // ours and the one closing it
        EXPECT_EQ(done, 0);
        co_await pyco::sleep(100ms);
        EXPECT_EQ(done, 1);
        EXPECT_EQ(pyco::all_tasks().size(), 1u);
    };
    pyco::run(body(), vt);
    EXPECT_EQ(done, 1);
}

struct flag_on_destroy {
    bool* flag;
    ~flag_on_destroy() { *flag = true; }
};

// test_asyncgen_nonstarted_hooks_are_cancellable: `async for ...: break`
// in main; the generator, dropped with main's frame, goes quietly. As in
// CPython, the finaliser's task is made after main ended, and pyco::run's
// shutdown cancels it before its first step. CPython then throws the
// CancelledError in at the generator's yield (its task runs the aclose()
// object itself); pyco's task never starts the close, and the frame is
// destroyed in place: destructors run, catch blocks do not (docs/design.md).
TEST(AsyncGenerator, BreakingOutOfAsyncForReportsNothing) {
    std::vector<std::string> messages;
    bool caught = false;
    bool destroyed = false;
    auto gen = [&]() -> async_generator<int> {
        flag_on_destroy guard{&destroyed};
        try {
            co_yield 1;
            co_yield 2;
        } catch (...) {
            caught = true;
            throw;
        }
    };
    auto body = [&]() -> coroutine<void> {
        pyco::get_running_loop().set_exception_handler(
            [&](event_loop&, const pyco::exception_context& c) { messages.push_back(c.message); });
        auto g = gen();
        while (auto x = co_await g.anext()) break;
    };
    pyco::run(body(), vt);
    EXPECT_TRUE(destroyed);
    EXPECT_FALSE(caught);
    EXPECT_EQ(messages, std::vector<std::string>{});
}

// The finaliser hook, interleaved with other callbacks as CPython 3.11-3.13
// interleave it: the hook queues a callback (call_soon_threadsafe) that
// makes the task (create_task) whose first step starts aclose(). Checked
// against:
//   async def agen():
//       try: yield 1; yield 2
//       finally: log.append("close")
//   async def main():
//       loop = asyncio.get_running_loop(); g = agen(); await g.__anext__()
//       loop.call_soon(lambda: log.append("cb1")); del g
//       loop.call_soon(lambda: log.append("cb2"))
//       for i in range(4):
//           log.append(f"main{i} tasks={len(asyncio.all_tasks())}")
//           await asyncio.sleep(0)
TEST(AsyncGenerator, TheFinaliserClosesThroughTheLoopAsCPythonOrdersIt) {
    std::vector<std::string> log;
    auto gen = [&]() -> async_generator<int> {
        try {
            co_yield 1;
            co_yield 2;
        } catch (const pyco::generator_exit&) {
            log.push_back("close");
            throw;
        }
    };
    auto body = [&]() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        {
            auto g = gen();
            co_await g.anext();
            loop.call_soon([&] { log.push_back("cb1"); });
        }
        loop.call_soon([&] { log.push_back("cb2"); });
        for (int i = 0; i < 4; ++i) {
            log.push_back("main" + std::to_string(i) + " tasks=" + std::to_string(pyco::all_tasks().size()));
            co_await pyco::sleep(0s);
        }
    };
    pyco::run(body(), vt);
    EXPECT_EQ(log, (std::vector<std::string>{"main0 tasks=1", "cb1", "cb2", "main1 tasks=2", "close",
                                             "main2 tasks=1", "main3 tasks=1"}));
}

// The finaliser's aclose() runs as a task nobody awaits: its failure is
// that task's "Task exception was never retrieved" (asyncio's too).
TEST(AsyncGenerator, AFinaliserFailureIsReportedAsTheTasks) {
    std::vector<pyco::exception_context> reports;
    auto gen = []() -> async_generator<int> {
        try {
            co_yield 1;
        } catch (const pyco::generator_exit&) {
        }
        co_yield 2;  // ignores GeneratorExit
    };
    auto body = [&]() -> coroutine<void> {
        pyco::get_running_loop().set_exception_handler(
            [&](event_loop&, const pyco::exception_context& c) { reports.push_back(c); });
        {
            auto g = gen();
            co_await g.anext();
        }
        co_await pyco::sleep(10ms);
    };
    pyco::run(body(), vt);
    ASSERT_EQ(reports.size(), 1u);
    EXPECT_EQ(reports[0].message, "Task exception was never retrieved");
    EXPECT_EQ(pyco::describe_exception(reports[0].exception),
              "pyco::runtime_error: async generator ignored GeneratorExit");
}

// CPython's references: an in-flight operation keeps the frame alive.
TEST(AsyncGenerator, DroppingTheGeneratorWhileAConsumerIsInsideIsSafe) {
    int closed = 0;
    auto gen = [&]() -> async_generator<int> {
        try {
            for (int i = 0;; ++i) {
                co_await pyco::sleep(10ms);
                co_yield i;
            }
        } catch (const pyco::generator_exit&) {
            ++closed;
            throw;
        }
    };
    auto body = [&]() -> coroutine<void> {
        auto g = std::make_unique<async_generator<int>>(gen());
        co_await g->anext();
        auto consume = [](async_generator<int>& ag) -> coroutine<std::optional<int>> { co_return co_await ag.anext(); };
        auto t = pyco::create_task(consume(*g));
        co_await pyco::sleep(0s);
        {
            auto op = g->anext();  // an awaitable also holds the frame
            g.reset();
            EXPECT_EQ(co_await t, 1);
            EXPECT_EQ(co_await op, 2);
        }  // the last reference: the finaliser now owns the frame
        EXPECT_EQ(closed, 0);
        co_await pyco::sleep(0s);
        co_await pyco::sleep(0s);
        EXPECT_EQ(closed, 1);
    };
    pyco::run(body(), vt);
}


// No running loop: the frame is destroyed in place. RAII runs; no code of
// the body does (the catch block does not).
TEST(AsyncGenerator, DroppedWithNoRunningLoopIsDestroyedInPlace) {
    bool destroyed = false;
    bool caught = false;
    auto gen = [&]() -> async_generator<int> {
        flag_on_destroy guard{&destroyed};
        try {
            co_yield 1;
        } catch (...) {
            caught = true;
            throw;
        }
    };
    event_loop loop(vt);
    auto g = std::make_unique<async_generator<int>>(gen());
    auto start = [&]() -> coroutine<void> { co_await g->anext(); };
    loop.run_until_complete(start());
    EXPECT_EQ(count_live(loop), 1u);
    g.reset();
    EXPECT_TRUE(destroyed);
    EXPECT_FALSE(caught);
    EXPECT_EQ(count_live(loop), 0u);
}

// A generator outliving its loop: the loop's close() unlinks it, so its
// destruction later touches nothing of the loop (needs event_loop::close
// to unlink live_asyncgens()).
TEST(AsyncGenerator, AGeneratorCanOutliveItsLoop) {
    bool destroyed = false;
    auto gen = [&]() -> async_generator<int> {
        flag_on_destroy guard{&destroyed};
        co_yield 1;
    };
    async_generator<int> g = gen();
    {
        auto loop = std::make_unique<event_loop>(vt);
        auto start = [&]() -> coroutine<void> { co_await g.anext(); };
        loop->run_until_complete(start());
        loop->close();
    }
    g = async_generator<int>();
    EXPECT_TRUE(destroyed);
}

// ---- shutdown_asyncgens -----------------------------------------------------

// test_async_gen_asyncio_shutdown_01
TEST(AsyncGenerator, CancelledConsumersFinaliseTheirGeneratorsBeforeShutdown) {
    int finalized = 0;
    auto waiter = [&](std::chrono::milliseconds timeout) -> async_generator<int> {
        std::exception_ptr e;
        try {
            co_await pyco::sleep(timeout);
            co_yield 1;
        } catch (...) {
            e = std::current_exception();
        }
        co_await pyco::sleep(0s);
        finalized += 1;
        if (e) std::rethrow_exception(e);
    };
    auto wait = [&]() -> coroutine<void> {
        auto g = waiter(1s);
        while (co_await g.anext()) {
        }
    };
    event_loop loop(vt);
    auto t1 = loop.create_task(wait());
    auto t2 = loop.create_task(wait());
    loop.run_until_complete(sleep_for(100ms));
    t1.cancel();
    t2.cancel();
    EXPECT_THROW(loop.run_until_complete(t1), pyco::cancelled_error);
    EXPECT_THROW(loop.run_until_complete(t2), pyco::cancelled_error);
    loop.run_until_complete(pyco::shutdown_asyncgens(loop));
    EXPECT_EQ(finalized, 2);
}

TEST(AsyncGenerator, ShutdownClosesLiveGeneratorsConcurrently) {
    int closed = 0;
    auto gen = [&]() -> async_generator<int> {
        std::exception_ptr e;
        try {
            co_yield 1;
        } catch (...) {
            e = std::current_exception();
        }
        co_await pyco::sleep(10ms);
        ++closed;
        if (e) std::rethrow_exception(e);
    };
    event_loop loop(vt);
    std::vector<async_generator<int>> gens;
    gens.push_back(gen());
    gens.push_back(gen());
    gens.push_back(gen());
    auto start = [&]() -> coroutine<void> {
        for (auto& g : gens) co_await g.anext();
    };
    loop.run_until_complete(start());
    EXPECT_EQ(count_live(loop), 3u);
    const auto t0 = loop.time();
    loop.run_until_complete(pyco::shutdown_asyncgens(loop));
    EXPECT_EQ(closed, 3);
    EXPECT_EQ(loop.time() - t0, 10ms);  // side by side, not one after another
    EXPECT_EQ(count_live(loop), 0u);
    for (auto& g : gens) EXPECT_EQ(g.state(), gen_state::closed);
}

// test_async_gen_asyncio_shutdown_exception_01 (with an explicit call)
TEST(AsyncGenerator, ShutdownReportsAFailedCloseToTheExceptionHandler) {
    std::vector<pyco::exception_context> reports;
    auto gen = []() -> async_generator<int> {
        std::exception_ptr e;
        try {
            co_yield 1;
            co_yield 2;
        } catch (...) {
            e = std::current_exception();
        }
        throw zero_division();
    };
    event_loop loop(vt);
    loop.set_exception_handler([&](event_loop&, const pyco::exception_context& c) { reports.push_back(c); });
    auto it = gen();
    auto main = [&]() -> coroutine<void> {
        while (auto x = co_await it.anext()) break;
    };
    loop.run_until_complete(main());
    loop.run_until_complete(pyco::shutdown_asyncgens(loop));
    ASSERT_EQ(reports.size(), 1u);
    EXPECT_EQ(reports[0].message.rfind("an error occurred during closing of asynchronous generator "
                                       "<async_generator object ",
                                       0),
              0u)
        << reports[0].message;
    EXPECT_TRUE(holds<zero_division>(reports[0].exception));
    loop.run_until_complete(pyco::shutdown_asyncgens(loop));  // none left: nothing more
    EXPECT_EQ(reports.size(), 1u);
}

// test_async_gen_asyncio_shutdown_exception_01, through pyco::run (needs
// finish_run to call shutdown_asyncgens).
TEST(AsyncGenerator, RunClosesGeneratorsLeftSuspended) {
    std::vector<pyco::exception_context> reports;
    auto gen = []() -> async_generator<int> {
        try {
            co_yield 1;
            co_yield 2;
        } catch (const pyco::generator_exit&) {
        }
        throw zero_division();
    };
    auto it = gen();
    auto main = [&]() -> coroutine<void> {
        pyco::get_running_loop().set_exception_handler(
            [&](event_loop&, const pyco::exception_context& c) { reports.push_back(c); });
        while (auto x = co_await it.anext()) break;
    };
    pyco::run(main(), vt);
    ASSERT_EQ(reports.size(), 1u);
    EXPECT_NE(reports[0].message.find("an error occurred during closing of asynchronous generator"),
              std::string::npos);
    EXPECT_TRUE(holds<zero_division>(reports[0].exception));
    EXPECT_EQ(it.state(), gen_state::closed);
}

// ---- async_for -----------------------------------------------------------

TEST(AsyncFor, CallsTheBodyForEachValue) {
    auto gen = []() -> async_generator<int> {
        for (int i = 1; i <= 3; ++i) {
            co_await pyco::sleep(1ms);
            co_yield i;
        }
    };
    auto body = [&]() -> coroutine<int> {
        auto g = gen();
        int sum = 0;
        auto add = [&](int x) { sum += x; };
        co_await pyco::async_for(g, add);
        co_return sum;
    };
    EXPECT_EQ(pyco::run(body(), vt), 6);
}

TEST(AsyncFor, FalseBreaksAndLeavesTheGeneratorSuspended) {
    auto gen = []() -> async_generator<int> {
        for (int i = 1;; ++i) co_yield i;
    };
    auto body = [&]() -> coroutine<void> {
        auto g = gen();
        std::vector<int> seen;
        auto take = [&](int x) {
            seen.push_back(x);
            return x < 3;
        };
        co_await pyco::async_for(g, take);
        EXPECT_EQ(seen, (std::vector<int>{1, 2, 3}));
        EXPECT_EQ(g.state(), gen_state::suspended);
        EXPECT_EQ(co_await g.anext(), 4);
        co_await g.aclose();
    };
    pyco::run(body(), vt);
}

TEST(AsyncFor, AnAsyncBodyIsAwaitedBeforeTheNextValue) {
    auto gen = []() -> async_generator<std::string> {
        co_yield "a";
        co_yield "b";
        co_yield "c";
    };
    auto body = [&]() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        auto g = gen();
        std::vector<std::string> seen;
        auto slow = [&](std::string s) -> coroutine<bool> {
            co_await pyco::sleep(10ms);
            seen.push_back(s);
            co_return s != "b";
        };
        const auto t0 = loop.time();
        co_await pyco::async_for(g, slow);
        EXPECT_EQ(seen, (std::vector<std::string>{"a", "b"}));
        EXPECT_EQ(loop.time() - t0, 20ms);
        co_await g.aclose();
    };
    pyco::run(body(), vt);
}

TEST(AsyncFor, AnExceptionFromTheBodyPropagates) {
    auto gen = []() -> async_generator<int> {
        co_yield 1;
        co_yield 2;
    };
    auto body = [&]() -> coroutine<void> {
        auto g = gen();
        auto fail = [](int) { throw foo_error(); };
        co_await pyco::async_for(g, fail);
    };
    EXPECT_THROW(pyco::run(body(), vt), foo_error);
}

}  // namespace
