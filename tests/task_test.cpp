// Tasks: creation, names, stacks, lifetime, and CPython's cancellation
// semantics (test_asyncio/test_tasks.py; the Python-only cases — repr
// formats, context vars, eager tasks, the C/Python twins — are left out).
#include <pyco/task.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include <pyco/run.hpp>
#include <pyco/sleep.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using pyco::event_loop;
using trace_t = std::vector<std::string>;

pyco::loop_options vt{.virtual_time = true};

coroutine<int> value_after(std::chrono::milliseconds d, int v) {
    co_await pyco::sleep(d);
    co_return v;
}

TEST(Task, RunsItsCoroutineAndGivesTheResult) {
    auto body = []() -> coroutine<int> {
        auto t = pyco::create_task(value_after(10ms, 7));
        EXPECT_FALSE(t.done());
        int v = co_await t;
        EXPECT_TRUE(t.done());
        EXPECT_EQ(t.result(), 7);
        co_return v;
    };
    EXPECT_EQ(pyco::run(body(), vt), 7);
}

TEST(Task, TasksRunSideBySide) {
    trace_t tr;
    auto worker = [](trace_t& t, std::string name, int steps) -> coroutine<void> {
        for (int i = 0; i < steps; ++i) {
            t.push_back(name + std::to_string(i));
            co_await pyco::sleep(0s);
        }
    };
    auto body = [&]() -> coroutine<void> {
        auto a = pyco::create_task(worker(tr, "a", 3));
        auto b = pyco::create_task(worker(tr, "b", 3));
        co_await a;
        co_await b;
    };
    pyco::run(body());
    EXPECT_EQ(tr, (trace_t{"a0", "b0", "a1", "b1", "a2", "b2"}));
}

TEST(Task, CreateTaskNeedsARunningLoop) {
    try {
        pyco::create_task(value_after(1ms, 1));
        FAIL();
    } catch (const pyco::runtime_error& e) {
        EXPECT_STREQ(e.what(), "no running event loop");
    }
}

TEST(Task, NamesDefaultToTaskN) {
    auto body = []() -> coroutine<void> {
        auto a = pyco::create_task(value_after(1ms, 1));
        auto b = pyco::create_task(value_after(1ms, 1), "named");
        EXPECT_EQ(a.get_name().rfind("Task-", 0), 0u);
        EXPECT_EQ(b.get_name(), "named");
        a.set_name("renamed");
        EXPECT_EQ(a.get_name(), "renamed");
        co_await a;
        co_await b;
    };
    pyco::run(body(), vt);
}

TEST(Task, CurrentTaskAndAllTasks) {
    auto body = []() -> coroutine<void> {
        pyco::any_task me = pyco::current_task();
        EXPECT_TRUE(static_cast<bool>(me));
        auto other = pyco::create_task(value_after(5ms, 1));
        auto all = pyco::all_tasks();
        EXPECT_EQ(all.size(), 2u);
        EXPECT_TRUE(all[0] == me);
        co_await other;
        EXPECT_EQ(pyco::all_tasks().size(), 1u);  // done ones are gone
    };
    EXPECT_FALSE(static_cast<bool>(pyco::current_task()));
    pyco::run(body(), vt);
}

TEST(Task, ARunningTaskLivesWithoutHandles) {
    bool finished = false;
    auto body = [&]() -> coroutine<void> {
        auto fire_and_forget = [](bool& f) -> coroutine<void> {
            co_await pyco::sleep(10ms);
            f = true;
        };
        pyco::create_task(fire_and_forget(finished));  // handle dropped at once
        co_await pyco::sleep(20ms);
    };
    pyco::run(body(), vt);
    EXPECT_TRUE(finished);
}

TEST(Task, ExceptionPropagatesToTheAwaiter) {
    auto failing = []() -> coroutine<int> {
        co_await pyco::sleep(1ms);
        throw pyco::value_error("task failed");
    };
    auto body = [&]() -> coroutine<std::string> {
        auto t = pyco::create_task(failing());
        try {
            co_await t;
        } catch (const pyco::value_error& e) {
            co_return e.what();
        }
        co_return "no";
    };
    EXPECT_EQ(pyco::run(body(), vt), "task failed");
}

