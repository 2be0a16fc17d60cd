// pyco::timeout / timeout_at: a port of CPython 3.12's
// Lib/test/test_asyncio/test_timeouts.py. Every case runs on virtual time.
// Left out: test_nested_timeouts_concurrent and
// test_nested_timeouts_loop_busy block the loop with time.sleep(), which
// virtual time cannot express (BothExpiringInOneIterationOnlyTheOuterRaises
// below makes the same two timers fire in one iteration instead);
// test_timeout_exception_context and friends check __context__, which C++
// exceptions do not have.
#include <pyco/timeout.hpp>

#include <gtest/gtest.h>

#include <exception>
#include <optional>
#include <string>
#include <vector>

#include <pyco/async_with.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using pyco::timeout;

pyco::loop_options vt{.virtual_time = true};

pyco::event_loop::time_point now() { return pyco::get_running_loop().time(); }

// test_timeout_basic
TEST(Timeout, ExpiryRaisesTimeoutError) {
    auto main = []() -> coroutine<bool> {
        timeout cm(10ms);
        auto body = [](timeout&) -> coroutine<void> { co_await pyco::sleep(10s); };
        EXPECT_THROW(co_await pyco::async_with(cm, body), pyco::timeout_error);
        co_return cm.expired();
    };
    EXPECT_TRUE(pyco::run(main(), vt));
}

// test_timeout_at_basic
TEST(Timeout, TimeoutAtExpiresAtItsDeadline) {
    auto main = []() -> coroutine<void> {
        const auto deadline = now() + 10ms;
        timeout cm = pyco::timeout_at(deadline);
        auto body = [](timeout&) -> coroutine<void> { co_await pyco::sleep(10s); };
        EXPECT_THROW(co_await pyco::async_with(cm, body), pyco::timeout_error);
        EXPECT_TRUE(cm.expired());
        EXPECT_EQ(cm.when(), deadline);
        EXPECT_EQ(now(), deadline);  // not a moment later
    };
    pyco::run(main(), vt);
}

// test_nested_timeouts: same deadline; only the outer one raises
// timeout_error, the inner one lets the cancellation through.
TEST(Timeout, NestedWithTheSameDeadlineOnlyTheOuterRaises) {
    auto main = []() -> coroutine<void> {
        const auto deadline = now() + 10ms;
        timeout cm1 = pyco::timeout_at(deadline);
        timeout cm2 = pyco::timeout_at(deadline);
        bool cancelled = false;
        auto inner = [](timeout&) -> coroutine<void> { co_await pyco::sleep(10s); };
        auto outer = [&](timeout&) -> coroutine<void> {
            std::exception_ptr e;
            try {
                co_await pyco::async_with(cm2, inner);
            } catch (const pyco::cancelled_error&) {
                cancelled = true;
                e = std::current_exception();
            }
            if (e) std::rethrow_exception(e);
        };
        EXPECT_THROW(co_await pyco::async_with(cm1, outer), pyco::timeout_error);
        EXPECT_TRUE(cancelled);
        EXPECT_TRUE(cm1.expired());
        EXPECT_TRUE(cm2.expired());
        EXPECT_EQ(pyco::current_task().cancelling(), 0);
    };
    pyco::run(main(), vt);
}

// test_waiter_cancelled: the body sees cancelled_error first.
TEST(Timeout, TheBodySeesCancelledErrorThenTheCallerTimeoutError) {
    auto main = []() -> coroutine<bool> {
        bool cancelled = false;
        timeout cm(10ms);
        auto body = [&](timeout&) -> coroutine<void> {
            try {
                co_await pyco::sleep(10s);
            } catch (const pyco::cancelled_error&) {
                cancelled = true;
                throw;
            }
        };
        EXPECT_THROW(co_await pyco::async_with(cm, body), pyco::timeout_error);
        co_return cancelled;
    };
    EXPECT_TRUE(pyco::run(main(), vt));
}

// test_timeout_not_called
TEST(Timeout, AFastBodyDoesNotExpire) {
    auto main = []() -> coroutine<void> {
        timeout cm(10s);
        auto body = [](timeout&) -> coroutine<int> {
            co_await pyco::sleep(10ms);
            co_return 5;
        };
        std::optional<int> r = co_await pyco::async_with(cm, body);
        EXPECT_EQ(r, 5);
        EXPECT_FALSE(cm.expired());
        EXPECT_GT(cm.when().value(), now());
    };
    pyco::run(main(), vt);
}

