// async with (PEP 492): pyco::async_with — the order of aenter, body and
// aexit, what aexit's answer does to an exception, and what the statement
// gives back. (CPython tests `async with` in test_coroutines.py, test_with_*;
// the Python-only cases — __aenter__ looked up on the type, non-awaitable
// results raising TypeError — are compile errors here, not tests.)
#include <pyco/async_with.hpp>

#include <gtest/gtest.h>

#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <pyco/run.hpp>
#include <pyco/sleep.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using trace_t = std::vector<std::string>;

std::string what_of(const std::exception_ptr& e) {
    if (!e) return "none";
    try {
        std::rethrow_exception(e);
    } catch (const pyco::base_exception& x) {
        return x.what();
    } catch (...) {
        return "?";
    }
}

// A manager whose aenter/aexit are coroutines that really suspend, and
// whose aexit answer (suppress or not) is chosen by the test.
struct traced_cm {
    trace_t& tr;
    bool suppress = false;
    coroutine<int> aenter() {
        tr.push_back("enter");
        co_await pyco::sleep(0s);
        co_return 7;
    }
    coroutine<bool> aexit(std::exception_ptr e) {
        tr.push_back("exit " + what_of(e));
        co_await pyco::sleep(0s);
        co_return suppress;
    }
};

// test_coroutines.py: test_with_1 (order, the value `as` binds)
TEST(AsyncWith, EnterThenBodyWithItsValueThenExit) {
    trace_t tr;
    auto main = [&]() -> coroutine<void> {
        traced_cm cm{tr};
        auto body = [&](int x) -> coroutine<void> {
            tr.push_back("body " + std::to_string(x));
            co_await pyco::sleep(0s);
        };
        co_await pyco::async_with(cm, body);
        tr.push_back("after");
    };
    pyco::run(main());
    EXPECT_EQ(tr, (trace_t{"enter", "body 7", "exit none", "after"}));
}

// test_coroutines.py: test_with_1 (manager B's true __aexit__ swallows 1/0)
TEST(AsyncWith, ATrueAexitSuppressesTheBodysException) {
    trace_t tr;
    auto main = [&]() -> coroutine<std::string> {
        traced_cm cm{tr, true};
        auto body = [&](int) -> coroutine<int> {
            co_await pyco::sleep(0s);
            throw pyco::value_error("boom");
        };
        std::optional<int> r = co_await pyco::async_with(cm, body);
        co_return r ? "value" : "empty";
    };
    EXPECT_EQ(pyco::run(main()), "empty");
    EXPECT_EQ(tr, (trace_t{"enter", "exit boom"}));
}

// test_coroutines.py: test_with_1 (manager C's None lets 1/0 through)
TEST(AsyncWith, AFalseAexitLetsTheExceptionThrough) {
    trace_t tr;
    auto main = [&]() -> coroutine<std::string> {
        traced_cm cm{tr, false};
        auto body = [&](int) -> coroutine<void> {
            throw pyco::value_error("boom");
            co_return;
        };
        try {
            co_await pyco::async_with(cm, body);
        } catch (const pyco::value_error& e) {
            co_return e.what();
        }
        co_return "no";
    };
    EXPECT_EQ(pyco::run(main()), "boom");
    EXPECT_EQ(tr, (trace_t{"enter", "exit boom"}));
}

// A void aexit answers None: it never suppresses.
struct void_exit_cm {
    trace_t& tr;
    int aenter() { return 1; }
    void aexit(std::exception_ptr e) { tr.push_back("exit " + what_of(e)); }
};

TEST(AsyncWith, AVoidAexitNeverSuppresses) {
    trace_t tr;
    auto main = [&]() -> coroutine<bool> {
        void_exit_cm cm{tr};
        auto body = [&](int) -> coroutine<void> {
            throw pyco::runtime_error("plain");
            co_return;
        };
        try {
            co_await pyco::async_with(cm, body);
        } catch (const pyco::runtime_error&) {
            co_return true;
        }
        co_return false;
    };
    EXPECT_TRUE(pyco::run(main()));
    EXPECT_EQ(tr, (trace_t{"exit plain"}));
}