TEST(Task, NeverRetrievedExceptionIsReported) {
    std::vector<std::string> msgs;
    auto body = [&]() -> coroutine<void> {
        pyco::get_running_loop().set_exception_handler(
            [&](event_loop&, const pyco::exception_context& c) { msgs.push_back(c.message + " " + c.future); });
        auto failing = []() -> coroutine<void> {
            throw pyco::value_error("x");
            co_return;
        };
        {
            auto t = pyco::create_task(failing(), "doomed");
            co_await pyco::sleep(1ms);
            EXPECT_TRUE(t.done());
        }  // the last handle goes
        co_await pyco::sleep(1ms);
    };
    pyco::run(body(), vt);
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0].rfind("Task exception was never retrieved <Task finished name='doomed'", 0), 0u)
        << msgs[0];
}

TEST(Task, DoneCallbacksGetTheTask) {
    auto body = []() -> coroutine<std::string> {
        auto t = pyco::create_task(value_after(1ms, 3));
        std::string seen;
        t.add_done_callback([&](pyco::task<int>& tt) { seen = "done with " + std::to_string(tt.result()); });
        co_await t;
        co_await pyco::sleep(0s);  // callbacks run on the loop, after
        co_return seen;
    };
    EXPECT_EQ(pyco::run(body(), vt), "done with 3");
}

TEST(Task, CannotAwaitItself) {
    auto body = []() -> coroutine<std::string> {
        pyco::any_task me = pyco::current_task();
        try {
            co_await me;
        } catch (const pyco::runtime_error& e) {
            co_return std::string(e.what()).substr(0, 26);
        }
        co_return "no";
    };
    EXPECT_EQ(pyco::run(body()), "Task cannot await on itsel");
}

// ---------------------------------------------------------------- cancel

TEST(TaskCancel, RaisesCancelledErrorAtTheCurrentAwait) {
    trace_t tr;
    auto victim = [](trace_t& t) -> coroutine<void> {
        t.push_back("start");
        try {
            co_await pyco::sleep(1h);
        } catch (const pyco::cancelled_error& e) {
            t.push_back(std::string("cancelled: ") + e.what());
            throw;
        }
        t.push_back("not reached");
    };
    auto body = [&]() -> coroutine<void> {
        auto t = pyco::create_task(victim(tr));
        co_await pyco::sleep(1ms);
        EXPECT_TRUE(t.cancel("stop now"));
        EXPECT_EQ(t.cancelling(), 1);
        EXPECT_THROW(co_await t, pyco::cancelled_error);
        EXPECT_TRUE(t.cancelled());
        EXPECT_FALSE(t.cancel());  // done
    };
    pyco::run(body(), vt);
    EXPECT_EQ(tr, (trace_t{"start", "cancelled: stop now"}));
}

TEST(TaskCancel, BeforeTheFirstStepTheBodyNeverRuns) {
    bool ran = false;
    auto body = [&]() -> coroutine<void> {
        auto victim = [](bool& r) -> coroutine<void> {
            r = true;
            co_return;
        };
        auto t = pyco::create_task(victim(ran));
        t.cancel();
        EXPECT_THROW(co_await t, pyco::cancelled_error);
        EXPECT_TRUE(t.cancelled());
    };
    pyco::run(body());
    EXPECT_FALSE(ran);
}

TEST(TaskCancel, CatchingCancellationAndReturningAValueIsNotCancelled) {
    auto body = []() -> coroutine<int> {
        auto stubborn = []() -> coroutine<int> {
            try {
                co_await pyco::sleep(1h);
            } catch (const pyco::cancelled_error&) {
                co_return 42;
            }
            co_return 0;
        };
        auto t = pyco::create_task(stubborn());
        co_await pyco::sleep(1ms);
        t.cancel();
        int v = co_await t;
        EXPECT_FALSE(t.cancelled());
        EXPECT_EQ(t.cancelling(), 1);  // requested, though not honoured
        co_return v;
    };
    EXPECT_EQ(pyco::run(body(), vt), 42);
}

TEST(TaskCancel, SelfCancelThenReturnStillEndsCancelled) {
    auto body = []() -> coroutine<bool> {
        auto self_cancel = []() -> coroutine<int> {
            pyco::current_task().cancel();
            co_return 5;  // no await in between: the request stands
        };
        auto t = pyco::create_task(self_cancel());
        try {
            co_await t;
        } catch (const pyco::cancelled_error&) {
        }
        co_return t.cancelled();
    };
    EXPECT_TRUE(pyco::run(body()));
}