// test_timeout_disabled, test_timeout_at_disabled
TEST(Timeout, NulloptNeverExpires) {
    auto main = []() -> coroutine<void> {
        timeout a(std::nullopt);
        timeout b = pyco::timeout_at(std::nullopt);
        auto body = [](timeout&) -> coroutine<void> { co_await pyco::sleep(1h); };
        co_await pyco::async_with(a, body);
        co_await pyco::async_with(b, body);
        EXPECT_FALSE(a.expired());
        EXPECT_FALSE(b.expired());
        EXPECT_EQ(a.when(), std::nullopt);
        EXPECT_EQ(b.when(), std::nullopt);
    };
    pyco::run(main(), vt);
}

// test_timeout_zero, test_timeout_zero_sleep_zero,
// test_timeout_in_the_past_sleep_zero: a deadline already reached expires
// at the next co_await, even a sleep(0).
TEST(Timeout, ADeadlineNotInTheFutureExpiresAtTheNextAwait) {
    auto main = []() -> coroutine<void> {
        for (auto d : {0ms, -11000ms}) {
            for (auto nap : {10s, 0s}) {
                const auto t0 = now();
                timeout cm(d);
                bool reached_await = false;
                auto body = [&](timeout&) -> coroutine<void> {
                    reached_await = true;  // nothing happens before the await
                    co_await pyco::sleep(nap);
                };
                EXPECT_THROW(co_await pyco::async_with(cm, body), pyco::timeout_error);
                EXPECT_TRUE(reached_await);
                EXPECT_TRUE(cm.expired());
                EXPECT_EQ(cm.when(), t0 + d);
                EXPECT_EQ(now(), t0);  // no time passed
            }
        }
    };
    pyco::run(main(), vt);
}

// test_foreign_exception_passed
TEST(Timeout, AnotherExceptionPassesThroughUnexpired) {
    auto main = []() -> coroutine<void> {
        timeout cm(10ms);
        auto body = [](timeout&) -> coroutine<void> {
            throw pyco::value_error("key");
            co_return;
        };
        EXPECT_THROW(co_await pyco::async_with(cm, body), pyco::value_error);
        EXPECT_FALSE(cm.expired());
    };
    pyco::run(main(), vt);
}

// test_foreign_exception_on_timeout: an error raised while handling the
// expiry wins over timeout_error; the timeout still uncancels the task.
TEST(Timeout, AnErrorRaisedWhileHandlingTheExpiryWins) {
    auto main = []() -> coroutine<void> {
        auto crash = []() -> coroutine<void> {
            try {
                co_await pyco::sleep(1s);
            } catch (const pyco::cancelled_error&) {
            }
            throw pyco::value_error("1/0");  // `finally: 1/0`
        };
        timeout cm(10ms);
        auto body = [&](timeout&) -> coroutine<void> { co_await crash(); };
        EXPECT_THROW(co_await pyco::async_with(cm, body), pyco::value_error);
        EXPECT_TRUE(cm.expired());
        EXPECT_EQ(pyco::current_task().cancelling(), 0);
    };
    pyco::run(main(), vt);
}

// (no CPython test) A body that swallows the expiry and returns normally:
// no timeout_error, but the cancel count is restored.
TEST(Timeout, ASwallowedExpiryRaisesNothingAndLeavesNoCancelPending) {
    auto main = []() -> coroutine<void> {
        timeout cm(10ms);
        auto body = [](timeout&) -> coroutine<int> {
            try {
                co_await pyco::sleep(1s);
            } catch (const pyco::cancelled_error&) {
                co_return 1;
            }
            co_return 0;
        };
        std::optional<int> r = co_await pyco::async_with(cm, body);
        EXPECT_EQ(r, 1);
        EXPECT_TRUE(cm.expired());
        EXPECT_EQ(pyco::current_task().cancelling(), 0);
        co_await pyco::sleep(1ms);  // not cancelled
    };
    pyco::run(main(), vt);
}

// test_foreign_cancel_doesnt_timeout_if_not_expired
TEST(Timeout, AForeignCancelIsNotTurnedIntoTimeoutError) {
    auto main = []() -> coroutine<void> {
        timeout cm(10s);
        auto body = [](timeout&) -> coroutine<void> {
            pyco::current_task().cancel();
            co_await pyco::sleep(10s);
        };
        EXPECT_THROW(co_await pyco::async_with(cm, body), pyco::cancelled_error);
        EXPECT_FALSE(cm.expired());
    };
    pyco::run(main(), vt);
}

