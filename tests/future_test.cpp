// Futures: the observable cases of CPython's test_asyncio/test_futures.py
// that do not depend on Python-only features (repr details, pickling,
// __del__ timing, the C/Python twin implementations, context vars).
#include <pyco/future.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <pyco/coroutine.hpp>
#include <pyco/task.hpp>

namespace {

using pyco::event_loop;
using pyco::future;

void run_one(event_loop& loop) {
    loop.stop();
    loop.run_forever();
}

TEST(Future, InitialState) {  // test_initial_state
    event_loop loop;
    future<int> f(loop);
    EXPECT_FALSE(f.done());
    EXPECT_FALSE(f.cancelled());
    EXPECT_EQ(&f.get_loop(), &loop);
    f.cancel();
    EXPECT_TRUE(f.cancelled());
    EXPECT_TRUE(f.done());
}

TEST(Future, CreateFutureOnTheLoop) {
    event_loop loop;
    auto f = loop.create_future<std::string>();
    f.set_result("x");
    EXPECT_EQ(f.result(), "x");
}

TEST(Future, ResultAndExceptionWhilePendingAreInvalidState) {  // test_result / test_exception
    event_loop loop;
    future<int> f(loop);
    try {
        f.result();
        FAIL();
    } catch (const pyco::invalid_state_error& e) {
        EXPECT_STREQ(e.what(), "Result is not set.");
    }
    try {
        f.exception();
        FAIL();
    } catch (const pyco::invalid_state_error& e) {
        EXPECT_STREQ(e.what(), "Exception is not set.");
    }
}

TEST(Future, CancelThenEverythingRaisesCancelled) {  // test_cancel
    event_loop loop;
    future<int> f(loop);
    EXPECT_TRUE(f.cancel());
    EXPECT_FALSE(f.cancel());  // already done
    EXPECT_THROW(f.result(), pyco::cancelled_error);
    EXPECT_THROW(f.exception(), pyco::cancelled_error);
    EXPECT_THROW(f.set_result(1), pyco::invalid_state_error);
    EXPECT_THROW(f.set_exception(pyco::value_error("x")), pyco::invalid_state_error);
}

TEST(Future, CancelMessageReachesTheError) {  // test_future_cancel_message_getter
    event_loop loop;
    future<int> f(loop);
    f.cancel("my message");
    try {
        f.result();
        FAIL();
    } catch (const pyco::cancelled_error& e) {
        EXPECT_STREQ(e.what(), "my message");
    }
}

TEST(Future, ResultIsKept) {  // test_result
    event_loop loop;
    future<int> f(loop);
    f.set_result(42);
    EXPECT_TRUE(f.done());
    EXPECT_FALSE(f.cancelled());
    EXPECT_EQ(f.result(), 42);
    EXPECT_EQ(f.result(), 42);
    EXPECT_EQ(f.exception(), nullptr);
    EXPECT_FALSE(f.cancel());
    try {
        f.set_result(1);
        FAIL();
    } catch (const pyco::invalid_state_error& e) {
        EXPECT_STREQ(e.what(), "invalid state");  // CPython's C Future
    }
}

TEST(Future, ExceptionIsRaisedByResult) {  // test_exception
    event_loop loop;
    future<int> f(loop);
    f.set_exception(pyco::runtime_error("bad"));
    EXPECT_THROW(f.result(), pyco::runtime_error);
    EXPECT_NE(f.exception(), nullptr);
    EXPECT_FALSE(f.cancel());
}

TEST(Future, VoidFuture) {
    event_loop loop;
    future<> f(loop);
    f.set_result();
    EXPECT_NO_THROW(f.result());
}

TEST(Future, CopiesShareOneState) {
    event_loop loop;
    future<int> f(loop);
    future<int> g = f;
    f.set_result(7);
    EXPECT_TRUE(g.done());
    EXPECT_EQ(g.result(), 7);
    EXPECT_TRUE(f == g);
}

TEST(Future, CallbacksAreScheduledNotCalledAndKeepOrder) {  // test_callbacks_invoked_on_set_result
    event_loop loop;
    future<int> f(loop);
    std::vector<int> calls;
    f.add_done_callback([&](future<int>& ff) { calls.push_back(ff.result() * 10 + 1); });
    f.add_done_callback([&](future<int>&) { calls.push_back(2); });
    f.set_result(4);
    EXPECT_TRUE(calls.empty());  // not inside set_result
    run_one(loop);
    EXPECT_EQ(calls, (std::vector<int>{41, 2}));
}

TEST(Future, CallbackAddedWhenDoneIsScheduledAtOnce) {
    event_loop loop;
    future<int> f(loop);
    f.set_result(1);
    bool called = false;
    f.add_done_callback([&](future<int>&) { called = true; });
    EXPECT_FALSE(called);
    run_one(loop);
    EXPECT_TRUE(called);
}

TEST(Future, RemoveDoneCallback) {  // test_remove_done_callback
    event_loop loop;
    future<int> f(loop);
    std::vector<int> calls;
    auto a = f.add_done_callback([&](future<int>&) { calls.push_back(1); });
    f.add_done_callback([&](future<int>&) { calls.push_back(2); });
    auto c = f.add_done_callback([&](future<int>&) { calls.push_back(3); });
    EXPECT_EQ(f.remove_done_callback(a), 1u);
    EXPECT_EQ(f.remove_done_callback(a), 0u);
    EXPECT_EQ(f.remove_done_callback(c), 1u);
    f.set_result(0);
    run_one(loop);
    EXPECT_EQ(calls, std::vector<int>{2});
}

TEST(Future, CallbacksRunOnCancelToo) {
    event_loop loop;
    future<int> f(loop);
    bool saw_cancel = false;
    f.add_done_callback([&](future<int>& ff) { saw_cancel = ff.cancelled(); });
    f.cancel();
    run_one(loop);
    EXPECT_TRUE(saw_cancel);
}

TEST(Future, CallbacksHoldingStateAreFreedWhenNeverRun) {
    auto token = std::make_shared<int>(0);
    {
        event_loop loop;
        future<int> f(loop);
        f.add_done_callback([token](future<int>&) {});
        EXPECT_EQ(token.use_count(), 2);
    }
    EXPECT_EQ(token.use_count(), 1);
}

TEST(Future, NeverRetrievedExceptionIsReported) {  // test_tb_logger_exception_unretrieved
    event_loop loop;
    std::vector<std::string> msgs;
    loop.set_exception_handler([&](event_loop&, const pyco::exception_context& c) {
        msgs.push_back(c.message);
    });
    loop.call_soon([&] {
        future<int> f(loop);
        f.set_exception(pyco::runtime_error("lost"));
    });
    loop.call_soon([&] {
        future<int> f(loop);
        f.set_exception(pyco::runtime_error("seen"));
        f.exception();  // retrieved: no report
    });
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    EXPECT_EQ(msgs, std::vector<std::string>{"Future exception was never retrieved"});
}

TEST(Future, RunUntilCompleteReturnsTheResult) {
    using namespace std::chrono_literals;
    event_loop loop({.virtual_time = true});
    future<int> f(loop);
    loop.call_later(1s, [f]() mutable { f.set_result(5); });
    EXPECT_EQ(loop.run_until_complete(f), 5);
}

TEST(Future, RunUntilCompleteRaisesTheException) {
    event_loop loop;
    future<int> f(loop);
    loop.call_soon([f]() mutable { f.set_exception(pyco::value_error("v")); });
    EXPECT_THROW(loop.run_until_complete(f), pyco::value_error);
}

TEST(Future, LoopStoppedBeforeTheFutureCompleted) {
    event_loop loop;
    future<int> f(loop);
    loop.call_soon([&] { loop.stop(); });
    try {
        loop.run_until_complete(f);
        FAIL();
    } catch (const pyco::runtime_error& e) {
        EXPECT_STREQ(e.what(), "Event loop stopped before Future completed.");
    }
}

// ---- CPython's C Future says "invalid state" --------------------------------

TEST(Future, SettingADoneFutureSaysInvalidState) {
    event_loop loop;
    auto message = [](auto&& set) {
        try {
            set();
        } catch (const pyco::invalid_state_error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    future<int> finished(loop);
    finished.set_result(1);
    EXPECT_EQ(message([&] { finished.set_result(2); }), "invalid state");
    EXPECT_EQ(message([&] { finished.set_exception(pyco::value_error("v")); }), "invalid state");
    future<void> cancelled(loop);
    cancelled.cancel();
    EXPECT_EQ(message([&] { cancelled.set_result(); }), "invalid state");
    EXPECT_EQ(message([&] { cancelled.set_exception(pyco::value_error("v")); }), "invalid state");
}

// ---- a future that outlives its loop ----------------------------------------
// CPython: completing a future of a closed loop raises RuntimeError("Event
// loop is closed") only when it has callbacks to schedule (call_soon
// refuses); the future is done all the same, and its callbacks are dropped.

std::string closed_error(auto&& f) {
    try {
        f();
    } catch (const pyco::runtime_error& e) {
        return e.what();
    }
    return "no error";
}

TEST(FutureLoopClosed, CompletingWithoutCallbacksIsFine) {
    event_loop loop;
    future<int> a(loop);
    future<int> b(loop);
    future<int> c(loop);
    loop.close();
    a.set_result(1);
    EXPECT_EQ(a.result(), 1);
    b.set_exception(pyco::value_error("v"));
    EXPECT_THROW(b.result(), pyco::value_error);
    EXPECT_TRUE(c.cancel());
    EXPECT_TRUE(c.cancelled());
}

TEST(FutureLoopClosed, CompletingWithCallbacksRaisesAndFreesThem) {
    auto token = std::make_shared<int>(0);
    event_loop loop;
    future<int> a(loop);
    future<int> b(loop);
    future<int> c(loop);
    for (future<int>* f : {&a, &b, &c}) {
        f->add_done_callback([token](future<int>&) { ADD_FAILURE() << "ran on a closed loop"; });
        f->add_done_callback([token](future<int>&) { ADD_FAILURE() << "ran on a closed loop"; });
    }
    EXPECT_EQ(token.use_count(), 7);
    loop.close();
    EXPECT_EQ(closed_error([&] { a.set_result(1); }), "Event loop is closed");
    EXPECT_EQ(a.result(), 1);  // done all the same, as in CPython
    EXPECT_EQ(closed_error([&] { b.set_exception(pyco::value_error("v")); }), "Event loop is closed");
    EXPECT_THROW(b.result(), pyco::value_error);
    EXPECT_EQ(closed_error([&] { c.cancel(); }), "Event loop is closed");
    EXPECT_TRUE(c.cancelled());
    EXPECT_EQ(token.use_count(), 1);  // every callback freed, none queued for ever
}

TEST(FutureLoopClosed, AddingACallbackToADoneFutureRaises) {
    auto token = std::make_shared<int>(0);
    event_loop loop;
    future<int> done(loop);
    done.set_result(1);
    future<int> pending(loop);
    loop.close();
    EXPECT_EQ(closed_error([&] { done.add_done_callback([token](future<int>&) {}); }), "Event loop is closed");
    EXPECT_EQ(token.use_count(), 1);
    pending.add_done_callback([token](future<int>&) {});  // pending: kept, as in CPython
    EXPECT_EQ(token.use_count(), 2);
    EXPECT_EQ(closed_error([&] { pending.set_result(2); }), "Event loop is closed");
    EXPECT_EQ(token.use_count(), 1);
}

// Used to be a heap-use-after-free in future_base::finish (ASan).
TEST(FutureLoopClosed, CompletingAfterTheLoopIsDestroyedIsSafe) {
    auto token = std::make_shared<int>(0);
    std::optional<future<int>> with_cb;
    std::optional<future<int>> without_cb;
    std::optional<future<int>> failed;
    {
        event_loop loop;
        with_cb.emplace(loop);
        without_cb.emplace(loop);
        failed.emplace(loop);
        with_cb->add_done_callback([token](future<int>&) {});
    }
    EXPECT_EQ(closed_error([&] { with_cb->set_result(1); }), "Event loop is closed");
    EXPECT_EQ(token.use_count(), 1);
    without_cb->set_result(2);
    EXPECT_EQ(without_cb->result(), 2);
    EXPECT_EQ(closed_error([&] { with_cb->add_done_callback([](future<int>&) {}); }), "Event loop is closed");
    // A never-retrieved exception is still reported, with the loop gone.
    failed->set_exception(pyco::value_error("lost"));
    testing::internal::CaptureStderr();
    failed.reset();
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("Future exception was never retrieved"), std::string::npos) << err;
}

TEST(FutureLoopClosed, ATaskOutlivingItsLoopCanStillBeUsed) {
    pyco::task<int> t;
    {
        event_loop loop;
        loop.set_exception_handler([](event_loop&, const pyco::exception_context&) {});
        t = loop.create_task([]() -> pyco::coroutine<int> {
            future<int> never(pyco::get_running_loop());
            co_return co_await never;
        }());
        run_one(loop);
    }
    EXPECT_FALSE(t.done());
    EXPECT_TRUE(t.cancel());
    EXPECT_FALSE(t.done());
}

// ---- a future of another loop -------------------------------------------------
// CPython 3.12: RuntimeError("Task <Task pending name='Task-1' coro=<main()
// running at x.py:7> ...> got Future <Future pending> attached to a different
// loop"), and the task never waits on that future.

TEST(FutureOtherLoop, AwaitingAPendingOneIsRefused) {
    event_loop other;
    future<int> foreign(other);
    event_loop loop;
    std::string error;
    bool resumed_after = false;
    auto t = loop.create_task([](future<int> f, std::string& err, bool& after) -> pyco::coroutine<void> {
        try {
            co_await f;
            after = true;
        } catch (const pyco::runtime_error& e) {
            err = e.what();
        }
    }(foreign, error, resumed_after));
    loop.run_until_complete(t);
    const std::string prefix = "Task <Task pending name='" + t.get_name() + "' coro=<";
    EXPECT_EQ(error.rfind(prefix, 0), 0u) << error;
    const std::string suffix = "> got Future <Future pending> attached to a different loop";
    ASSERT_GE(error.size(), suffix.size()) << error;
    EXPECT_EQ(error.substr(error.size() - suffix.size()), suffix) << error;
    // The other loop running later does not run the task.
    foreign.set_result(1);
    other.stop();
    other.run_forever();
    EXPECT_FALSE(resumed_after);
}

TEST(FutureOtherLoop, AwaitingADoneOneGivesItsResult) {  // as in CPython: no wait, no check
    event_loop other;
    future<int> foreign(other);
    foreign.set_result(7);
    event_loop loop;
    EXPECT_EQ(loop.run_until_complete([](future<int> f) -> pyco::coroutine<int> { co_return co_await f; }(foreign)), 7);
}

TEST(FutureOtherLoop, ATaskOfAnotherLoopIsRefusedToo) {
    event_loop other;
    auto foreign = other.create_task([]() -> pyco::coroutine<int> { co_return 1; }());
    event_loop loop;
    auto body = [](pyco::task<int> f) -> pyco::coroutine<std::string> {
        try {
            co_await f;
        } catch (const pyco::runtime_error& e) {
            co_return e.what();
        }
        co_return "no error";
    };
    const std::string error = loop.run_until_complete(body(foreign));
    EXPECT_NE(error.find("got Future <Task pending name='Task-1'"), std::string::npos) << error;
    EXPECT_NE(error.find("attached to a different loop"), std::string::npos) << error;
    EXPECT_EQ(other.run_until_complete(foreign), 1);
}

TEST(FutureOtherLoop, AFutureOfADestroyedLoopIsRefused) {
    std::optional<future<int>> orphan;
    {
        event_loop gone;
        orphan.emplace(gone);
    }
    event_loop loop;
    auto body = [](future<int> f) -> pyco::coroutine<std::string> {
        try {
            co_await f;
        } catch (const pyco::runtime_error& e) {
            co_return e.what();
        }
        co_return "no error";
    };
    const std::string error = loop.run_until_complete(body(*orphan));
    EXPECT_NE(error.find("got Future <Future pending> attached to a different loop"), std::string::npos) << error;
}

}  // namespace
