// gather: CPython's GatherTestsBase, FutureGatherTests, CoroutineGatherTests
// and the gather cancellation cases of test_asyncio/test_tasks.py. Left out:
// the loop= argument, the PYTHONASYNCIODEBUG env test, repr formats.
#include <pyco/gather.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include <pyco/detail/pointer_set.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using pyco::future;

pyco::loop_options vt{.virtual_time = true};

// test_utils.run_briefly: let queued callbacks (and those they queue) run.
coroutine<void> run_briefly() {
    for (int i = 0; i < 4; ++i) co_await pyco::sleep(0s);
}

template <class T>
coroutine<T> await_it(future<T> f) {
    co_return co_await f;
}

coroutine<int> value_after(std::chrono::milliseconds d, int v) {
    co_await pyco::sleep(d);
    co_return v;
}

template <class E>
bool holds(const std::exception_ptr& e) {
    return pyco::exception_group::matches<E>(e);
}

// test_success / test_result_exception_success
TEST(Gather, ResultsComeInArgumentOrderOnceAllAreDone) {
    for (bool re : {false, true}) {
        auto body = [re]() -> coroutine<void> {
            auto& loop = pyco::get_running_loop();
            future<int> a(loop), b(loop), c(loop);
            int calls = 0;
            auto check = [&](auto g) -> coroutine<std::vector<int>> {
                g.add_done_callback([&](auto&) { ++calls; });
                b.set_result(1);
                a.set_result(2);
                co_await run_briefly();
                EXPECT_EQ(calls, 0);
                EXPECT_FALSE(g.done());
                c.set_result(3);
                co_await run_briefly();
                EXPECT_EQ(calls, 1);
                std::vector<int> out;
                std::apply([&](auto&... r) { (out.push_back(pyco::outcome<int>(r).value()), ...); }, g.result());
                co_return out;
            };
            std::vector<int> got;
            if (re) {
                got = co_await check(pyco::gather(pyco::return_exceptions, a, b, c));
            } else {
                got = co_await check(pyco::gather(a, b, c));
            }
            EXPECT_EQ(got, (std::vector<int>{2, 1, 3}));
        };
        pyco::run(body());
    }
}

// test_one_exception
TEST(Gather, FirstExceptionFailsTheGatherAndLaterOnesDoNothing) {
    auto body = []() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        future<int> a(loop), b(loop), c(loop), d(loop), e(loop);
        auto g = pyco::gather(a, b, c, d, e);
        int calls = 0;
        g.add_done_callback([&](auto&) { ++calls; });
        auto exc = std::make_exception_ptr(pyco::value_error("zero division"));
        a.set_result(1);
        b.set_exception(exc);
        co_await run_briefly();
        EXPECT_TRUE(g.done());
        EXPECT_EQ(calls, 1);
        EXPECT_EQ(g.exception(), exc);  // the very exception object
        c.set_result(3);  // does nothing
        d.cancel();
        e.set_exception(pyco::runtime_error("x"));
        co_await run_briefly();
        EXPECT_EQ(calls, 1);
        EXPECT_EQ(g.exception(), exc);
        e.exception();
    };
    pyco::run(body());
}

// test_return_exceptions
TEST(Gather, ReturnExceptionsPutsFailuresInTheirPlaces) {
    auto body = []() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        future<int> a(loop), b(loop), c(loop), d(loop);
        auto g = pyco::gather(pyco::return_exceptions, a, b, c, d);
        auto exc = std::make_exception_ptr(pyco::value_error("zde"));
        auto exc2 = std::make_exception_ptr(pyco::runtime_error("rte"));
        b.set_result(1);
        c.set_exception(exc);
        a.set_result(3);
        co_await run_briefly();
        EXPECT_FALSE(g.done());
        d.set_exception(exc2);
        auto [ra, rb, rc, rd] = co_await g;
        EXPECT_EQ(ra.value(), 3);
        EXPECT_EQ(rb.value(), 1);
        EXPECT_EQ(rc.exception(), exc);
        EXPECT_EQ(rd.exception(), exc2);
        EXPECT_THROW(rc.value(), pyco::value_error);
    };
    pyco::run(body());
}