// (CPython's rule, no test of its own) A foreign cancel arriving together
// with the expiry: uncancel() leaves a cancellation pending, so the
// cancelled_error is not ours and is not converted.
TEST(Timeout, AForeignCancelArrivingWithTheExpiryIsNotSwallowed) {
    auto main = []() -> coroutine<void> {
        timeout cm = pyco::timeout_at(now());  // fires before the task's next step
        auto body = [](timeout&) -> coroutine<void> {
            pyco::current_task().cancel();
            co_await pyco::sleep(0s);
        };
        EXPECT_THROW(co_await pyco::async_with(cm, body), pyco::cancelled_error);
        EXPECT_TRUE(cm.expired());
        EXPECT_EQ(pyco::current_task().cancelling(), 1);  // the foreign one
    };
    auto outer = [&]() -> coroutine<void> {
        auto t = pyco::create_task(main());
        co_await pyco::sleep(0s);
        try {
            co_await t;
        } catch (const pyco::cancelled_error&) {
        }
        EXPECT_FALSE(t.cancelled());  // main() caught it and returned
    };
    pyco::run(outer(), vt);
}

// test_outer_task_is_not_cancelled
TEST(Timeout, TheTaskItExpiredInIsNotCancelled) {
    auto main = []() -> coroutine<void> {
        auto outer = []() -> coroutine<void> {
            timeout cm(1ms);
            auto body = [](timeout&) -> coroutine<void> { co_await pyco::sleep(10s); };
            EXPECT_THROW(co_await pyco::async_with(cm, body), pyco::timeout_error);
        };
        auto t = pyco::create_task(outer());
        co_await t;
        EXPECT_FALSE(t.cancelled());
        EXPECT_TRUE(t.done());
    };
    pyco::run(main(), vt);
}

// test_nested_timeouts_concurrent: the outer expires first; the inner one
// (not expired) passes the cancellation on, the outer one converts it.
TEST(Timeout, AnOuterExpiryPassesThroughAnUnexpiredInner) {
    auto main = []() -> coroutine<void> {
        timeout outer_cm(2ms);
        timeout inner_cm(100ms);
        bool inner_saw_cancel = false;
        auto inner = [](timeout&) -> coroutine<void> { co_await pyco::sleep(1s); };
        auto outer = [&](timeout&) -> coroutine<void> {
            std::exception_ptr e;
            try {
                co_await pyco::async_with(inner_cm, inner);
            } catch (const pyco::cancelled_error&) {
                inner_saw_cancel = true;
                e = std::current_exception();
            }
            if (e) std::rethrow_exception(e);
        };
        EXPECT_THROW(co_await pyco::async_with(outer_cm, outer), pyco::timeout_error);
        EXPECT_TRUE(inner_saw_cancel);
        EXPECT_TRUE(outer_cm.expired());
        EXPECT_FALSE(inner_cm.expired());
    };
    pyco::run(main(), vt);
}

// test_nested_timeouts_loop_busy, with both timers firing in one loop
// iteration (there by blocking the loop, here by deadlines already past):
// the inner expiry is not the only cancel pending, so only the outer
// timeout raises timeout_error.
TEST(Timeout, BothExpiringInOneIterationOnlyTheOuterRaises) {
    auto main = []() -> coroutine<void> {
        timeout outer_cm = pyco::timeout_at(now());
        timeout inner_cm = pyco::timeout_at(now());
        bool inner_saw_cancel = false;
        auto inner = [](timeout&) -> coroutine<void> { co_await pyco::sleep(1s); };
        auto outer = [&](timeout&) -> coroutine<void> {
            std::exception_ptr e;
            try {
                co_await pyco::async_with(inner_cm, inner);
            } catch (const pyco::cancelled_error&) {
                inner_saw_cancel = true;
                e = std::current_exception();
            }
            if (e) std::rethrow_exception(e);
        };
        EXPECT_THROW(co_await pyco::async_with(outer_cm, outer), pyco::timeout_error);
        EXPECT_TRUE(inner_saw_cancel);
        EXPECT_TRUE(inner_cm.expired());
        EXPECT_TRUE(outer_cm.expired());
        EXPECT_EQ(pyco::current_task().cancelling(), 0);
    };
    pyco::run(main(), vt);
}

