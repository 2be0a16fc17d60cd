// Python's exception hierarchy as C++ types, and CPython's messages.
#include <pyco/errors.hpp>

#include <gtest/gtest.h>

#include <stdexcept>
#include <type_traits>

namespace {

using namespace pyco;

TEST(Errors, HierarchyMirrorsPython) {
    static_assert(std::is_base_of_v<base_exception, error>);
    static_assert(std::is_base_of_v<std::exception, error>);
    static_assert(std::is_base_of_v<base_exception, generator_exit>);
    static_assert(std::is_base_of_v<base_exception, cancelled_error>);
    // BaseException-only, so that catch (const std::exception&) cannot
    // swallow a close or a cancellation.
    static_assert(!std::is_base_of_v<std::exception, generator_exit>);
    static_assert(!std::is_base_of_v<std::exception, cancelled_error>);
    static_assert(!std::is_base_of_v<error, cancelled_error>);
    static_assert(std::is_base_of_v<error, type_error>);
    static_assert(std::is_base_of_v<error, value_error>);
    static_assert(std::is_base_of_v<error, runtime_error>);
    static_assert(std::is_base_of_v<error, timeout_error>);
    static_assert(std::is_base_of_v<error, invalid_state_error>);
    static_assert(std::is_base_of_v<error, incomplete_read_error>);
    static_assert(std::is_base_of_v<error, limit_overrun_error>);
    static_assert(std::is_base_of_v<error, queue_empty>);
    static_assert(std::is_base_of_v<error, queue_full>);
    static_assert(std::is_base_of_v<error, queue_shut_down>);
    static_assert(std::is_base_of_v<error, exception_group>);
    // BaseExceptionGroup: outside `except Exception`.
    static_assert(std::is_base_of_v<base_exception, base_exception_group>);
    static_assert(!std::is_base_of_v<std::exception, base_exception_group>);
    static_assert(!std::is_base_of_v<error, base_exception_group>);
    SUCCEED();
}

TEST(Errors, WhatIsTheSameThroughEitherBase) {
    try {
        throw value_error("bad value");
    } catch (const std::exception& e) {
        EXPECT_STREQ(e.what(), "bad value");
    }
    try {
        throw value_error("bad value");
    } catch (const base_exception& e) {
        EXPECT_STREQ(e.what(), "bad value");
    }
}

TEST(Errors, CancelledErrorSlipsPastStdExceptionHandlers) {
    bool reached_base = false;
    try {
        try {
            throw cancelled_error("stop");
        } catch (const std::exception&) {
            FAIL() << "std::exception caught a cancellation";
        }
    } catch (const base_exception& e) {
        reached_base = true;
        EXPECT_STREQ(e.what(), "stop");
    }
    EXPECT_TRUE(reached_base);
}

TEST(Errors, IncompleteReadKeepsPartialAndExpected) {
    incomplete_read_error e("abc", 10);
    EXPECT_EQ(e.partial(), "abc");
    EXPECT_EQ(e.expected(), 10u);
    EXPECT_STREQ(e.what(), "3 bytes read on a total of 10 expected bytes");
    incomplete_read_error eof("xy", std::nullopt);
    EXPECT_FALSE(eof.expected().has_value());
    EXPECT_STREQ(eof.what(), "2 bytes read on a total of undefined expected bytes");
}

// str(asyncio.IncompleteReadError(b'ab', None)) in CPython 3.12.
TEST(Errors, IncompleteReadWithoutExpectedSaysUndefined) {
    EXPECT_STREQ(incomplete_read_error("ab", std::nullopt).what(),
                 "2 bytes read on a total of undefined expected bytes");
    EXPECT_STREQ(incomplete_read_error("", std::nullopt).what(),
                 "0 bytes read on a total of undefined expected bytes");
}

TEST(Errors, LimitOverrunKeepsConsumed) {
    limit_overrun_error e("Separator is not found, and chunk exceed the limit", 70000);
    EXPECT_EQ(e.consumed(), 70000u);
    EXPECT_STREQ(e.what(), "Separator is not found, and chunk exceed the limit");
}

TEST(Errors, QueueErrorsSayWhatHappened) {
    EXPECT_STREQ(queue_empty().what(), "queue is empty");
    EXPECT_STREQ(queue_full().what(), "queue is full");
    EXPECT_STREQ(queue_shut_down().what(), "queue is shut down");
}

std::exception_ptr ep(auto e) { return std::make_exception_ptr(e); }

TEST(Errors, ExceptionIsIsIsinstance) {
    EXPECT_TRUE(exception_is<value_error>(ep(value_error("v"))));
    EXPECT_TRUE(exception_is<error>(ep(value_error("v"))));  // a base class
    EXPECT_TRUE(exception_is<std::exception>(ep(value_error("v"))));
    EXPECT_FALSE(exception_is<type_error>(ep(value_error("v"))));
    EXPECT_TRUE(exception_is<base_exception>(ep(cancelled_error())));
    EXPECT_FALSE(exception_is<std::exception>(ep(cancelled_error())));
    EXPECT_FALSE(exception_is<value_error>(std::exception_ptr{}));
    EXPECT_TRUE(exception_is<broken_barrier_error>(ep(broken_barrier_error("b"))));
    EXPECT_TRUE(exception_is<runtime_error>(ep(broken_barrier_error("b"))));
}

TEST(ExceptionGroup, MessageCountsSubExceptions) {
    exception_group one("errors", {ep(value_error("a"))});
    EXPECT_STREQ(one.what(), "errors (1 sub-exception)");
    EXPECT_EQ(one.message(), "errors");
    exception_group two("errors", {ep(value_error("a")), ep(type_error("b"))});
    EXPECT_STREQ(two.what(), "errors (2 sub-exceptions)");
    EXPECT_EQ(two.exceptions().size(), 2u);
}

TEST(ExceptionGroup, EmptyOrNullIsValueError) {
    EXPECT_THROW(exception_group("m", {}), value_error);
    EXPECT_THROW(exception_group("m", {ep(value_error("a")), std::exception_ptr{}}), value_error);
    try {
        exception_group("m", {});
    } catch (const value_error& e) {
        EXPECT_STREQ(e.what(), "second argument (exceptions) must be a non-empty sequence");
    }
}

std::string what_of(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const base_exception& x) {
        return x.what();
    } catch (const std::exception& x) {
        return x.what();
    }
}

