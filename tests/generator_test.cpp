// The generator's own rules: section 1 of the contract, one test per rule.
// Traces were checked against CPython 3.11/3.12 where CPython has the case.
#include <pyco/generator.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "unraisable_capture.hpp"

namespace {

using pyco::gen_state;
using pyco::generator;
using trace_t = std::vector<std::string>;

generator<int> count_to(int n) {
    for (int i = 0; i < n; ++i) co_yield i;
}

// ---------------------------------------------------------------- basics

TEST(Generator, IsLazyUntilFirstNext) {
    trace_t tr;
    auto body = [](trace_t& t) -> generator<int> {
        t.push_back("started");
        co_yield 1;
    };
    auto g = body(tr);
    EXPECT_TRUE(tr.empty());
    EXPECT_EQ(g.state(), gen_state::created);
    EXPECT_EQ(g.next(), 1);
    EXPECT_EQ(tr, trace_t{"started"});
}

TEST(Generator, NextReturnsEmptyWhenFinishedAndStaysEmpty) {
    auto g = count_to(2);
    EXPECT_EQ(g.next(), 0);
    EXPECT_EQ(g.next(), 1);
    EXPECT_EQ(g.next(), std::nullopt);
    EXPECT_EQ(g.state(), gen_state::closed);
    EXPECT_EQ(g.next(), std::nullopt);
}

TEST(Generator, StatesFollowInspectGetgeneratorstate) {
    generator<int>* self = nullptr;
    gen_state seen_inside = gen_state::closed;
    auto body = [](generator<int>** me, gen_state* seen) -> generator<int> {
        *seen = (*me)->state();
        co_yield 1;
    };
    auto g = body(&self, &seen_inside);
    self = &g;
    EXPECT_EQ(g.state(), gen_state::created);
    g.next();
    EXPECT_EQ(seen_inside, gen_state::running);
    EXPECT_EQ(g.state(), gen_state::suspended);
    g.next();
    EXPECT_EQ(g.state(), gen_state::closed);
}

TEST(Generator, MovedFromGeneratorIsClosedAndEmpty) {
    auto g = count_to(3);
    auto h = std::move(g);
    EXPECT_EQ(g.state(), gen_state::closed);  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(g.next(), std::nullopt);
    EXPECT_FALSE(static_cast<bool>(g));
    EXPECT_EQ(h.next(), 0);
    g.close();  // harmless
}

TEST(Generator, YieldsMoveOnlyValues) {
    auto body = []() -> generator<std::unique_ptr<int>> {
        co_yield std::make_unique<int>(7);
        auto p = std::make_unique<int>(8);
        co_yield std::move(p);
    };
    auto g = body();
    auto a = g.next();
    ASSERT_TRUE(a && *a);
    EXPECT_EQ(**a, 7);
    EXPECT_EQ(**g.next(), 8);
}

TEST(Generator, YieldingAnLvalueCopiesIt) {
    auto body = []() -> generator<std::string> {
        std::string s = "kept";
        co_yield s;
        co_yield s;  // still intact: the consumer moved from a copy
    };
    auto g = body();
    EXPECT_EQ(g.next(), "kept");
    EXPECT_EQ(g.next(), "kept");
}

TEST(Generator, YieldConvertsToTheYieldType) {
    auto body = []() -> generator<std::string> {
        co_yield "literal";
        co_yield std::string_view("view");
    };
    auto g = body();
    EXPECT_EQ(g.next(), "literal");
    EXPECT_EQ(g.next(), "view");
}

TEST(Generator, IsGeneratorTrait) {
    static_assert(pyco::is_generator_v<generator<int>>);
    static_assert(pyco::is_generator_v<generator<int, int, int>>);
    static_assert(!pyco::is_generator_v<int>);
    static_assert(!pyco::is_generator_v<std::vector<int>>);
    SUCCEED();
}

// ---------------------------------------------------------------- send

generator<std::string, int> echo(trace_t& tr) {
    int received = co_yield "ready";
    while (true) {
        tr.push_back("got " + std::to_string(received));
        received = co_yield "echo " + std::to_string(received);
    }
}

TEST(GeneratorSend, SendBecomesTheValueOfCoYield) {
    trace_t tr;
    auto g = echo(tr);
    EXPECT_EQ(g.next(), "ready");
    EXPECT_EQ(g.send(5), "echo 5");
    EXPECT_EQ(g.send(6), "echo 6");
    EXPECT_EQ(tr, (trace_t{"got 5", "got 6"}));
}

TEST(GeneratorSend, NextDeliversDefaultValueLikeNone) {
    trace_t tr;
    auto g = echo(tr);
    g.next();
    EXPECT_EQ(g.next(), "echo 0");
    EXPECT_EQ(tr, trace_t{"got 0"});
}

TEST(GeneratorSend, SendToJustStartedGeneratorIsTypeError) {
    trace_t tr;
    auto g = echo(tr);
    try {
        g.send(1);
        FAIL() << "no type_error";
    } catch (const pyco::type_error& e) {
        EXPECT_STREQ(e.what(), "can't send non-None value to a just-started generator");
    }
    // The generator is untouched: it can still be started.
    EXPECT_EQ(g.state(), gen_state::created);
    EXPECT_EQ(g.next(), "ready");
}

TEST(GeneratorSend, SendToFinishedGeneratorIsEmpty) {
    auto body = []() -> generator<int, int> { co_yield 1; };
    auto g = body();
    g.next();
    EXPECT_EQ(g.send(3), std::nullopt);
    EXPECT_EQ(g.send(3), std::nullopt);
}

TEST(GeneratorSend, PrimedRunsToTheFirstYield) {
    trace_t tr;
    auto g = pyco::primed(echo(tr));
    EXPECT_EQ(g.state(), gen_state::suspended);
    EXPECT_EQ(g.send(9), "echo 9");
}

// ---------------------------------------------------------------- return

TEST(GeneratorReturn, ReturnValueHoldsWhatTheBodyReturned) {
    auto body = []() -> generator<int, void, std::string> {
        co_yield 1;
        co_return "done";
    };
    auto g = body();
    EXPECT_THROW(g.return_value(), pyco::invalid_state_error);
    g.next();
    EXPECT_THROW(g.return_value(), pyco::invalid_state_error);
    EXPECT_EQ(g.next(), std::nullopt);
    EXPECT_EQ(g.return_value(), "done");
}

// ---------------------------------------------------------------- errors

TEST(GeneratorErrors, ExceptionEscapingTheBodyReachesTheCallerAndClosesIt) {
    auto body = []() -> generator<int> {
        co_yield 1;
        throw pyco::value_error("boom");
    };
    auto g = body();
    g.next();
    try {
        g.next();
        FAIL();
    } catch (const pyco::value_error& e) {
        EXPECT_STREQ(e.what(), "boom");
    }
    EXPECT_EQ(g.state(), gen_state::closed);
    EXPECT_EQ(g.next(), std::nullopt);
}

TEST(GeneratorErrors, ReenteringARunningGeneratorIsValueError) {
    generator<int>* self = nullptr;
    auto body = [](generator<int>** me) -> generator<int> {
        // (C++ allows no co_yield inside a handler: catch, then yield.)
        bool refused = false;
        try {
            (*me)->next();
        } catch (const pyco::value_error& e) {
            EXPECT_STREQ(e.what(), "generator already executing");
            refused = true;
        }
        co_yield refused ? 1 : 0;
    };
    auto g = body(&self);
    self = &g;
    EXPECT_EQ(g.next(), 1);
}

TEST(GeneratorErrors, CloseAndThrowOnARunningGeneratorAreValueErrors) {
    generator<int>* self = nullptr;
    auto body = [](generator<int>** me) -> generator<int> {
        EXPECT_THROW((*me)->close(), pyco::value_error);
        EXPECT_THROW((*me)->throw_(pyco::runtime_error("x")), pyco::value_error);
        co_yield 1;
    };
    auto g = body(&self);
    self = &g;
    EXPECT_EQ(g.next(), 1);
}

TEST(GeneratorErrors, GeneratorExitIsNotAStdException) {
    static_assert(!std::is_base_of_v<std::exception, pyco::generator_exit>);
    static_assert(std::is_base_of_v<pyco::base_exception, pyco::generator_exit>);
    trace_t tr;
    auto body = [](trace_t& t) -> generator<int> {
        try {
            co_yield 1;
        } catch (const std::exception&) {
            t.push_back("swallowed by std::exception");
        }
        t.push_back("after");
    };
    auto g = body(tr);
    g.next();
    g.close();
    EXPECT_TRUE(tr.empty());
}

// ---------------------------------------------------------------- throw_

TEST(GeneratorThrow, CaughtInsideThenYieldsNext) {
    auto body = []() -> generator<std::string> {
        while (true) {
            std::string caught;
            try {
                co_yield "waiting";
            } catch (const pyco::value_error& e) {
                caught = std::string("caught ") + e.what();
            }
            if (!caught.empty()) co_yield caught;
        }
    };
    auto g = body();
    g.next();
    EXPECT_EQ(g.throw_(pyco::value_error("v")), "caught v");
    EXPECT_EQ(g.next(), "waiting");
}

TEST(GeneratorThrow, UncaughtPropagatesAndCloses) {
    auto g = count_to(5);
    g.next();
    EXPECT_THROW(g.throw_(pyco::type_error("t")), pyco::type_error);
    EXPECT_EQ(g.state(), gen_state::closed);
}

TEST(GeneratorThrow, OnCreatedRaisesAtStartWithoutRunningTheBody) {
    bool ran = false;
    auto body = [](bool& r) -> generator<int> {
        r = true;
        co_yield 1;
    };
    auto g = body(ran);
    EXPECT_THROW(g.throw_(pyco::value_error("early")), pyco::value_error);
    EXPECT_FALSE(ran);
    EXPECT_EQ(g.state(), gen_state::closed);
    EXPECT_EQ(g.next(), std::nullopt);
}

TEST(GeneratorThrow, OnClosedRethrowsTheGivenException) {
    auto g = count_to(0);
    EXPECT_EQ(g.next(), std::nullopt);
    try {
        g.throw_(pyco::value_error("again"));
        FAIL();
    } catch (const pyco::value_error& e) {
        EXPECT_STREQ(e.what(), "again");
    }
}

TEST(GeneratorThrow, AcceptsAnExceptionPtrOfAnyType) {
    auto g = count_to(3);
    g.next();
    EXPECT_THROW(g.throw_(std::make_exception_ptr(std::out_of_range("r"))), std::out_of_range);
    EXPECT_THROW(g.throw_(std::exception_ptr{}), pyco::type_error);
}

TEST(GeneratorThrow, ThrowingGeneratorExitWithoutDelegationIsAnOrdinaryThrow) {
    // CPython: g.throw(GeneratorExit) into a generator that yields in its
    // handler returns the yielded value (only close() calls that an error).
    auto body = []() -> generator<int> {
        bool exiting = false;
        try {
            co_yield 1;
        } catch (const pyco::generator_exit&) {
            exiting = true;
        }
        if (exiting) co_yield 2;
    };
    auto g = body();
    g.next();
    EXPECT_EQ(g.throw_(pyco::generator_exit()), 2);
}

// ---------------------------------------------------------------- close

TEST(GeneratorClose, OnCreatedJustMarksClosed) {
    bool ran = false;
    auto body = [](bool& r) -> generator<int> {
        r = true;
        co_yield 1;
    };
    auto g = body(ran);
    g.close();
    EXPECT_FALSE(ran);
    EXPECT_EQ(g.state(), gen_state::closed);
    EXPECT_EQ(g.next(), std::nullopt);
}

TEST(GeneratorClose, RaisesGeneratorExitAtTheSuspendedYield) {
    trace_t tr;
    auto body = [](trace_t& t) -> generator<int> {
        try {
            co_yield 1;
            t.push_back("not reached");
        } catch (const pyco::generator_exit&) {
            t.push_back("exit");
            throw;
        }
    };
    auto g = body(tr);
    g.next();
    g.close();
    EXPECT_EQ(tr, trace_t{"exit"});
    EXPECT_EQ(g.state(), gen_state::closed);
    g.close();  // twice: nothing
    EXPECT_EQ(tr, trace_t{"exit"});
}

TEST(GeneratorClose, RunsRaiiCleanup) {
    int cleaned = 0;
    auto body = [](int& c) -> generator<int> {
        struct guard {
            int& c;
            ~guard() { ++c; }
        } gd{c};
        co_yield 1;
        co_yield 2;
    };
    auto g = body(cleaned);
    g.next();
    g.close();
    EXPECT_EQ(cleaned, 1);
}

TEST(GeneratorClose, YieldingAgainIsIgnoredGeneratorExit) {
    auto body = []() -> generator<int> {
        while (true) {
            try {
                co_yield 1;
            } catch (const pyco::generator_exit&) {
            }
        }
    };
    unraisable_capture cap;
    {
        auto g = body();
        g.next();
        try {
            g.close();
            FAIL();
        } catch (const pyco::runtime_error& e) {
            EXPECT_STREQ(e.what(), "generator ignored GeneratorExit");
        }
        EXPECT_EQ(g.state(), gen_state::suspended);
    }
    // The destructor's close fails the same way; the hook gets it.
    ASSERT_EQ(cap.reports.size(), 1u);
    EXPECT_EQ(cap.reports[0], "pyco::runtime_error: generator ignored GeneratorExit");
}

TEST(GeneratorClose, ReturningAValueKeepsItAsReturnValue) {
    auto body = []() -> generator<int, void, int> {
        try {
            co_yield 1;
        } catch (const pyco::generator_exit&) {
            co_return 42;
        }
        co_return 0;
    };
    auto g = body();
    g.next();
    g.close();
    EXPECT_EQ(g.state(), gen_state::closed);
    EXPECT_EQ(g.return_value(), 42);
}

TEST(GeneratorClose, OtherExceptionsFromCleanupPropagate) {
    auto body = []() -> generator<int> {
        try {
            co_yield 1;
        } catch (const pyco::generator_exit&) {
            throw pyco::value_error("cleanup failed");
        }
    };
    auto g = body();
    g.next();
    EXPECT_THROW(g.close(), pyco::value_error);
    EXPECT_EQ(g.state(), gen_state::closed);
}

TEST(GeneratorClose, DestructorClosesASuspendedGenerator) {
    trace_t tr;
    {
        auto body = [](trace_t& t) -> generator<int> {
            try {
                co_yield 1;
            } catch (const pyco::generator_exit&) {
                t.push_back("closed by destructor");
                throw;
            }
        };
        auto g = body(tr);
        g.next();
    }
    EXPECT_EQ(tr, trace_t{"closed by destructor"});
}

TEST(GeneratorClose, DestructorNeverRunsAnUnstartedBody) {
    bool ran = false;
    {
        auto body = [](bool& r) -> generator<int> {
            r = true;
            co_yield 1;
        };
        auto g = body(ran);
    }
    EXPECT_FALSE(ran);
}

TEST(GeneratorClose, DestructorSendsCleanupErrorsToTheUnraisableHook) {
    unraisable_capture cap;
    {
        auto body = []() -> generator<int> {
            try {
                co_yield 1;
            } catch (const pyco::generator_exit&) {
                throw pyco::value_error("in cleanup");
            }
        };
        auto g = body();
        g.next();
    }
    ASSERT_EQ(cap.reports.size(), 1u);
    EXPECT_EQ(cap.reports[0], "pyco::value_error: in cleanup");
    ASSERT_EQ(cap.objects.size(), 1u);
    EXPECT_EQ(cap.objects[0].rfind("<generator object at ", 0), 0u) << cap.objects[0];
}

// ---------------------------------------------------------------- yield from

generator<std::string, int, int> inner(trace_t& tr) {
    tr.push_back("inner start");
    int x = co_yield "i1";
    tr.push_back("inner got " + std::to_string(x));
    x = co_yield "i2";
    tr.push_back("inner got " + std::to_string(x));
    co_return 99;
}

generator<std::string, int> outer(trace_t& tr) {
    tr.push_back("outer start");
    int r = co_yield pyco::from(inner(tr));
    tr.push_back("outer got result " + std::to_string(r));
    int x = co_yield "o1";
    tr.push_back("outer got " + std::to_string(x));
}

TEST(GeneratorYieldFrom, ValuesAndSendsGoStraightThroughAndResultComesBack) {
    trace_t tr;
    auto g = outer(tr);
    EXPECT_EQ(g.next(), "i1");
    EXPECT_EQ(g.send(1), "i2");
    EXPECT_EQ(g.send(2), "o1");
    EXPECT_EQ(g.send(3), std::nullopt);
    EXPECT_EQ(tr, (trace_t{"outer start", "inner start", "inner got 1", "inner got 2",
                           "outer got result 99", "outer got 3"}));
}

generator<int> level(int n, trace_t& tr, bool catch_at_bottom) {
    try {
        if (n == 0) {
            bool caught = false;
            try {
                co_yield 0;
            } catch (const pyco::value_error&) {
                tr.push_back("bottom caught");
                if (!catch_at_bottom) throw;
                caught = true;
            }
            if (caught) co_yield -1;
        } else {
            co_yield pyco::from(level(n - 1, tr, catch_at_bottom));
        }
    } catch (const pyco::value_error&) {
        tr.push_back("level " + std::to_string(n) + " saw it");
        throw;
    } catch (const pyco::generator_exit&) {
        tr.push_back("level " + std::to_string(n) + " exit");
        throw;
    }
}

TEST(GeneratorYieldFrom, ThrowReachesTheInnermostFirstThenEachDelegator) {
    trace_t tr;
    auto g = level(2, tr, false);
    g.next();
    EXPECT_THROW(g.throw_(pyco::value_error("x")), pyco::value_error);
    EXPECT_EQ(tr, (trace_t{"bottom caught", "level 0 saw it", "level 1 saw it",
                           "level 2 saw it"}));
    EXPECT_EQ(g.state(), gen_state::closed);
}

TEST(GeneratorYieldFrom, ThrowHandledInnermostYieldsThroughTheChain) {
    trace_t tr;
    auto g = level(3, tr, true);
    g.next();
    EXPECT_EQ(g.throw_(pyco::value_error("x")), -1);
    EXPECT_EQ(tr, trace_t{"bottom caught"});
}

TEST(GeneratorYieldFrom, CloseClosesInnermostFirstThenEachDelegator) {
    trace_t tr;
    auto g = level(2, tr, false);
    g.next();
    g.close();
    EXPECT_EQ(tr, (trace_t{"level 0 exit", "level 1 exit", "level 2 exit"}));
    EXPECT_EQ(g.state(), gen_state::closed);
}

TEST(GeneratorYieldFrom, SubgeneratorReturningOnCloseStillRaisesGeneratorExitInDelegator) {
    // CPython: gen_close_iter(sub) succeeded, so GeneratorExit is raised in
    // the delegator; the sub's return value is dropped.
    trace_t tr;
    auto sub = [](trace_t& t) -> generator<int, void, int> {
        try {
            co_yield 1;
        } catch (const pyco::generator_exit&) {
            t.push_back("sub exit");
            co_return 5;
        }
        co_return 0;
    };
    auto del = [](trace_t& t, auto make) -> generator<int> {
        try {
            int r = co_yield pyco::from(make(t));
            t.push_back("delegator got " + std::to_string(r));
        } catch (const pyco::generator_exit&) {
            t.push_back("delegator exit");
            throw;
        }
    };
    auto g = del(tr, sub);
    g.next();
    g.close();
    EXPECT_EQ(tr, (trace_t{"sub exit", "delegator exit"}));
}

TEST(GeneratorYieldFrom, ThrowingGeneratorExitClosesTheSubButLetsTheDelegatorYield) {
    trace_t tr;
    auto sub = [](trace_t& t) -> generator<std::string> {
        struct fin {
            trace_t& t;
            ~fin() { t.push_back("sub finally"); }
        } f{t};
        co_yield "s";
    };
    auto del = [](trace_t& t, auto make) -> generator<std::string> {
        bool exiting = false;
        try {
            co_yield pyco::from(make(t));
        } catch (const pyco::generator_exit&) {
            t.push_back("delegator exit");
            exiting = true;
        }
        if (exiting) co_yield "after";
    };
    auto g = del(tr, sub);
    g.next();
    EXPECT_EQ(g.throw_(pyco::generator_exit()), "after");
    EXPECT_EQ(tr, (trace_t{"sub finally", "delegator exit"}));
}

TEST(GeneratorYieldFrom, YieldDuringCleanupBlamesTheNodeBeingClosed) {
    // Checked against CPython: `leaf` is being closed and, in its handler,
    // delegates to `other`, which yields. The RuntimeError is raised in
    // `mid` (leaf's delegator), not in leaf; `other` was never closed.
    trace_t tr;
    auto other = [](trace_t& t) -> generator<std::string> {
        t.push_back("other start");
        co_yield "o1";
        t.push_back("other after");
    };
    auto leaf = [](trace_t& t, auto mk_other) -> generator<std::string> {
        bool exiting = false;
        try {
            co_yield "l1";
        } catch (const pyco::generator_exit&) {
            t.push_back("leaf exit");
            exiting = true;
        }
        if (exiting) {
            co_yield pyco::from(mk_other(t));
            t.push_back("leaf after other");
        }
    };
    auto mid = [](trace_t& t, auto mk_leaf, auto mk_other) -> generator<std::string> {
        try {
            co_yield pyco::from(mk_leaf(t, mk_other));
        } catch (const pyco::runtime_error& e) {
            t.push_back(std::string("mid got runtime_error: ") + e.what());
            throw;
        }
    };
    unraisable_capture cap;
    {
        auto g = mid(tr, leaf, other);
        EXPECT_EQ(g.next(), "l1");
        try {
            g.close();
            FAIL();
        } catch (const pyco::runtime_error& e) {
            tr.push_back(std::string("close raised: ") + e.what());
        }
    }
    EXPECT_EQ(tr, (trace_t{"leaf exit", "other start",
                           "mid got runtime_error: generator ignored GeneratorExit",
                           "close raised: generator ignored GeneratorExit"}));
    // `leaf` is closed again when mid drops it. This time `other` is closed
    // first (it was delegating), so leaf ends quietly: nothing is reported,
    // as in CPython.
    EXPECT_TRUE(cap.reports.empty());
}

TEST(GeneratorYieldFrom, DelegationStartedDuringCleanupReturnsNormally) {
    trace_t tr;
    auto quick = []() -> generator<int, void, int> { co_return 42; };
    auto body = [](trace_t& t, auto q) -> generator<int> {
        std::exception_ptr exiting;
        try {
            co_yield 1;
        } catch (const pyco::generator_exit&) {
            exiting = std::current_exception();
        }
        if (exiting) {
            int r = co_yield pyco::from(q());
            t.push_back("r=" + std::to_string(r));
            std::rethrow_exception(exiting);
        }
    };
    auto g = body(tr, quick);
    g.next();
    g.close();
    EXPECT_EQ(tr, trace_t{"r=42"});
}

TEST(GeneratorYieldFrom, FromAnyInputRangeConvertsValues) {
    auto body = []() -> generator<long> {
        std::vector<int> v{1, 2, 3};
        co_yield pyco::from(v);
        std::vector<short> w{4, 5};  // GCC 12: no braced list inside co_yield
        co_yield pyco::from(std::move(w));
        co_yield pyco::from(std::views::iota(6, 8));
    };
    std::vector<long> got;
    for (long x : body()) got.push_back(x);
    EXPECT_EQ(got, (std::vector<long>{1, 2, 3, 4, 5, 6, 7}));
}

TEST(GeneratorYieldFrom, SendIntoADelegatedRangeIsTypeErrorInTheDelegator) {
    auto body = []() -> generator<int, int> {
        std::vector<int> v{1, 2};
        bool refused = false;
        try {
            co_yield pyco::from(v);
        } catch (const pyco::type_error&) {
            refused = true;
        }
        if (refused) co_yield 100;
    };
    auto g = body();
    EXPECT_EQ(g.next(), 1);
    EXPECT_EQ(g.next(), 2);  // next() is fine
    auto h = body();
    h.next();
    EXPECT_EQ(h.send(7), 100);
}

// PEP 380: `if _s is None: _y = next(_i)`. S{} is pyco's None.
TEST(GeneratorYieldFrom, SendingNoneIntoADelegatedRangeAdvancesIt) {
    auto body = []() -> generator<int, int> {
        std::vector<int> v{1, 2, 3};
        co_yield pyco::from(v);
        co_yield 100;
    };
    auto g = body();
    EXPECT_EQ(g.next(), 1);
    EXPECT_EQ(g.send(0), 2);
    EXPECT_EQ(g.send(0), 3);
    EXPECT_EQ(g.send(0), 100);

    auto opt = []() -> generator<int, std::optional<int>> {
        std::vector<int> v{1, 2};
        co_yield pyco::from(std::move(v));
    };
    auto h = opt();
    EXPECT_EQ(h.next(), 1);
    EXPECT_EQ(h.send(std::nullopt), 2);
    EXPECT_EQ(h.send(std::nullopt), std::nullopt);
}

// CPython: "'list_iterator' object has no attribute 'send'" (AttributeError),
// raised in the delegator, which can catch it and go on.
TEST(GeneratorYieldFrom, SendingAValueIntoADelegatedRangeNamesTheRange) {
    std::string why;
    auto body = [&why]() -> generator<int, std::optional<int>> {
        std::vector<int> v{1, 2};
        try {
            co_yield pyco::from(v);
        } catch (const pyco::type_error& e) {
            why = e.what();
        }
        co_yield 100;
    };
    auto g = body();
    EXPECT_EQ(g.next(), 1);
    EXPECT_EQ(g.send(7), 100);
    EXPECT_EQ(why, "'std::vector<int>' object has no attribute 'send'");
}

TEST(GeneratorSend, SendingNoneToAJustStartedGeneratorStartsIt) {
    // CPython refuses only a non-None value ("can't send non-None value").
    auto body = []() -> generator<int, std::optional<int>> {
        auto got = co_yield 1;
        co_yield got.value_or(-1);
    };
    auto g = body();
    EXPECT_EQ(g.send(std::nullopt), 1);
    EXPECT_EQ(g.send(5), 5);
    auto h = body();
    EXPECT_THROW(h.send(5), pyco::type_error);
}

TEST(GeneratorYieldFrom, BorrowedSubgeneratorStaysWithItsOwner) {
    auto sub = []() -> generator<int, void, int> {
        co_yield 1;
        co_yield 2;
        co_return 3;
    };
    auto s = sub();
    EXPECT_EQ(s.next(), 1);  // already started: delegation continues from here
    auto del = [](generator<int, void, int>& sref) -> generator<int> {
        int r = co_yield pyco::from(sref);
        co_yield r;
    };
    auto g = del(s);
    EXPECT_EQ(g.next(), 2);
    // While delegated to, it belongs to its delegator.
    EXPECT_THROW(s.next(), pyco::value_error);
    EXPECT_EQ(g.next(), 3);
    EXPECT_EQ(s.state(), gen_state::closed);
    EXPECT_EQ(s.return_value(), 3);
    EXPECT_EQ(g.next(), std::nullopt);
}

TEST(GeneratorYieldFrom, FromAnExhaustedGeneratorGivesDefaultAtOnce) {
    auto sub = []() -> generator<int, void, int> { co_return 3; };
    auto s = sub();
    EXPECT_EQ(s.next(), std::nullopt);
    auto del = [](generator<int, void, int>& sref) -> generator<int> {
        int r = co_yield pyco::from(sref);
        co_yield r;  // CPython: None, the value is not repeated
    };
    auto g = del(s);
    EXPECT_EQ(g.next(), 0);
}

TEST(GeneratorYieldFrom, FromAnEmptyGeneratorIsValueError) {
    auto del = []() -> generator<int> {
        generator<int> empty;
        bool refused = false;
        try {
            co_yield pyco::from(std::move(empty));
        } catch (const pyco::value_error&) {
            refused = true;
        }
        if (refused) co_yield -1;
    };
    auto g = del();
    EXPECT_EQ(g.next(), -1);
}

TEST(GeneratorYieldFrom, DelegatingToItselfIsAlreadyExecuting) {
    generator<int>* self = nullptr;
    auto body = [](generator<int>** me) -> generator<int> {
        co_yield 0;
        bool refused = false;
        try {
            co_yield pyco::from(**me);
        } catch (const pyco::value_error& e) {
            EXPECT_STREQ(e.what(), "generator already executing");
            refused = true;
        }
        if (refused) co_yield 1;
    };
    auto g = body(&self);
    self = &g;
    std::vector<int> got;
    for (int x : g) got.push_back(x);
    EXPECT_EQ(got, (std::vector<int>{0, 1}));
}

TEST(GeneratorYieldFrom, InnerStateIsRunningWhileTheChainRuns) {
    generator<int, void, int>* inner_ptr = nullptr;
    gen_state seen = gen_state::closed;
    auto sub = [](generator<int, void, int>** me, gen_state* s) -> generator<int, void, int> {
        co_yield 1;
        *s = (*me)->state();
        co_return 0;
    };
    auto s = sub(&inner_ptr, &seen);
    inner_ptr = &s;
    auto del = [](generator<int, void, int>& sref) -> generator<int> {
        co_yield pyco::from(sref);
    };
    auto g = del(s);
    g.next();
    EXPECT_EQ(s.state(), gen_state::suspended);
    g.next();
    EXPECT_EQ(seen, gen_state::running);
}

// ------------------------------------------ destroyed from inside its body
// CPython cannot free a running generator (the call that runs it holds a
// reference): it is freed, and so closed, when that call returns. pyco
// keeps the frame until then. Traces checked against CPython 3.12.

// holder = [g()]; def g(): holder[0] = None; yield 1  ... next(holder[0])
TEST(GeneratorDestroyedInside, ItsOwnBodyDropsItClosedWhenTheCallReturns) {
    trace_t tr;
    std::unique_ptr<generator<int>> holder;
    auto body = [](trace_t& t, std::unique_ptr<generator<int>>& h) -> generator<int> {
        struct fin {
            trace_t& t;
            ~fin() { t.push_back("finally"); }
        } f{t};
        t.push_back("start");
        h.reset();  // the last owner of this very generator
        t.push_back("dropped");
        co_yield 1;
        t.push_back("resumed");
        co_yield 2;
    };
    holder = std::make_unique<generator<int>>(body(tr, holder));
    auto x = holder->next();
    tr.push_back("got " + std::to_string(x.value_or(-1)));
    EXPECT_EQ(tr, (trace_t{"start", "dropped", "finally", "got 1"}));
    EXPECT_EQ(holder, nullptr);
}

// The body of the innermost generator drops the outermost one.
TEST(GeneratorDestroyedInside, TheLeafDropsTheRootOfItsChain) {
    trace_t tr;
    std::optional<generator<int>> holder;
    auto sub = [](trace_t& t, std::optional<generator<int>>& h) -> generator<int> {
        struct fin {
            trace_t& t;
            ~fin() { t.push_back("sub finally"); }
        } f{t};
        h.reset();
        co_yield 1;
    };
    auto outer = [&sub](trace_t& t, std::optional<generator<int>>& h) -> generator<int> {
        struct fin {
            trace_t& t;
            ~fin() { t.push_back("outer finally"); }
        } f{t};
        co_yield pyco::from(sub(t, h));
    };
    holder.emplace(outer(tr, holder));
    auto x = holder->next();
    tr.push_back("got " + std::to_string(x.value_or(-1)));
    EXPECT_EQ(tr, (trace_t{"sub finally", "outer finally", "got 1"}));
}

// A borrowed sub-generator drops its own owner: the delegator, which still
// delegates to it, frees it when the delegation ends (as CPython's `s`
// parameter keeps it alive).
TEST(GeneratorDestroyedInside, ABorrowedSubgeneratorDropsItself) {
    trace_t tr;
    auto holder = std::make_unique<generator<int, void, int>>();
    auto sub = [](trace_t& t, std::unique_ptr<generator<int, void, int>>& h)
        -> generator<int, void, int> {
        struct fin {
            trace_t& t;
            ~fin() { t.push_back("sub finally"); }
        } f{t};
        co_yield 1;
        h.reset();
        t.push_back("dropped sub");
        co_yield 2;
        co_yield 3;
        co_return 7;
    };
    auto outer = [](trace_t& t, generator<int, void, int>& s) -> generator<int> {
        int r = co_yield pyco::from(s);
        t.push_back("outer after " + std::to_string(r));
        co_yield 4;
    };
    *holder = sub(tr, holder);
    for (int v : outer(tr, *holder)) tr.push_back(std::to_string(v));
    EXPECT_EQ(tr, (trace_t{"1", "dropped sub", "2", "3", "sub finally", "outer after 7", "4"}));
}

// The same, destroyed by the consumer while the chain is suspended in it.
TEST(GeneratorDestroyedInside, ABorrowedSubgeneratorDroppedBetweenSteps) {
    trace_t tr;
    auto sub = [](trace_t& t) -> generator<int> {
        struct fin {
            trace_t& t;
            ~fin() { t.push_back("sub finally"); }
        } f{t};
        co_yield 1;
        co_yield 2;
    };
    auto outer = [](generator<int>& s) -> generator<int> {
        co_yield pyco::from(s);
        co_yield 3;
    };
    auto s = std::make_unique<generator<int>>(sub(tr));
    auto g = outer(*s);
    EXPECT_EQ(g.next(), 1);
    s.reset();  // delegated to: the delegator keeps the frame
    EXPECT_TRUE(tr.empty());
    EXPECT_EQ(g.next(), 2);
    EXPECT_EQ(g.next(), 3);
    EXPECT_EQ(tr, trace_t{"sub finally"});
    EXPECT_EQ(g.next(), std::nullopt);
}

// Dropped while still delegating: closing the delegator closes it too.
TEST(GeneratorDestroyedInside, ABorrowedSubgeneratorDroppedThenTheChainClosed) {
    trace_t tr;
    auto sub = [](trace_t& t) -> generator<int> {
        try {
            co_yield 1;
            co_yield 2;
        } catch (const pyco::generator_exit&) {
            t.push_back("sub closed");
            throw;
        }
    };
    auto outer = [](generator<int>& s) -> generator<int> { co_yield pyco::from(s); };
    auto s = std::make_unique<generator<int>>(sub(tr));
    {
        auto g = outer(*s);
        EXPECT_EQ(g.next(), 1);
        s.reset();
    }
    EXPECT_EQ(tr, trace_t{"sub closed"});
}

// A range-for cannot see the value of the step that destroyed the generator:
// its iterator points into the frame, which is closed at once.
TEST(GeneratorDestroyedInside, ARangeForEndsAtTheStepThatDroppedIt) {
    trace_t tr;
    std::optional<generator<int>> holder;
    auto body = [](trace_t& t, std::optional<generator<int>>& h) -> generator<int> {
        try {
            co_yield 1;
            h.reset();
            co_yield 2;
            co_yield 3;
        } catch (const pyco::generator_exit&) {
            t.push_back("closed");
            throw;
        }
    };
    holder.emplace(body(tr, holder));
    for (int v : *holder) tr.push_back(std::to_string(v));
    EXPECT_EQ(tr, (trace_t{"1", "closed"}));
}

// The step that dropped it may also end the body, by returning or raising.
TEST(GeneratorDestroyedInside, TheStepThatDropsItEndsTheBody) {
    std::optional<generator<int>> holder;
    auto returns = [](std::optional<generator<int>>& h) -> generator<int> {
        h.reset();
        co_return;
    };
    holder.emplace(returns(holder));
    EXPECT_EQ(holder->next(), std::nullopt);

    auto raises = [](std::optional<generator<int>>& h) -> generator<int> {
        co_yield 1;
        h.reset();
        throw pyco::value_error("after the drop");
    };
    holder.emplace(raises(holder));
    std::vector<int> seen;
    try {
        for (int v : *holder) seen.push_back(v);
        ADD_FAILURE() << "no value_error";
    } catch (const pyco::value_error& e) {
        EXPECT_STREQ(e.what(), "after the drop");
    }
    EXPECT_EQ(seen, std::vector<int>{1});
    EXPECT_FALSE(holder.has_value());
}

// Finalised as any dropped generator: a body that ignores the close is
// reported to the unraisable hook; an exception escaping the body still
// reaches the caller.
TEST(GeneratorDestroyedInside, TheCloseAfterwardsReportsToTheUnraisableHook) {
    std::optional<generator<int>> holder;
    auto stubborn = [](std::optional<generator<int>>& h) -> generator<int> {
        h.reset();
        bool closing = false;
        try {
            co_yield 1;
        } catch (const pyco::generator_exit&) {
            closing = true;
        }
        if (closing) co_yield 2;
    };
    unraisable_capture cap;
    holder.emplace(stubborn(holder));
    EXPECT_EQ(holder->next(), 1);
    EXPECT_EQ(cap.reports, trace_t{"pyco::runtime_error: generator ignored GeneratorExit"});

    auto failing = [](std::optional<generator<int>>& h) -> generator<int> {
        h.reset();
        throw pyco::value_error("after the drop");
        co_yield 1;
    };
    holder.emplace(failing(holder));
    EXPECT_THROW(holder->next(), pyco::value_error);
    EXPECT_FALSE(holder.has_value());
}

// throw_() and close() are calls that run the body too.
TEST(GeneratorDestroyedInside, DroppedDuringThrowOrClose) {
    trace_t tr;
    std::optional<generator<int>> holder;
    auto body = [](trace_t& t, std::optional<generator<int>>& h) -> generator<int> {
        bool thrown = false;
        try {
            co_yield 1;
        } catch (const pyco::value_error&) {
            thrown = true;
        } catch (const pyco::generator_exit&) {
            h.reset();
            t.push_back("dropped in close");
            throw;
        }
        if (thrown) {
            h.reset();
            t.push_back("dropped in throw");
            co_yield 2;
        }
    };
    holder.emplace(body(tr, holder));
    holder->next();
    EXPECT_EQ(holder->throw_(pyco::value_error("x")), 2);
    EXPECT_FALSE(holder.has_value());
    holder.emplace(body(tr, holder));
    holder->next();
    holder->close();
    EXPECT_FALSE(holder.has_value());
    EXPECT_EQ(tr, (trace_t{"dropped in throw", "dropped in close"}));
}

}  // namespace