// Cancellation passes through aexit like any exception.
TEST(AsyncWith, AexitSeesACancellationOfTheBody) {
    trace_t tr;
    auto main = [&]() -> coroutine<void> {
        traced_cm cm{tr, false};
        auto body = [&](int) -> coroutine<void> { co_await pyco::sleep(1h); };
        auto inner = [&]() -> coroutine<void> { co_await pyco::async_with(cm, body); };
        auto t = pyco::create_task(inner());
        co_await pyco::sleep(1ms);
        t.cancel("stop");
        EXPECT_THROW(co_await t, pyco::cancelled_error);
    };
    pyco::run(main(), {.virtual_time = true});
    EXPECT_EQ(tr, (trace_t{"enter", "exit stop"}));
}

// PEP 492: __aenter__ raising skips the body and __aexit__.
struct failing_enter_cm {
    trace_t& tr;
    coroutine<int> aenter() {
        tr.push_back("enter");
        throw pyco::type_error("no entry");
        co_return 0;
    }
    bool aexit(std::exception_ptr) {
        tr.push_back("exit");
        return true;
    }
};

TEST(AsyncWith, AFailingAenterSkipsBodyAndAexit) {
    trace_t tr;
    auto main = [&]() -> coroutine<std::string> {
        failing_enter_cm cm{tr};
        auto body = [&](int) -> coroutine<void> {
            tr.push_back("body");
            co_return;
        };
        try {
            co_await pyco::async_with(cm, body);
        } catch (const pyco::type_error& e) {
            co_return e.what();
        }
        co_return "no";
    };
    EXPECT_EQ(pyco::run(main()), "no entry");
    EXPECT_EQ(tr, trace_t{"enter"});
}

// An exception from aexit replaces the body's (as from any __aexit__).
struct raising_exit_cm {
    int aenter() { return 0; }
    coroutine<bool> aexit(std::exception_ptr) {
        co_await pyco::sleep(0s);
        throw pyco::value_error("from aexit");
    }
};

TEST(AsyncWith, AnExceptionFromAexitReplacesTheBodys) {
    auto main = []() -> coroutine<std::string> {
        raising_exit_cm cm;
        auto body = [](int) -> coroutine<void> {
            throw pyco::type_error("from body");
            co_return;
        };
        try {
            co_await pyco::async_with(cm, body);
        } catch (const pyco::value_error& e) {
            co_return e.what();
        } catch (const pyco::type_error& e) {
            co_return e.what();
        }
        co_return "no";
    };
    EXPECT_EQ(pyco::run(main()), "from aexit");
}

TEST(AsyncWith, TheBodysValueComesBackInAnOptional) {
    auto main = []() -> coroutine<int> {
        trace_t tr;
        traced_cm cm{tr};
        auto coro_body = [](int x) -> coroutine<int> {
            co_await pyco::sleep(0s);
            co_return x * 6;
        };
        std::optional<int> a = co_await pyco::async_with(cm, coro_body);
        // A plain (non-coroutine) body works too.
        traced_cm cm2{tr};
        auto plain_body = [](int x) { return x + 1; };
        std::optional<int> b = co_await pyco::async_with(cm2, plain_body);
        EXPECT_EQ(tr, (trace_t{"enter", "exit none", "enter", "exit none"}));
        co_return a.value() + b.value();
    };
    EXPECT_EQ(pyco::run(main()), 42 + 8);
}

// `async with cm:` without `as`: a void aenter, a body taking nothing.
struct void_enter_cm {
    trace_t& tr;
    coroutine<void> aenter() {
        tr.push_back("enter");
        co_await pyco::sleep(0s);
    }
    coroutine<void> aexit(std::exception_ptr e) {
        tr.push_back("exit " + what_of(e));
        co_return;
    }
};

TEST(AsyncWith, AVoidAenterCallsTheBodyWithNoArgument) {
    trace_t tr;
    auto main = [&]() -> coroutine<void> {
        void_enter_cm cm{tr};
        auto body = [&]() -> coroutine<void> {
            tr.push_back("body");
            co_return;
        };
        co_await pyco::async_with(cm, body);
    };
    pyco::run(main());
    EXPECT_EQ(tr, (trace_t{"enter", "body", "exit none"}));
}

// aenter returning a std::reference_wrapper (what pyco::timeout and
// pyco::task_group do): the body takes a plain reference to the manager.
struct self_cm {
    int uses = 0;
    std::reference_wrapper<self_cm> aenter() { return *this; }
    void aexit(std::exception_ptr) {}
};