TEST(ExceptionGroup, SplitPartitionsLeavesAndKeepsNesting) {
    exception_group inner("inner", {ep(type_error("t2")), ep(value_error("v2"))});
    exception_group g("outer",
                      {ep(value_error("v1")), ep(type_error("t1")), std::make_exception_ptr(inner)});
    auto [match, rest] = g.split<value_error>();
    ASSERT_TRUE(match && rest);
    ASSERT_EQ(match->exceptions().size(), 2u);
    EXPECT_EQ(match->message(), "outer");
    EXPECT_EQ(what_of(match->exceptions()[0]), "v1");
    // The nested group survives as a group holding only its match.
    EXPECT_EQ(what_of(match->exceptions()[1]), "inner (1 sub-exception)");
    ASSERT_EQ(rest->exceptions().size(), 2u);
    EXPECT_EQ(what_of(rest->exceptions()[0]), "t1");
    EXPECT_EQ(what_of(rest->exceptions()[1]), "inner (1 sub-exception)");
}

TEST(ExceptionGroup, SplitWithNoMatchOrAllMatch) {
    exception_group g("g", {ep(value_error("a")), ep(value_error("b"))});
    auto [none, all] = g.split<type_error>();
    EXPECT_FALSE(none);
    ASSERT_TRUE(all);
    EXPECT_EQ(all->exceptions().size(), 2u);
    auto [every, nothing] = g.split<error>();  // a base class matches too
    ASSERT_TRUE(every);
    EXPECT_FALSE(nothing);
}

TEST(ExceptionGroup, SplitOnTheGroupTypeTakesItWhole) {
    exception_group g("g", {ep(value_error("a"))});
    auto [match, rest] = g.split<exception_group>();
    ASSERT_TRUE(match);
    EXPECT_FALSE(rest);
    EXPECT_EQ(match->exceptions().size(), 1u);
}

TEST(ExceptionGroup, SubgroupAndPredicate) {
    exception_group g("g", {ep(value_error("keep")), ep(value_error("drop"))});
    auto sub = g.subgroup_if([](const std::exception_ptr& e) { return what_of(e) == "keep"; });
    ASSERT_TRUE(sub);
    ASSERT_EQ(sub->exceptions().size(), 1u);
    EXPECT_EQ(what_of(sub->exceptions()[0]), "keep");
    EXPECT_FALSE(g.subgroup<type_error>());
}

TEST(ExceptionGroup, MatchesAnyExceptionType) {
    exception_group g("g", {ep(std::out_of_range("oor")), ep(value_error("v"))});
    auto [std_errs, rest] = g.split<std::logic_error>();
    ASSERT_TRUE(std_errs && rest);
    EXPECT_TRUE(exception_group::matches<value_error>(rest->exceptions()[0]));
}

// ---- BaseExceptionGroup ----------------------------------------------------

struct my_base_exc : base_exception {
    my_base_exc() : base_exception("MyBaseExc") {}
};

// ExceptionGroup("m", [KeyboardInterrupt()]) is a TypeError in CPython.
TEST(BaseExceptionGroup, AnExceptionGroupRefusesABaseException) {
    try {
        exception_group("m", {ep(value_error("v")), ep(keyboard_interrupt())});
        ADD_FAILURE() << "accepted";
    } catch (const type_error& e) {
        EXPECT_STREQ(e.what(), "Cannot nest BaseExceptions in an ExceptionGroup");
    }
    EXPECT_THROW(exception_group("m", {ep(cancelled_error())}), type_error);
    EXPECT_THROW(exception_group("m", {std::make_exception_ptr(42)}), type_error);
    base_exception_group inner("inner", {ep(my_base_exc())});
    EXPECT_THROW(exception_group("m", {std::make_exception_ptr(inner)}), type_error);
}