TEST(TaskCancel, CancelWhileReadyRaisesAtTheNextAwait) {
    // test_cancel_yield: a task that is ready (after sleep(0)), not waiting
    // on a future: must_cancel throws in at its resumption point.
    trace_t tr;
    auto victim = [](trace_t& t) -> coroutine<void> {
        try {
            co_await pyco::sleep(0s);
            t.push_back("after yield");
        } catch (const pyco::cancelled_error&) {
            t.push_back("cancelled at yield");
            throw;
        }
    };
    auto body = [&]() -> coroutine<void> {
        auto t = pyco::create_task(victim(tr));
        co_await pyco::sleep(0s);  // victim runs to its sleep(0) and is re-queued
        t.cancel();
        EXPECT_THROW(co_await t, pyco::cancelled_error);
    };
    pyco::run(body());
    EXPECT_EQ(tr, trace_t{"cancelled at yield"});
}

TEST(TaskCancel, UncancelAndCancelling) {
    auto body = []() -> coroutine<void> {
        auto resilient = []() -> coroutine<int> {
            int caught = 0;
            for (int i = 0; i < 2; ++i) {
                try {
                    co_await pyco::sleep(1h);
                } catch (const pyco::cancelled_error&) {
                    ++caught;
                    EXPECT_EQ(pyco::current_task().uncancel(), 0);
                }
            }
            co_return caught;
        };
        auto t = pyco::create_task(resilient());
        co_await pyco::sleep(1ms);
        t.cancel();
        co_await pyco::sleep(1ms);
        t.cancel();
        EXPECT_EQ(co_await t, 2);
        EXPECT_EQ(t.cancelling(), 0);
        EXPECT_EQ(t.uncancel(), 0);  // never below zero
    };
    pyco::run(body(), vt);
}

TEST(TaskCancel, CancellingATaskCancelsTheTaskItAwaits) {
    trace_t tr;
    auto inner = [](trace_t& t) -> coroutine<void> {
        try {
            co_await pyco::sleep(1h);
        } catch (const pyco::cancelled_error&) {
            t.push_back("inner cancelled");
            throw;
        }
    };
    auto outer = [](trace_t& t, auto mk) -> coroutine<void> {
        auto it = pyco::create_task(mk(t));
        try {
            co_await it;
        } catch (const pyco::cancelled_error&) {
            t.push_back("outer cancelled");
            throw;
        }
    };
    auto body = [&]() -> coroutine<void> {
        auto t = pyco::create_task(outer(tr, inner));
        co_await pyco::sleep(1ms);
        t.cancel();
        EXPECT_THROW(co_await t, pyco::cancelled_error);
    };
    pyco::run(body(), vt);
    EXPECT_EQ(tr, (trace_t{"inner cancelled", "outer cancelled"}));
}

TEST(TaskCancel, CancelledFutureAwaitedByATaskRaisesInItButTheTaskIsNotCancelled) {
    auto body = []() -> coroutine<std::string> {
        auto f = pyco::get_running_loop().create_future<int>();
        auto waiter = [](pyco::future<int> ff) -> coroutine<std::string> {
            try {
                co_await ff;
            } catch (const pyco::cancelled_error&) {
                co_return "saw cancel";
            }
            co_return "no";
        };
        auto t = pyco::create_task(waiter(f));
        co_await pyco::sleep(0s);
        f.cancel();
        std::string r = co_await t;
        EXPECT_FALSE(t.cancelled());
        co_return r;
    };
    EXPECT_EQ(pyco::run(body()), "saw cancel");
}

// ---------------------------------------------------------------- stacks

coroutine<void> leaf_waiter() { co_await pyco::sleep(1h); }
coroutine<void> middle() { co_await leaf_waiter(); }