// test_reschedule: another task moves the deadline, then disables it.
TEST(Timeout, RescheduleFromAnotherTask) {
    auto main = []() -> coroutine<void> {
        auto fut = pyco::get_running_loop().create_future<timeout*>();
        const auto deadline1 = now() + 10s;
        const auto deadline2 = deadline1 + 20s;
        auto f = [](pyco::future<timeout*> ready, pyco::event_loop::time_point d) -> coroutine<void> {
            timeout cm = pyco::timeout_at(d);
            auto body = [&](timeout& t) -> coroutine<void> {
                ready.set_result(&t);
                co_await pyco::sleep(50s);
            };
            co_await pyco::async_with(cm, body);
        };
        auto task = pyco::create_task(f(fut, deadline1));
        timeout* cm = co_await fut;
        EXPECT_EQ(cm->when(), deadline1);
        cm->reschedule(deadline2);
        EXPECT_EQ(cm->when(), deadline2);
        cm->reschedule(std::nullopt);
        EXPECT_EQ(cm->when(), std::nullopt);
        co_await pyco::sleep(40s);  // past both deadlines: nothing fires
        EXPECT_FALSE(cm->expired());
        EXPECT_FALSE(task.done());
        task.cancel();
        EXPECT_FALSE(cm->expired());
        EXPECT_THROW(co_await task, pyco::cancelled_error);
    };
    pyco::run(main(), vt);
}

// (reschedule's documented behaviour) Moving the deadline later lets the
// body finish; moving it to now expires at the next co_await.
TEST(Timeout, RescheduleExtendsOrShortens) {
    auto main = []() -> coroutine<void> {
        timeout a(10ms);
        auto extend = [](timeout& t) -> coroutine<void> {
            t.reschedule(now() + 1h);
            co_await pyco::sleep(20ms);
        };
        co_await pyco::async_with(a, extend);
        EXPECT_FALSE(a.expired());

        timeout b(1h);
        const auto t0 = now();
        auto shorten = [](timeout& t) -> coroutine<void> {
            t.reschedule(now());
            co_await pyco::sleep(0s);
        };
        EXPECT_THROW(co_await pyco::async_with(b, shorten), pyco::timeout_error);
        EXPECT_TRUE(b.expired());
        EXPECT_EQ(now(), t0);
    };
    pyco::run(main(), vt);
}

// test_repr_active, test_repr_expired, test_repr_finished, test_repr_disabled
TEST(Timeout, DescribeShowsStateAndDeadline) {
    auto main = []() -> coroutine<void> {
        timeout active(10s);
        auto check_active = [](timeout& t) -> coroutine<void> {
            const std::string s = t.describe();
            EXPECT_EQ(s.rfind("<Timeout [active] when=", 0), 0u) << s;
            EXPECT_NE(s.find('.'), std::string::npos) << s;
            co_return;
        };
        co_await pyco::async_with(active, check_active);
        EXPECT_EQ(active.describe(), "<Timeout [finished]>");

        timeout expired(10ms);
        auto nap = [](timeout&) -> coroutine<void> { co_await pyco::sleep(10s); };
        EXPECT_THROW(co_await pyco::async_with(expired, nap), pyco::timeout_error);
        EXPECT_EQ(expired.describe(), "<Timeout [expired]>");

        timeout disabled(std::nullopt);
        EXPECT_EQ(disabled.describe(), "<Timeout [created]>");
        auto check_disabled = [](timeout& t) -> coroutine<void> {
            EXPECT_EQ(t.describe(), "<Timeout [active] when=None>");
            co_return;
        };
        co_await pyco::async_with(disabled, check_disabled);
    };
    pyco::run(main(), vt);
}

// test_nested_timeout_in_finally: a fresh timeout in the cleanup of an
// expired one works, and both raise timeout_error.
TEST(Timeout, ANestedTimeoutInCleanupOfAnExpiredOne) {
    auto main = []() -> coroutine<void> {
        timeout outer_cm(10ms);
        timeout inner_cm(10ms);
        auto inner = [](timeout&) -> coroutine<void> { co_await pyco::sleep(10s); };
        auto outer = [&](timeout&) -> coroutine<void> {
            std::exception_ptr e;
            try {
                co_await pyco::sleep(1s);
            } catch (...) {
                e = std::current_exception();
            }
            // finally:
            EXPECT_THROW(co_await pyco::async_with(inner_cm, inner), pyco::timeout_error);
            if (e) std::rethrow_exception(e);
        };
        EXPECT_THROW(co_await pyco::async_with(outer_cm, outer), pyco::timeout_error);
        EXPECT_EQ(pyco::current_task().cancelling(), 0);
    };
    pyco::run(main(), vt);
}