// BaseExceptionGroup(msg, excs) is an ExceptionGroup when it can be.
TEST(BaseExceptionGroup, MakeExceptionGroupChoosesTheKindAsCPythonDoes) {
    std::exception_ptr all_errors =
        make_exception_group("m", {ep(value_error("v")), ep(std::out_of_range("oor"))});
    EXPECT_TRUE(exception_is<exception_group>(all_errors));
    for (std::exception_ptr odd : {ep(keyboard_interrupt()), ep(cancelled_error()), ep(generator_exit()),
                                   ep(my_base_exc()), std::make_exception_ptr(42)}) {
        std::exception_ptr g = make_exception_group("m", {ep(value_error("v")), odd});
        EXPECT_TRUE(exception_is<base_exception_group>(g));
        EXPECT_FALSE(exception_is<std::exception>(g));  // except Exception misses it
        EXPECT_TRUE(exception_is<base_exception>(g));
        EXPECT_EQ(what_of(g), "m (2 sub-exceptions)");
    }
    EXPECT_THROW(make_exception_group("m", {}), value_error);
}

// CPython 3.12:
//   g = BaseExceptionGroup("m", [KeyboardInterrupt(), ValueError("v"),
//                                ExceptionGroup("n", [TypeError()])])
//   g.split(ValueError)  -> (ExceptionGroup('m', [ValueError('v')]),
//       BaseExceptionGroup('m', [KeyboardInterrupt(), ExceptionGroup('n', [TypeError()])]))
//   g.split(Exception)   -> (ExceptionGroup('m', [ValueError('v'), ExceptionGroup('n', [TypeError()])]),
//                            BaseExceptionGroup('m', [KeyboardInterrupt()]))
TEST(BaseExceptionGroup, SplitWorksAsOnAnExceptionGroup) {
    exception_group n("n", {ep(type_error("t"))});
    base_exception_group g("m", {ep(keyboard_interrupt()), ep(value_error("v")), std::make_exception_ptr(n)});
    EXPECT_STREQ(g.what(), "m (3 sub-exceptions)");
    EXPECT_EQ(g.message(), "m");

    auto [values, rest] = g.split<value_error>();
    ASSERT_TRUE(values && rest);
    ASSERT_EQ(values->exceptions().size(), 1u);
    EXPECT_EQ(what_of(values->exceptions()[0]), "v");
    EXPECT_THROW(values->raise(), exception_group);  // all Exceptions: an ExceptionGroup
    ASSERT_EQ(rest->exceptions().size(), 2u);
    EXPECT_TRUE(exception_is<keyboard_interrupt>(rest->exceptions()[0]));
    EXPECT_TRUE(exception_is<exception_group>(rest->exceptions()[1]));  // n, which has no value_error
    EXPECT_THROW(rest->raise(), base_exception_group);

    auto [exceptions, others] = g.split<std::exception>();
    ASSERT_TRUE(exceptions && others);
    EXPECT_EQ(exceptions->exceptions().size(), 2u);  // v, and the nested group whole
    ASSERT_EQ(others->exceptions().size(), 1u);
    EXPECT_TRUE(exception_is<keyboard_interrupt>(others->exceptions()[0]));

    // A group that is itself an E is taken whole.
    auto [whole, none] = g.split<base_exception_group>();
    EXPECT_TRUE(whole && !none);
    EXPECT_TRUE(g.subgroup<keyboard_interrupt>());
    EXPECT_FALSE(g.subgroup<queue_empty>());
}

// CPython 3.12:
//   BaseExceptionGroup("m", [ValueError("v"),
//       BaseExceptionGroup("n", [KeyboardInterrupt(), TypeError()])]).split(KeyboardInterrupt)
//   -> (BaseExceptionGroup('m', [BaseExceptionGroup('n', [KeyboardInterrupt()])]),
//       ExceptionGroup('m', [ValueError('v'), ExceptionGroup('n', [TypeError()])]))
TEST(BaseExceptionGroup, NestedPartsAreOfTheKindTheirMembersMake) {
    base_exception_group n("n", {ep(keyboard_interrupt()), ep(type_error("t"))});
    base_exception_group g("m", {ep(value_error("v")), std::make_exception_ptr(n)});
    auto [interrupts, rest] = g.split<keyboard_interrupt>();
    ASSERT_TRUE(interrupts && rest);
    ASSERT_EQ(interrupts->exceptions().size(), 1u);
    EXPECT_TRUE(exception_is<base_exception_group>(interrupts->exceptions()[0]));
    ASSERT_EQ(rest->exceptions().size(), 2u);
    EXPECT_TRUE(exception_is<exception_group>(rest->exceptions()[1]));  // upgraded
    EXPECT_EQ(what_of(rest->exceptions()[1]), "n (1 sub-exception)");
    EXPECT_THROW(rest->raise(), exception_group);
}

}  // namespace