TEST(Task, GetStackShowsTheChainOfCoroutines) {
    auto body = []() -> coroutine<void> {
        auto t = pyco::create_task(middle(), "sleeper");
        co_await pyco::sleep(1ms);
        auto stack = t.get_stack();
        EXPECT_EQ(stack.size(), 2u);
        if (stack.size() == 2) {
            EXPECT_NE(stack[0].function.find("middle"), std::string::npos) << stack[0].function;
            EXPECT_NE(stack[1].function.find("leaf_waiter"), std::string::npos) << stack[1].function;
            EXPECT_NE(stack[1].file.find("task_test.cpp"), std::string::npos);
            EXPECT_GT(stack[1].line, 0u);
        }
        char* buf = nullptr;
        std::size_t len = 0;
        std::FILE* mem = open_memstream(&buf, &len);
        t.print_stack(mem);
        std::fclose(mem);
        std::string text(buf, len);
        std::free(buf);
        EXPECT_NE(text.find("Stack for <Task pending name='sleeper'"), std::string::npos) << text;
        EXPECT_NE(text.find("in "), std::string::npos) << text;
        t.cancel();
        try {
            co_await t;
        } catch (const pyco::cancelled_error&) {
        }
        EXPECT_TRUE(t.get_stack().empty());
    };
    pyco::run(body(), vt);
}

// CPython names a frame by its function's name ("in leaf_waiter") and a
// task's coroutine by its qualified name; pyco gives the same short form on
// GCC and clang, without the return type, parameters or anonymous namespace
// (these coroutines are in one).
TEST(Task, StackAndReprNameCoroutinesLikeCPython) {
    auto body = []() -> coroutine<void> {
        auto t = pyco::create_task(middle(), "sleeper");
        auto lambda_coro = []() -> coroutine<void> { co_await pyco::sleep(1h); };
        auto l = pyco::create_task(lambda_coro(), "lambda");
        co_await pyco::sleep(1ms);
        auto stack = t.get_stack();
        EXPECT_EQ(stack.size(), 2u);
        if (stack.size() == 2) {
            EXPECT_EQ(stack[0].function, "middle");
            EXPECT_EQ(stack[1].function, "leaf_waiter");
        }
        auto lstack = l.get_stack();
        EXPECT_EQ(lstack.size(), 1u);
        if (lstack.size() == 1) {
            EXPECT_TRUE(lstack[0].function.ends_with("::<lambda>")) << lstack[0].function;
            EXPECT_EQ(lstack[0].function.find("anonymous"), std::string::npos) << lstack[0].function;
        }
        char* buf = nullptr;
        std::size_t len = 0;
        std::FILE* mem = open_memstream(&buf, &len);
        t.print_stack(mem);
        std::fclose(mem);
        std::string text(buf, len);
        std::free(buf);
        EXPECT_NE(text.find("Stack for <Task pending name='sleeper' coro=<middle() running at "), std::string::npos)
            << text;
        EXPECT_NE(text.find(", in middle\n"), std::string::npos) << text;
        EXPECT_NE(text.find(", in leaf_waiter\n"), std::string::npos) << text;
        EXPECT_EQ(text.find("anonymous"), std::string::npos) << text;
        t.cancel();
        l.cancel();
        co_await pyco::sleep(0s);
    };
    pyco::run(body(), vt);
}

TEST(Task, LoopClosedWithAPendingTaskReportsAndFreesIt) {
    auto token = std::make_shared<int>(0);
    std::vector<std::string> msgs;
    {
        event_loop loop;
        loop.set_exception_handler([&](event_loop&, const pyco::exception_context& c) { msgs.push_back(c.message); });
        auto holder = [](std::shared_ptr<int> tok) -> coroutine<void> {
            co_await pyco::sleep(1h);
            (void)tok;
        };
        auto t = loop.create_task(holder(token));
        loop.stop();
        loop.run_forever();  // one step: now it sleeps
        EXPECT_EQ(token.use_count(), 2);
        loop.close();
        EXPECT_EQ(token.use_count(), 1);  // the frame is gone
        EXPECT_FALSE(t.done());
    }
    EXPECT_EQ(msgs, std::vector<std::string>{"Task was destroyed but it is pending!"});
}

}  // namespace

// Two rules of CPython 3.12's Task found missing by the task_group port:
// Task.__step cancels the future a self-cancelled task just awaited, and
// uncancel() reaching zero withdraws an undelivered cancellation (gh-116720).
namespace {


// test_tasks.py: test_cancel_current_task ("The sleep should be cancelled
// immediately.")
TEST(TaskCancelFix, SelfCancelThenAwaitingAFutureRaisesAtOnce) {
    auto main = []() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        const auto t0 = loop.time();
        auto victim = []() -> coroutine<int> {
            pyco::current_task().cancel("self");
            co_await pyco::sleep(100s);
            co_return 12;
        };
        auto t = pyco::create_task(victim());
        std::string msg;
        try {
            co_await t;
        } catch (const pyco::cancelled_error& e) {
            msg = e.what();
        }
        EXPECT_EQ(msg, "self");
        EXPECT_TRUE(t.cancelled());
        EXPECT_FALSE(t.cancel());
        EXPECT_LT(loop.time() - t0, 100s);  // did not sleep first
    };
    pyco::run(main(), {.virtual_time = true});
}