TEST(AsyncWith, AReferenceWrapperFromAenterReachesTheBodyAsAReference) {
    auto main = []() -> coroutine<int> {
        self_cm cm;
        auto body = [](self_cm& m) -> coroutine<void> {
            ++m.uses;
            co_return;
        };
        co_await pyco::async_with(cm, body);
        co_return cm.uses;
    };
    EXPECT_EQ(pyco::run(main()), 1);
}

}  // namespace

// A void plain body, a void plain aenter, and an aenter giving a reference.
namespace {


// "body's result is awaited if it is awaitable": a plain body returning
// void is not awaitable, and must simply be called.
struct plain_cm {
    trace_t& tr;
    int aenter() { return 1; }
    void aexit(std::exception_ptr e) { tr.push_back(e ? "exit error" : "exit"); }
};

TEST(AsyncWithFix, APlainVoidBodyIsCalled) {
    trace_t tr;
    auto main = [&]() -> coroutine<void> {
        plain_cm cm{tr};
        auto body = [&](int x) { tr.push_back("body " + std::to_string(x)); };
        co_await pyco::async_with(cm, body);
    };
    pyco::run(main());
    EXPECT_EQ(tr, (trace_t{"body 1", "exit"}));
}

// `async with cm:` with a synchronous aenter returning void.
struct plain_void_enter_cm {
    trace_t& tr;
    void aenter() { tr.push_back("enter"); }
    void aexit(std::exception_ptr) { tr.push_back("exit"); }
};

TEST(AsyncWithFix, APlainVoidAenterIsCalled) {
    trace_t tr;
    auto main = [&]() -> coroutine<void> {
        plain_void_enter_cm cm{tr};
        auto body = [&]() -> coroutine<void> {
            tr.push_back("body");
            co_return;
        };
        co_await pyco::async_with(cm, body);
    };
    pyco::run(main());
    EXPECT_EQ(tr, (trace_t{"enter", "body", "exit"}));
}

// `return self` from __aenter__: detail::value_slot<T&> exists for this, but
// await_or_value makes a coroutine<T&>, whose std::optional<T&> is ill-formed.
struct ref_self_cm {
    int uses = 0;
    ref_self_cm& aenter() { return *this; }
    void aexit(std::exception_ptr) {}
};

TEST(AsyncWithFix, AReferenceFromAenterReachesTheBody) {
    auto main = []() -> coroutine<bool> {
        ref_self_cm cm;
        ref_self_cm* seen = nullptr;
        auto body = [&](ref_self_cm& m) -> coroutine<void> {
            seen = &m;
            ++m.uses;
            co_return;
        };
        co_await pyco::async_with(cm, body);
        co_return seen == &cm && cm.uses == 1;
    };
    EXPECT_TRUE(pyco::run(main()));
}

// A body written inline is fine when it captures by reference only: its
// closure has nothing to destroy, which is all GCC 12 gets wrong.
TEST(AsyncWith, AReferenceCapturingBodyMayBeWrittenInline) {
    trace_t tr;
    auto main = [&]() -> coroutine<void> {
        traced_cm cm{tr};
        co_await pyco::async_with(cm, [&](int x) -> coroutine<void> {
            tr.push_back("body " + std::to_string(x));
            co_return;
        });
    };
    pyco::run(main());
    EXPECT_EQ(tr, (trace_t{"enter", "body 7", "exit none"}));
}

// What async_with (and condition::wait_for) refuse on GCC 12: an rvalue
// closure with a destructor — the one GCC destroys twice when it is made in
// the co_await expression. tests/compile_fail checks the refusal itself.
TEST(AsyncWith, TheGcc12RefusalIsForValueCapturingTemporariesOnly) {
    std::string s = "x";
    auto by_value = [s] { return s.size(); };
    auto by_ref = [&s] { return s.size(); };
    using value_closure = decltype(by_value);
    using ref_closure = decltype(by_ref);
    using fn = std::function<std::size_t()>;
    constexpr bool gcc12 =
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ <= 12
        true;
#else
        false;
#endif
    EXPECT_EQ(pyco::detail::gcc12_destroys_twice_v<value_closure>, gcc12);  // rvalue
    EXPECT_FALSE(pyco::detail::gcc12_destroys_twice_v<value_closure&>);     // named
    EXPECT_FALSE(pyco::detail::gcc12_destroys_twice_v<ref_closure>);        // nothing to destroy
    EXPECT_FALSE(pyco::detail::gcc12_destroys_twice_v<fn>);                 // has a constructor
}

}  // namespace