// test_constructor_empty_sequence
TEST(Gather, EmptyGatherIsDoneAtOnce) {
    auto body = []() -> coroutine<void> {
        auto g = pyco::gather();
        EXPECT_TRUE(g.done());
        static_assert(std::is_same_v<decltype(g.result()), std::tuple<>&>);
        std::vector<future<int>> none;
        auto gv = pyco::gather(none);
        EXPECT_TRUE(gv.done());
        EXPECT_TRUE(gv.result().empty());
        auto gr = pyco::gather(pyco::return_exceptions, none);
        EXPECT_TRUE(gr.done());
        std::vector<int> v = co_await gv;
        EXPECT_TRUE(v.empty());
    };
    pyco::run(body());
}

// test_constructor_heterogenous_futures
TEST(Gather, FuturesOfDifferentLoopsAreRefused) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop other;
        future<int> mine(pyco::get_running_loop());
        future<int> theirs(other);
        EXPECT_THROW((void)pyco::gather(mine, theirs), pyco::value_error);
        co_return;
    };
    pyco::run(body());
}

// A child whose loop was destroyed is on no loop: refused, never
// dereferenced (its loop pointer is null).
TEST(Gather, AFutureOfADestroyedLoopIsRefused) {
    std::optional<pyco::event_loop> gone(std::in_place);
    future<int> orphan(*gone);
    gone.reset();
    auto body = [&]() -> coroutine<void> {
        future<int> mine(pyco::get_running_loop());
        EXPECT_THROW((void)pyco::gather(mine, orphan), pyco::value_error);
        EXPECT_THROW((void)pyco::gather(orphan, mine), pyco::value_error);
        EXPECT_THROW((void)pyco::gather(orphan), pyco::value_error);
        co_return;
    };
    pyco::run(body());
}

// test_constructor_homogenous_futures: the gather belongs to its children's loop
TEST(Gather, GatherBelongsToItsChildrensLoop) {
    pyco::event_loop other;
    std::vector<future<int>> children{future<int>(other), future<int>(other)};
    auto g = pyco::gather(children);
    EXPECT_EQ(&g.get_loop(), &other);
    EXPECT_FALSE(g.done());
    children[0].set_result(1);
    children[1].set_result(2);
    auto tick = []() -> coroutine<void> { co_await run_briefly(); };
    other.run_until_complete(tick());
    EXPECT_EQ(g.result(), (std::vector<int>{1, 2}));
}

// test_one_cancellation
TEST(Gather, ACancelledChildFailsTheGatherWhichIsNotCancelled) {
    auto body = []() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        future<int> a(loop), b(loop), c(loop), d(loop), e(loop);
        auto g = pyco::gather(a, b, c, d, e);
        a.set_result(1);
        b.cancel("child cancelled");
        co_await run_briefly();
        EXPECT_TRUE(g.done());
        EXPECT_FALSE(g.cancelled());
        std::exception_ptr ex = g.exception();
        EXPECT_TRUE(holds<pyco::cancelled_error>(ex));
        try {
            std::rethrow_exception(ex);
        } catch (const pyco::cancelled_error& err) {
            EXPECT_STREQ(err.what(), "child cancelled");
        }
        c.set_result(3);  // does nothing
        d.cancel();
        e.set_exception(pyco::runtime_error("x"));
        e.exception();
    };
    pyco::run(body());
}

// test_result_exception_one_cancellation
TEST(Gather, ReturnExceptionsPutsCancellationsInTheirPlaces) {
    auto body = []() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        std::vector<future<int>> f;
        for (int i = 0; i < 6; ++i) f.emplace_back(loop);
        auto g = pyco::gather(pyco::return_exceptions, f);
        f[0].set_result(1);
        auto zde = std::make_exception_ptr(pyco::value_error("zde"));
        f[1].set_exception(zde);
        f[2].cancel();
        co_await run_briefly();
        EXPECT_FALSE(g.done());
        f[3].set_result(3);
        f[4].cancel("bye");
        auto rte = std::make_exception_ptr(pyco::runtime_error("rte"));
        f[5].set_exception(rte);
        std::vector<pyco::outcome<int>> res = co_await g;
        if (res.size() != 6u) {
            ADD_FAILURE() << res.size();
            co_return;
        }
        EXPECT_EQ(res[0].value(), 1);
        EXPECT_EQ(res[1].exception(), zde);
        EXPECT_TRUE(res[2].holds_exception<pyco::cancelled_error>());
        EXPECT_EQ(res[3].value(), 3);
        EXPECT_TRUE(res[4].holds_exception<pyco::cancelled_error>());
        try {
            res[4].value();
        } catch (const pyco::cancelled_error& e) {
            EXPECT_STREQ(e.what(), "bye");
        }
        EXPECT_EQ(res[5].exception(), rte);
    };
    pyco::run(body());
}