// The same through a plain future that nobody will ever complete.
TEST(TaskCancelFix, SelfCancelThenAwaitingAPendingFutureDoesNotHang) {
    auto main = []() -> coroutine<bool> {
        auto& loop = pyco::get_running_loop();
        const auto t0 = loop.time();
        auto never = loop.create_future<int>();
        auto victim = [](pyco::future<int> f) -> coroutine<int> {
            pyco::current_task().cancel();
            co_return co_await f;
        };
        auto t = pyco::create_task(victim(never));
        // A watchdog, so that the bug shows as a failure, not a hang.
        auto watchdog = [](pyco::task<int> v) -> coroutine<void> {
            co_await pyco::sleep(1h);
            v.cancel("watchdog");
        };
        auto w = pyco::create_task(watchdog(t));
        EXPECT_THROW(co_await t, pyco::cancelled_error);
        EXPECT_LT(loop.time() - t0, 1h);  // not rescued by the watchdog
        w.cancel();
        co_return never.cancelled();
    };
    EXPECT_TRUE(pyco::run(main(), {.virtual_time = true}));
}

// test_tasks.py: test_uncancel_resets_must_cancel
TEST(TaskCancelFix, UncancelToZeroWithdrawsAPendingCancel) {
    auto main = []() -> coroutine<int> {
        auto fut = pyco::get_running_loop().create_future<void>();
        auto coro = [](pyco::future<void> f) -> coroutine<int> {
            co_await f;
            co_return 42;
        };
        auto task = pyco::create_task(coro(fut));
        co_await pyco::sleep(0s);  // the task now waits for fut
        fut.set_result();          // it is runnable
        task.cancel();             // fut is done: the cancel waits for the step
        EXPECT_EQ(task.cancelling(), 1);
        EXPECT_EQ(task.uncancel(), 0);  // undone before delivery
        co_return co_await task;
    };
    EXPECT_EQ(pyco::run(main(), {.virtual_time = true}), 42);
}

// A sleep beyond the clock's range used to overflow into a deadline in the
// past and return at once; CPython's sleep(1e300) just waits.
TEST(Sleep, BeyondTheClockWaitsForEver) {
    auto main = []() -> coroutine<void> {
        auto years = pyco::create_task([]() -> coroutine<void> {
            co_await pyco::sleep(std::chrono::years(300));
        }());
        auto forever = pyco::create_task([]() -> coroutine<void> {
            co_await pyco::sleep(std::chrono::hours::max());
        }());
        auto huge = pyco::create_task([]() -> coroutine<void> {
            co_await pyco::sleep(std::chrono::duration<double>(1e300));
        }());
        auto nan = pyco::create_task([]() -> coroutine<void> {
            co_await pyco::sleep(std::chrono::duration<double>(std::numeric_limits<double>::quiet_NaN()));
        }());
        co_await pyco::sleep(1h);
        EXPECT_FALSE(years.done());
        EXPECT_FALSE(forever.done());
        EXPECT_FALSE(huge.done());
        EXPECT_FALSE(nan.done());
        years.cancel();
        forever.cancel();
        huge.cancel();
        nan.cancel();
    };
    pyco::run(main(), vt);
}

// ... and a sleep before the clock's beginning is a sleep(0).
TEST(Sleep, FarNegativeIsAYield) {
    auto main = []() -> coroutine<int> {
        co_await pyco::sleep(std::chrono::hours::min());
        co_await pyco::sleep(std::chrono::duration<double>(-1e300));
        co_return 1;
    };
    EXPECT_EQ(pyco::run(main(), vt), 1);
}