// test_timeout_after_cancellation: a task still counted as cancelling
// (it caught the cancel without uncancel) can use a timeout.
TEST(Timeout, WorksAfterACaughtCancellation) {
    auto main = []() -> coroutine<void> {
        try {
            pyco::current_task().cancel();
            co_await pyco::sleep(1s);
        } catch (const pyco::cancelled_error&) {
        }
        EXPECT_EQ(pyco::current_task().cancelling(), 1);
        timeout cm(0s);
        auto cleanup = [](timeout&) -> coroutine<void> { co_await pyco::sleep(1s); };
        EXPECT_THROW(co_await pyco::async_with(cm, cleanup), pyco::timeout_error);
        EXPECT_EQ(pyco::current_task().cancelling(), 1);
    };
    pyco::run(main(), vt);
}

// test_cancel_in_timeout_after_cancellation
TEST(Timeout, ACancelInsideAfterACaughtCancellationStaysACancel) {
    auto main = []() -> coroutine<void> {
        try {
            pyco::current_task().cancel();
            co_await pyco::sleep(1s);
        } catch (const pyco::cancelled_error&) {
        }
        timeout cm(1s);
        auto cleanup = [](timeout&) -> coroutine<void> {
            pyco::current_task().cancel();
            co_await pyco::sleep(2s);
        };
        EXPECT_THROW(co_await pyco::async_with(cm, cleanup), pyco::cancelled_error);
        EXPECT_FALSE(cm.expired());
    };
    pyco::run(main(), vt);
}

// test_timeout_exception_cause: `raise TimeoutError from exc_val` — the
// cancelled_error is nested in the timeout_error.
TEST(Timeout, TheTimeoutErrorNestsTheCancelledError) {
    auto main = []() -> coroutine<bool> {
        timeout cm(0s);
        auto body = [](timeout&) -> coroutine<void> { co_await pyco::sleep(1s); };
        std::exception_ptr cause;
        try {
            co_await pyco::async_with(cm, body);
        } catch (const pyco::timeout_error& e) {
            if (auto* nested = dynamic_cast<const std::nested_exception*>(&e)) cause = nested->nested_ptr();
        }
        co_return cause && pyco::exception_group::matches<pyco::cancelled_error>(cause);
    };
    EXPECT_TRUE(pyco::run(main(), vt));
}

std::string runtime_message(auto&& fn) {
    try {
        fn();
    } catch (const pyco::runtime_error& e) {
        return e.what();
    }
    return "no error";
}

// test_timeout_already_entered, test_timeout_double_enter
TEST(Timeout, EnteringTwiceIsAnError) {
    auto main = []() -> coroutine<void> {
        timeout cm(10ms);
        auto nothing = [](timeout&) -> coroutine<void> { co_return; };
        auto reenter = [&](timeout&) -> coroutine<void> {
            EXPECT_EQ(runtime_message([&] { cm.aenter(); }), "Timeout has already been entered");
            co_return;
        };
        co_await pyco::async_with(cm, reenter);
        std::string msg;
        try {
            co_await pyco::async_with(cm, nothing);
        } catch (const pyco::runtime_error& e) {
            msg = e.what();
        }
        EXPECT_EQ(msg, "Timeout has already been entered");
    };
    pyco::run(main(), vt);
}

// test_timeout_finished, test_timeout_not_entered, and the same for the
// expiring and expired states
TEST(Timeout, RescheduleOutsideTheActiveStateIsAnError) {
    auto main = []() -> coroutine<void> {
        timeout fresh(10ms);
        EXPECT_EQ(runtime_message([&] { fresh.reschedule(now()); }), "Timeout has not been entered");

        timeout finished(10ms);
        auto nothing = [](timeout&) -> coroutine<void> { co_return; };
        co_await pyco::async_with(finished, nothing);
        EXPECT_EQ(runtime_message([&] { finished.reschedule(now()); }), "Cannot change state of finished Timeout");

        timeout expiring(0s);
        auto late = [](timeout& t) -> coroutine<void> {
            std::exception_ptr e;
            try {
                co_await pyco::sleep(1s);
            } catch (const pyco::cancelled_error&) {
                e = std::current_exception();
            }
            EXPECT_EQ(runtime_message([&] { t.reschedule(std::nullopt); }),
                      "Cannot change state of expiring Timeout");
            if (e) std::rethrow_exception(e);
        };
        EXPECT_THROW(co_await pyco::async_with(expiring, late), pyco::timeout_error);
        EXPECT_EQ(runtime_message([&] { expiring.reschedule(std::nullopt); }),
                  "Cannot change state of expired Timeout");
    };
    pyco::run(main(), vt);
}