// CoroutineGatherTests.test_success: coroutines become tasks
TEST(Gather, CoroutinesRunConcurrentlyAsTasks) {
    auto body = []() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        const auto t0 = loop.time();
        auto [a, b, c] = co_await pyco::gather(value_after(30ms, 1), value_after(10ms, 2), value_after(20ms, 3));
        EXPECT_EQ(loop.time() - t0, std::chrono::milliseconds(30));  // side by side, not 60ms
        EXPECT_EQ(a, 1);
        EXPECT_EQ(b, 2);
        EXPECT_EQ(c, 3);
    };
    pyco::run(body(), vt);
}

TEST(Gather, MixedAwaitablesAndVoidResults) {
    auto body = []() -> coroutine<void> {
        auto t = pyco::create_task(value_after(5ms, 7));
        auto nothing = []() -> coroutine<void> { co_await pyco::sleep(1ms); };
        auto r = co_await pyco::gather(t, nothing(), pyco::sleep(2ms), value_after(1ms, 8));
        static_assert(std::is_same_v<decltype(r), std::tuple<int, std::monostate, std::monostate, int>>);
        EXPECT_EQ(std::get<0>(r), 7);
        EXPECT_EQ(std::get<3>(r), 8);
        std::vector<coroutine<void>> voids;
        voids.push_back(nothing());
        voids.push_back(nothing());
        std::vector<std::monostate> vr = co_await pyco::gather(voids);
        EXPECT_EQ(vr.size(), 2u);
        auto inner = pyco::gather(value_after(1ms, 1), value_after(2ms, 2));
        auto [nested, last] = co_await pyco::gather(inner, value_after(1ms, 3));
        EXPECT_EQ(nested, std::make_tuple(1, 2));
        EXPECT_EQ(last, 3);
    };
    pyco::run(body(), vt);
}

// test_duplicate_coroutines (with tasks: a C++ coroutine is passed once)
TEST(Gather, ADuplicateChildCountsOnce) {
    auto body = []() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        future<std::string> c(loop), d(loop);
        auto g = pyco::gather(c, c, d, c);
        c.set_result("abc");
        co_await run_briefly();
        EXPECT_FALSE(g.done());  // one of two distinct children done, not three of four
        d.set_result("def");
        auto r = co_await g;
        EXPECT_EQ(r, std::make_tuple(std::string("abc"), std::string("abc"), std::string("def"), std::string("abc")));
    };
    pyco::run(body());
}

// test_cancellation_broadcast
TEST(GatherCancel, CancellingTheAwaitingTaskCancelsEveryChild) {
    auto body = []() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        int proof = 0;
        future<void> waiter(loop);
        auto inner = [](future<void> w, int& p) -> coroutine<void> {
            co_await w;
            p += 1;
        };
        auto child1 = pyco::create_task(inner(waiter, proof));
        auto child2 = pyco::create_task(inner(waiter, proof));
        pyco::gather_future<std::tuple<std::monostate, std::monostate>> gatherer;
        auto outer = [](auto c1, auto c2, auto& g, int& p) -> coroutine<void> {
            g = pyco::gather(c1, c2);
            co_await g;
            p += 100;
        };
        auto f = pyco::create_task(outer(child1, child2, gatherer, proof));
        co_await pyco::sleep(0s);
        EXPECT_TRUE(f.cancel());
        EXPECT_THROW(co_await f, pyco::cancelled_error);
        EXPECT_FALSE(gatherer.cancel());
        EXPECT_TRUE(waiter.cancelled());
        EXPECT_TRUE(child1.cancelled());
        EXPECT_TRUE(child2.cancelled());
        EXPECT_FALSE(gatherer.cancelled());  // it failed with cancelled_error
        co_await run_briefly();
        EXPECT_EQ(proof, 0);
    };
    pyco::run(body());
}