// CPython checks run_until_complete's preconditions before it wraps the
// coroutine in a task; pyco made the task first, and the refused run left
// it to be reported as "Task was destroyed but it is pending!".
TEST(RunUntilComplete, RefusedInsideAnotherLoopLeavesNoPendingTask) {
    std::vector<std::string> msgs;
    auto main = [](std::vector<std::string>& m) -> coroutine<std::string> {
        std::string error;
        {
            event_loop inner;
            inner.set_exception_handler(
                [&](event_loop&, const pyco::exception_context& c) { m.push_back(c.message); });
            try {
                inner.run_until_complete([]() -> coroutine<int> { co_return 1; }());
            } catch (const pyco::runtime_error& e) {
                error = e.what();
            }
            EXPECT_TRUE(pyco::all_tasks(inner).empty());
        }
        co_return error;
    };
    EXPECT_EQ(pyco::run(main(msgs), vt), "Cannot run the event loop while another loop is running");
    EXPECT_EQ(std::count(msgs.begin(), msgs.end(), "Task was destroyed but it is pending!"), 0);
}

TEST(RunUntilComplete, RefusedOnAClosedOrRunningLoop) {
    event_loop loop;
    loop.close();
    try {
        loop.run_until_complete([]() -> coroutine<int> { co_return 1; }());
        ADD_FAILURE();
    } catch (const pyco::runtime_error& e) {
        EXPECT_STREQ(e.what(), "Event loop is closed");
    }
    event_loop running;
    std::string error;
    running.call_soon([&] {
        try {
            running.run_until_complete([]() -> coroutine<int> { co_return 1; }());
        } catch (const pyco::runtime_error& e) {
            error = e.what();
        }
        running.stop();
    });
    running.run_forever();
    EXPECT_EQ(error, "This event loop is already running");
    EXPECT_TRUE(pyco::all_tasks(running).empty());
}

// loop.stop() cuts run_until_complete(coroutine) short: the caller gets
// "Event loop stopped before Future completed.", and the task it never saw
// is not reported again when the loop closes (CPython sets its
// _log_destroy_pending to False). A task the user made, or one the
// coroutine made, still is.
TEST(RunUntilComplete, StoppedEarlyDoesNotReportItsOwnTaskAsDestroyed) {
    auto stops = []() -> coroutine<void> {
        pyco::get_running_loop().stop();
        co_await pyco::sleep(1h);
    };
    auto stops_after_spawning = [](pyco::task<void>& spawned) -> coroutine<void> {
        spawned = pyco::create_task([]() -> coroutine<void> { co_await pyco::sleep(1h); }());
        pyco::get_running_loop().stop();
        co_await pyco::sleep(1h);
    };
    auto run_case = [](auto make) {
        std::vector<std::string> msgs;
        std::string error;
        {
            event_loop loop({.virtual_time = true});
            loop.set_exception_handler(
                [&](event_loop&, const pyco::exception_context& c) { msgs.push_back(c.message); });
            try {
                make(loop);
            } catch (const pyco::runtime_error& e) {
                error = e.what();
            }
            loop.close();
        }
        EXPECT_EQ(error, "Event loop stopped before Future completed.");
        return std::count(msgs.begin(), msgs.end(), "Task was destroyed but it is pending!");
    };
    EXPECT_EQ(run_case([&](event_loop& loop) { loop.run_until_complete(stops()); }), 0);
    EXPECT_EQ(run_case([&](event_loop& loop) { loop.run_until_complete(loop.create_task(stops())); }), 1);
    pyco::task<void> spawned;
    EXPECT_EQ(run_case([&](event_loop& loop) { loop.run_until_complete(stops_after_spawning(spawned)); }), 1);
}

// The task run_until_complete made is the caller's only through the result:
// when the run is interrupted after the task failed, its exception is not
// left to be reported as never retrieved (CPython consumes it too).
TEST(RunUntilComplete, InterruptedAfterTheTaskFailedReportsNothing) {
    testing::internal::CaptureStderr();
    {
        event_loop loop;
        bool interrupted = false;
        auto fails = [](event_loop& l) -> coroutine<int> {
            // Runs in the same iteration as the callback below.
            l.call_soon([] { throw pyco::keyboard_interrupt(); });
            throw pyco::value_error("failed");
            co_return 0;
        };
        try {
            loop.run_until_complete(fails(loop));
        } catch (const pyco::keyboard_interrupt&) {
            interrupted = true;
        }
        EXPECT_TRUE(interrupted);
    }
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(err, "");
}

}  // namespace