// test_timeout_without_task: entering needs a task; a failed enter leaves
// the timeout unentered.
TEST(Timeout, EnteringOutsideATaskIsAnError) {
    pyco::event_loop loop({.virtual_time = true});
    std::string enter_msg, reschedule_msg;
    loop.call_soon([&] {
        timeout cm(10ms);
        enter_msg = runtime_message([&] { cm.aenter(); });
        reschedule_msg = runtime_message([&] { cm.reschedule(loop.time()); });
        loop.stop();
    });
    loop.run_forever();
    loop.close();
    EXPECT_EQ(enter_msg, "Timeout should be used inside a task");
    EXPECT_EQ(reschedule_msg, "Timeout has not been entered");
}

// asyncio.timeout(delay) reads the running loop's clock.
TEST(Timeout, ARelativeTimeoutNeedsARunningLoop) {
    EXPECT_EQ(runtime_message([] { timeout cm(1s); }), "no running event loop");
    timeout at = pyco::timeout_at(std::nullopt);  // timeout_at does not
    EXPECT_EQ(at.describe(), "<Timeout [created]>");
}

// --- The scoped form: enter() / exit(err), no lambda --------------------

// test_timeout_basic, scoped: the expiry reaches the body as cancelled_error;
// exit() turns it into timeout_error and takes its cancel() back.
TEST(Timeout, ScopedFormTurnsTheExpiryIntoTimeoutError) {
    auto main = []() -> coroutine<void> {
        const auto t0 = now();
        timeout t(10ms);
        t.enter();
        std::exception_ptr err;
        bool body_cancelled = false;
        try {
            co_await pyco::sleep(10s);
        } catch (const pyco::cancelled_error&) {
            body_cancelled = true;
            err = std::current_exception();
        }
        EXPECT_TRUE(body_cancelled);
        EXPECT_THROW(t.exit(err), pyco::timeout_error);
        EXPECT_TRUE(t.expired());
        EXPECT_EQ(now() - t0, 10ms);
        EXPECT_EQ(pyco::current_task().cancelling(), 0);
        co_await pyco::sleep(1ms);  // not cancelled any more
    };
    pyco::run(main(), vt);
}

// A body that ends in time: exit() raises nothing; a body error comes back
// out of exit() unchanged, as through async with.
TEST(Timeout, ScopedFormLetsAFastBodyAndItsErrorsThrough) {
    auto main = []() -> coroutine<void> {
        timeout t(1s);
        t.enter();
        co_await pyco::sleep(10ms);
        t.exit();
        EXPECT_FALSE(t.expired());
        EXPECT_EQ(t.describe(), "<Timeout [finished]>");

        timeout u(1s);
        u.enter();
        std::exception_ptr err;
        try {
            co_await pyco::sleep(10ms);
            throw pyco::value_error("body");
        } catch (...) {
            err = std::current_exception();
        }
        EXPECT_THROW(u.exit(err), pyco::value_error);
        co_await pyco::sleep(2s);  // its timer is gone
    };
    pyco::run(main(), vt);
}

// test_nested_timeouts, scoped: each exit() converts only its own expiry.
TEST(Timeout, ScopedFormNestedOnlyTheOneThatExpiredConverts) {
    auto main = []() -> coroutine<void> {
        timeout outer(10ms);
        outer.enter();
        std::exception_ptr outer_err;
        try {
            timeout inner(1s);
            inner.enter();
            std::exception_ptr inner_err;
            try {
                co_await pyco::sleep(10s);
            } catch (...) {
                inner_err = std::current_exception();
            }
            inner.exit(inner_err);  // not its expiry: cancelled_error again
        } catch (...) {
            outer_err = std::current_exception();
        }
        EXPECT_TRUE(pyco::exception_group::matches<pyco::cancelled_error>(outer_err));
        EXPECT_THROW(outer.exit(outer_err), pyco::timeout_error);
    };
    pyco::run(main(), vt);
}