// test_exception_marking: a second failure after the gather is done is
// marked retrieved, so nothing reports it.
TEST(Gather, LaterFailuresAreMarkedRetrieved) {
    std::vector<std::string> reports;
    auto body = [&]() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        loop.set_exception_handler(
            [&](pyco::event_loop&, const pyco::exception_context& c) { reports.push_back(c.message); });
        future<void> a(loop), b(loop);
        auto inner = [](future<void> f) -> coroutine<void> {
            co_await f;
            throw pyco::runtime_error("should not be ignored");
        };
        auto outer = [](auto g) -> coroutine<void> { co_await g; };
        auto f = pyco::create_task(outer(pyco::gather(inner(a), inner(b))));
        co_await pyco::sleep(0s);
        a.set_result();
        co_await run_briefly();
        b.set_result();
        co_await run_briefly();
        EXPECT_TRUE(holds<pyco::runtime_error>(f.exception()));
    };
    pyco::run(body());
    EXPECT_TRUE(reports.empty()) << reports.front();
}

TEST(Gather, AnUnobservedFailedGatherIsReported) {
    std::vector<std::string> reports;
    auto body = [&]() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        loop.set_exception_handler(
            [&](pyco::event_loop&, const pyco::exception_context& c) { reports.push_back(c.message); });
        auto failing = []() -> coroutine<int> {
            throw pyco::value_error("lost");
            co_return 0;
        };
        {
            auto g = pyco::gather(failing());
            co_await run_briefly();
            EXPECT_TRUE(g.done());
        }
        co_await run_briefly();
    };
    pyco::run(body());
    EXPECT_EQ(reports, std::vector<std::string>{"Future exception was never retrieved"});
}

// test_cancel_gather_1: "gather refuses cancel once children are done"
TEST(GatherCancel, RefusedOnceEveryChildIsDone) {
    auto body = []() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        future<int> fut(loop);
        // The task in between makes the gather finish an iteration after fut.
        auto g = pyco::gather(await_it(fut));
        co_await pyco::sleep(0s);  // the child now waits on fut
        std::optional<bool> cancel_result;
        fut.add_done_callback([&](future<int>&) { cancel_result = g.cancel(); });
        fut.set_result(42);
        auto r = co_await g;
        EXPECT_EQ(cancel_result, false);
        EXPECT_FALSE(g.cancelled());
        EXPECT_EQ(std::get<0>(r), 42);
    };
    pyco::run(body());
}

// test_cancel_gather_2: the cancel message reaches the gather's caller,
// return_exceptions notwithstanding
TEST(GatherCancel, CancelMessagePropagatesEvenWithReturnExceptions) {
    for (std::string msg : {"", "my message"}) {
        auto body = [msg]() -> coroutine<std::string> {
            auto test = []() -> coroutine<void> {
                for (int t = 0; t < 20; ++t) {
                    co_await pyco::gather(pyco::return_exceptions, pyco::sleep(50ms));
                }
            };
            auto qwe = pyco::create_task(test());
            co_await pyco::sleep(210ms);
            qwe.cancel(msg);
            try {
                co_await qwe;
            } catch (const pyco::cancelled_error& e) {
                co_return std::string("cancelled:") + e.what();
            }
            co_return "gather() does not propagate CancelledError raised by inner task to the gather() caller";
        };
        EXPECT_EQ(pyco::run(body(), vt), "cancelled:" + msg);
    }
}

// bpo-32684: children that absorb the cancellation still leave the gather
// cancelled (return_exceptions or not).
TEST(GatherCancel, ChildrenAbsorbingTheCancelStillFailTheGather) {
    for (bool re : {false, true}) {
        auto body = [re]() -> coroutine<void> {
            auto stubborn = []() -> coroutine<int> {
                try {
                    co_await pyco::sleep(1h);
                } catch (const pyco::cancelled_error&) {
                    co_return 5;
                }
                co_return 0;
            };
            auto c1 = pyco::create_task(stubborn());
            auto c2 = pyco::create_task(stubborn());
            auto waiter = [](auto g) -> coroutine<void> { co_await g; };
            coroutine<void> w = re ? waiter(pyco::gather(pyco::return_exceptions, c1, c2)) : waiter(pyco::gather(c1, c2));
            auto t = pyco::create_task(std::move(w));
            co_await pyco::sleep(1ms);
            EXPECT_TRUE(t.cancel());
            EXPECT_THROW(co_await t, pyco::cancelled_error);
            EXPECT_TRUE(t.cancelled());
            EXPECT_EQ(c1.result(), 5);  // they finished normally
            EXPECT_EQ(c2.result(), 5);
        };
        pyco::run(body(), vt);
    }
}

// The outer task is not cancelled when a child is: it sees cancelled_error
// from the gather, and may catch it and go on.
TEST(GatherCancel, AChildCancelledElsewhereDoesNotCancelTheOthers) {
    auto body = []() -> coroutine<void> {
        auto a = pyco::create_task(value_after(10ms, 1));
        auto b = pyco::create_task(value_after(20ms, 2));
        auto g = pyco::gather(a, b);
        co_await pyco::sleep(1ms);
        a.cancel();
        bool caught = false;
        try {
            co_await g;
        } catch (const pyco::cancelled_error&) {
            caught = true;
        }
        EXPECT_TRUE(caught);
        EXPECT_EQ(pyco::current_task().cancelling(), 0);
        EXPECT_FALSE(b.done());
        EXPECT_EQ(co_await b, 2);
    };
    pyco::run(body(), vt);
}

// The cancel reaches the children depth first and in argument order, as
// CPython's recursion does (it is a loop in pyco: detail/cancel_walk.hpp),
// so the futures at the bottom are cancelled, and their callbacks queued,
// in that order. CPython 3.12: ['f1', 'f2', 'f3'], cancelling() 1 and 1.
TEST(GatherCancel, ReachesTheChildrenDepthFirstInArgumentOrder) {
    auto body = []() -> coroutine<void> {
        auto& loop = pyco::get_running_loop();
        future<int> f1(loop), f2(loop), f3(loop);
        std::vector<std::string> order;
        f1.add_done_callback([&order](future<int>&) { order.push_back("f1"); });
        f2.add_done_callback([&order](future<int>&) { order.push_back("f2"); });
        f3.add_done_callback([&order](future<int>&) { order.push_back("f3"); });
        auto inner = [](future<int> a, future<int> b) -> coroutine<int> {
            auto [x, y] = co_await pyco::gather(a, b);
            co_return x + y;
        };
        auto t1 = pyco::create_task(inner(f1, f2));
        auto t2 = pyco::create_task(await_it(f3));
        auto g = pyco::gather(t1, t2);
        co_await run_briefly();
        EXPECT_TRUE(g.cancel());
        co_await run_briefly();
        EXPECT_EQ(order, (std::vector<std::string>{"f1", "f2", "f3"}));
        EXPECT_EQ(t1.cancelling(), 1);
        EXPECT_EQ(t2.cancelling(), 1);
        EXPECT_TRUE(t1.cancelled());
        EXPECT_TRUE(t2.cancelled());
        EXPECT_THROW(co_await g, pyco::cancelled_error);
    };
    pyco::run(body());
}

TEST(Gather, FailureLeavesTheOtherChildrenRunning) {
    auto body = []() -> coroutine<void> {
        auto failing = []() -> coroutine<int> {
            co_await pyco::sleep(1ms);
            throw pyco::value_error("first");
        };
        auto slow = pyco::create_task(value_after(10ms, 9));
        EXPECT_THROW(co_await pyco::gather(failing(), slow), pyco::value_error);
        EXPECT_FALSE(slow.done());
        EXPECT_EQ(co_await slow, 9);
    };
    pyco::run(body(), vt);
}