// --- Leaving the scope without exit() ------------------------------------

struct handler_log {
    std::vector<std::string> messages;
    void install() {
        pyco::get_running_loop().set_exception_handler(
            [this](pyco::event_loop&, const pyco::exception_context& c) { messages.push_back(c.message); });
    }
};

// A timeout destroyed while entered takes its timer along (the task is not
// cancelled later), and, destroyed by its own task, reports the slip.
TEST(Timeout, ForgettingExitIsReportedAndLeavesNoTimerBehind) {
    handler_log log;
    auto main = [&]() -> coroutine<bool> {
        log.install();
        {
            timeout cm(10ms);
            cm.enter();
        }  // gone, never exited
        co_await pyco::sleep(20ms);  // past its deadline
        co_return pyco::current_task().cancelling() == 0;
    };
    EXPECT_TRUE(pyco::run(main(), vt));
    ASSERT_EQ(log.messages.size(), 1u);
    EXPECT_EQ(log.messages[0].rfind("Timeout <Timeout [active] when=", 0), 0u) << log.messages[0];
    EXPECT_NE(log.messages[0].find("> was destroyed without its exit() being called (t.exit() ends its scope)"),
              std::string::npos)
        << log.messages[0];
}

// The slip the report is for: no try, so the expiry leaves the scope as a
// cancelled_error and the task ends cancelled instead of timing out.
TEST(Timeout, AnExpiryLeavingTheScopeIsReported) {
    handler_log log;
    int cancelling_after = -1;
    auto inner = [&]() -> coroutine<void> {
        try {
            timeout t(10ms);
            t.enter();
            co_await pyco::sleep(10s);
            t.exit();  // never reached
        } catch (const pyco::cancelled_error&) {
            cancelling_after = pyco::current_task().cancelling();
            throw;
        }
    };
    auto main = [&]() -> coroutine<void> {
        log.install();
        auto t = pyco::create_task(inner());
        EXPECT_THROW(co_await t, pyco::cancelled_error);
    };
    pyco::run(main(), vt);
    ASSERT_EQ(log.messages.size(), 1u);
    EXPECT_EQ(log.messages[0],
              "Timeout <Timeout [expiring]> was destroyed without its exit() being called "
              "(an exception left its scope: catch it and pass it to exit())");
    EXPECT_EQ(cancelling_after, 0);  // its cancel() was taken back
}

// A timeout in a task the closing loop abandons is not the user's slip.
TEST(Timeout, AnAbandonedTimeoutIsNotReported) {
    std::vector<std::string> messages;
    {
        pyco::event_loop loop({.virtual_time = true});
        loop.set_exception_handler(
            [&](pyco::event_loop&, const pyco::exception_context& c) { messages.push_back(c.message); });
        auto body = []() -> coroutine<void> {
            timeout t(1h);
            t.enter();
            co_await pyco::sleep(2h);
            t.exit();
        };
        auto task = loop.create_task(body());
        loop.call_later(1s, [&] { loop.stop(); });
        loop.run_forever();
        loop.close();
    }
    EXPECT_EQ(messages, std::vector<std::string>{"Task was destroyed but it is pending!"});
}

// timeout(nanoseconds::max()) used to overflow into a deadline in the past
// and expire at once; CPython's timeout(1e300) just never expires.
TEST(Timeout, DelayBeyondTheClockNeverExpires) {
    auto main = []() -> coroutine<void> {
        timeout a(std::chrono::nanoseconds::max());
        timeout b(std::chrono::seconds::max());
        timeout c(std::chrono::duration<double>(1e300));
        EXPECT_EQ(a.when(), pyco::event_loop::time_point::max());
        EXPECT_EQ(b.when(), pyco::event_loop::time_point::max());
        EXPECT_EQ(c.when(), pyco::event_loop::time_point::max());
        auto body = [](timeout&) -> coroutine<void> { co_await pyco::sleep(1h); };
        co_await pyco::async_with(a, body);
        co_await pyco::async_with(b, body);
        co_await pyco::async_with(c, body);
        EXPECT_FALSE(a.expired());
        EXPECT_FALSE(b.expired());
        EXPECT_FALSE(c.expired());
    };
    pyco::run(main(), vt);
}

}  // namespace