// A task awaiting a gather, cancelled twice: the second cancel finds the
// children already done, so it is thrown in when the gather's callback wakes
// the task. CPython's Task.__wakeup reads the gather's result first, so its
// cancelled_error counts as retrieved; pyco used to report "Future exception
// was never retrieved" for it.
TEST(GatherCancel, CancellingTheAwaitingTaskTwiceReportsNothing) {
    std::vector<std::string> msgs;
    testing::internal::CaptureStderr();
    {
        pyco::event_loop loop(vt);
        loop.set_exception_handler(
            [&](pyco::event_loop&, const pyco::exception_context& c) { msgs.push_back(c.message); });
        auto main = []() -> coroutine<bool> {
            auto outer = pyco::create_task([]() -> coroutine<void> {
                auto a = pyco::create_task(value_after(1s, 1));
                auto b = pyco::create_task(value_after(1s, 2));
                co_await pyco::gather(a, b);
            }());
            co_await pyco::sleep(0s);
            outer.cancel();
            co_await pyco::sleep(0s);  // the children finish cancelling
            outer.cancel();
            bool cancelled = false;
            try {
                co_await outer;
            } catch (const pyco::cancelled_error&) {
                cancelled = true;
            }
            co_await run_briefly();
            co_return cancelled;
        };
        EXPECT_TRUE(loop.run_until_complete(main()));
        loop.close();
    }
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_TRUE(msgs.empty()) << msgs.front();
    EXPECT_EQ(err, "");
}

// ---------------------------------------------------------------- scale
// Set-up must be linear in the number of children (a scan for duplicates
// made it quadratic: 92 s for 10^6). Checked by counting, not timing: every
// slot a pointer_set looks at is counted.

// Addresses all alike in their low bits (page-aligned, here not even real)
// still spread out: about one slot looked at per insert.
TEST(PointerSet, AlignedAddressesSpreadOut) {
    constexpr std::size_t n = 100'000;
    const auto before = pyco::detail::pointer_set::probes();
    {
        pyco::detail::pointer_set set(n);
        for (std::size_t i = 0; i < n; ++i) {
            EXPECT_TRUE(set.insert(reinterpret_cast<const void*>((i + 1) * 4096)));
        }
        for (std::size_t i = 0; i < n; i += 7) {
            EXPECT_FALSE(set.insert(reinterpret_cast<const void*>((i + 1) * 4096)));
        }
    }
    const std::uint64_t probes = pyco::detail::pointer_set::probes() - before;
    EXPECT_LE(probes, 2 * (n + n / 7 + 1));
}

TEST(PointerSet, SmallSetsNeedNoHeap) {
    pyco::detail::pointer_set set(3);
    int a = 0, b = 0;
    EXPECT_TRUE(set.insert(&a));
    EXPECT_TRUE(set.insert(&b));
    EXPECT_FALSE(set.insert(&a));
}

template <class G>
auto await_gather(G g) -> coroutine<typename G::value_type> {
    co_return co_await g;
}

// 300,000 futures, each passed twice (the second time in reverse order):
// linear set-up, and each duplicate gets its result twice, as in CPython.
TEST(GatherScale, ManyChildrenWithDuplicatesSetUpLinearly) {
    constexpr std::size_t n = 300'000;
    pyco::event_loop loop;
    std::vector<future<int>> distinct;
    distinct.reserve(n);
    for (std::size_t i = 0; i < n; ++i) distinct.emplace_back(loop);
    std::vector<future<int>> children(distinct);
    children.insert(children.end(), distinct.rbegin(), distinct.rend());

    const auto before = pyco::detail::pointer_set::probes();
    auto g = pyco::gather(children);
    const std::uint64_t probes = pyco::detail::pointer_set::probes() - before;
    EXPECT_GE(probes, children.size());  // each child looked up once...
    EXPECT_LE(probes, 3 * children.size());  // ...in about one slot

    for (std::size_t i = 0; i + 1 < n; ++i) distinct[i].set_result(static_cast<int>(i));
    loop.run_until_complete(run_briefly());
    EXPECT_FALSE(g.done());  // n - 1 of n distinct children done, not 2n - 2 of 2n
    distinct[n - 1].set_result(static_cast<int>(n - 1));
    std::vector<int> r = loop.run_until_complete(await_gather(g));
    ASSERT_EQ(r.size(), 2 * n);
    for (std::size_t i = 0; i < n; ++i) {
        ASSERT_EQ(r[i], static_cast<int>(i));
        ASSERT_EQ(r[2 * n - 1 - i], static_cast<int>(i));
    }
    loop.close();
}

}  // namespace
