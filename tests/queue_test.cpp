// pyco::queue, priority_queue, lifo_queue: CPython's test_queues.py
// (Lib/test/test_asyncio/test_queues.py, 3.13 with shutdown). Left out as
// Python-only: repr/str/_format, GenericAlias, float maxsize, and
// test_get_with_putters (it appends a bare future to the private _putters).
#include <pyco/queue.hpp>

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using ints = std::vector<int>;

pyco::loop_options vt{.virtual_time = true};

template <class Q>
coroutine<typename Q::value_type> get_one(Q& q) {
    co_return co_await q.get();
}
template <class Q>
coroutine<void> put_one(Q& q, typename Q::value_type v) {
    co_await q.put(std::move(v));
}

// test_empty, test_full
TEST(Queue, EmptyAndFull) {
    auto body = []() -> coroutine<void> {
        pyco::queue<int> q;
        EXPECT_TRUE(q.empty());
        co_await q.put(1);
        EXPECT_FALSE(q.empty());
        const int v = co_await q.get();
        EXPECT_EQ(v, 1);
        EXPECT_TRUE(q.empty());
        EXPECT_FALSE(q.full());
        pyco::queue<int> q1(1);
        co_await q1.put(1);
        EXPECT_TRUE(q1.full());
    };
    pyco::run(body(), vt);
}

// test_order (Queue, LifoQueue, PriorityQueue)
TEST(Queue, OrderOfEachKind) {
    auto body = []() -> coroutine<void> {
        pyco::queue<int> f;
        pyco::lifo_queue<int> l;
        pyco::priority_queue<int> p;
        for (int i : {1, 3, 2}) {
            co_await f.put(i);
            co_await l.put(i);
            co_await p.put(i);
        }
        ints a, b, c;
        for (int i = 0; i < 3; ++i) {
            a.push_back(co_await f.get());
            b.push_back(co_await l.get());
            c.push_back(co_await p.get());
        }
        EXPECT_EQ(a, (ints{1, 3, 2}));
        EXPECT_EQ(b, (ints{2, 3, 1}));
        EXPECT_EQ(c, (ints{1, 2, 3}));
    };
    pyco::run(body(), vt);
}

// heapq's order for equal keys (ties are not FIFO in CPython either).
TEST(PriorityQueue, TiesComeOutInHeapqOrder) {
    using item = std::pair<int, int>;
    struct by_key {
        bool operator()(const item& a, const item& b) const { return a.first < b.first; }
    };
    pyco::priority_queue<item, by_key> q;
    for (int i = 0; i < 6; ++i) q.put_nowait(item{i % 2, i});
    std::vector<int> order;
    while (!q.empty()) order.push_back(q.get_nowait().second);
    // CPython 3.11, items compared by key only (heappush i%2, then heappop):
    EXPECT_EQ(order, (ints{0, 2, 4, 5, 3, 1}));
    order.clear();
    for (int i : {5, 1, 4, 1, 5, 9, 2, 6, 5, 3}) q.put_nowait(item{i % 3, i});
    while (!q.empty()) order.push_back(q.get_nowait().second);
    EXPECT_EQ(order, (ints{9, 6, 3, 1, 4, 1, 5, 2, 5, 5}));
}

// test_maxsize
TEST(Queue, PutBlocksAtMaxsize) {
    auto body = []() -> coroutine<void> {
        pyco::queue<int> q(2);
        EXPECT_EQ(q.maxsize(), 2);
        ints have_been_put;
        auto putter = [](pyco::queue<int>& qq, ints& h) -> coroutine<bool> {
            for (int i = 0; i < 3; ++i) {
                co_await qq.put(i);
                h.push_back(i);
            }
            co_return true;
        };
        auto t = pyco::create_task(putter(q, have_been_put));
        for (int i = 0; i < 2; ++i) co_await pyco::sleep(0s);
        EXPECT_EQ(have_been_put, (ints{0, 1}));
        const int a = co_await q.get();
        EXPECT_EQ(a, 0);
        co_await pyco::sleep(0s);
        EXPECT_EQ(have_been_put, (ints{0, 1, 2}));
        const int b = co_await q.get();
        const int c = co_await q.get();
        EXPECT_EQ(b, 1);
        EXPECT_EQ(c, 2);
        EXPECT_TRUE(t.done() && t.result());
    };
    pyco::run(body(), vt);
}

// test_blocking_get_wait
TEST(Queue, GetWaitsForAPut) {
    auto body = []() -> coroutine<void> {
        pyco::queue<int> q;
        auto t = pyco::create_task(get_one(q));
        co_await pyco::sleep(0s);
        EXPECT_FALSE(t.done());
        pyco::get_running_loop().call_later(10ms, [&q] { q.put_nowait(1); });
        const int v = co_await t;
        EXPECT_EQ(v, 1);
    };
    pyco::run(body(), vt);
}

// test_nonblocking_get, test_nonblocking_get_exception, test_nonblocking_put_exception
TEST(Queue, NowaitVariantsRaiseQueueEmptyAndQueueFull) {
    pyco::queue<int> q(1);
    EXPECT_THROW(q.get_nowait(), pyco::queue_empty);
    q.put_nowait(1);
    EXPECT_THROW(q.put_nowait(2), pyco::queue_full);
    EXPECT_EQ(q.get_nowait(), 1);
    pyco::queue<std::string> s(1);
    s.put_nowait("a");
    std::string keep = "kept";
    EXPECT_THROW(s.put_nowait(std::move(keep)), pyco::queue_full);
    EXPECT_EQ(keep, "kept");  // not moved from on failure
}

// test_get_cancelled_race
TEST(Queue, CancelledGetterDoesNotSwallowTheNextItem) {
    auto body = []() -> coroutine<void> {
        pyco::queue<std::string> q;
        auto t1 = pyco::create_task(get_one(q));
        auto t2 = pyco::create_task(get_one(q));
        co_await pyco::sleep(0s);
        t1.cancel();
        co_await pyco::sleep(0s);
        EXPECT_TRUE(t1.done());
        co_await q.put("a");
        co_await pyco::sleep(0s);
        const std::string v = co_await t2;
        EXPECT_EQ(v, "a");
    };
    pyco::run(body(), vt);
}

// test_get_with_waiting_putters
TEST(Queue, GetLetsWaitingPuttersInInOrder) {
    auto body = []() -> coroutine<void> {
        pyco::queue<std::string> q(1);
        auto a = pyco::create_task(put_one(q, "a"));
        auto b = pyco::create_task(put_one(q, "b"));
        const std::string x = co_await q.get();
        const std::string y = co_await q.get();
        EXPECT_EQ(x, "a");
        EXPECT_EQ(y, "b");
        co_await a;
        co_await b;
    };
    pyco::run(body(), vt);
}

// test_why_are_getters_waiting, test_why_are_putters_waiting
TEST(Queue, ProducerAndConsumerThroughASmallQueueFinish) {
    auto body = []() -> coroutine<void> {
        pyco::queue<int> q(1);
        auto consumer = [](pyco::queue<int>& qq, int n) -> coroutine<int> {
            int s = 0;
            for (int i = 0; i < n; ++i) s += co_await qq.get();
            co_return s;
        };
        auto producer = [](pyco::queue<int>& qq, int n) -> coroutine<void> {
            for (int i = 0; i < n; ++i) co_await qq.put(i);
        };
        auto p = pyco::create_task(producer(q, 5));
        auto c = pyco::create_task(consumer(q, 5));
        co_await p;
        const int s = co_await c;
        EXPECT_EQ(s, 10);

        pyco::queue<int> q2(2);
        auto getter = [](pyco::queue<int>& qq) -> coroutine<void> {
            co_await pyco::sleep(0s);
            const std::size_t n = qq.qsize();
            for (std::size_t i = 0; i < n; ++i) qq.get_nowait();
        };
        auto g = pyco::create_task(getter(q2));
        std::vector<pyco::task<void>> ps;
        for (int i = 0; i < 4; ++i) ps.push_back(pyco::create_task(put_one(q2, i)));
        co_await g;
        for (auto& t : ps) co_await t;
        EXPECT_EQ(q2.qsize(), 2u);
    };
    pyco::run(body(), vt);
}

// test_cancelled_getters_not_being_held_in_self_getters
TEST(Queue, CancelledGetterLeavesTheGetters) {
    auto body = []() -> coroutine<void> {
        pyco::queue<int> q(5);
        auto t = pyco::create_task(get_one(q));
        co_await pyco::sleep(0s);
        EXPECT_EQ(q.getters(), 1u);
        t.cancel();
        EXPECT_THROW(co_await t, pyco::cancelled_error);
        EXPECT_EQ(q.getters(), 0u);
    };
    pyco::run(body(), vt);
}

// test_blocking_put_wait
TEST(Queue, PutWaitsForAGet) {
    auto body = []() -> coroutine<void> {
        pyco::queue<int> q(1);
        bool finished = false;
        auto queue_put = [](pyco::queue<int>& qq, bool& f) -> coroutine<void> {
            co_await qq.put(1);
            co_await qq.put(2);
            f = true;
        };
        pyco::get_running_loop().call_later(10ms, [&q] { q.get_nowait(); });
        auto t = pyco::create_task(queue_put(q, finished));
        co_await pyco::sleep(0s);
        EXPECT_FALSE(finished);
        co_await t;
        EXPECT_TRUE(finished);
    };
    pyco::run(body(), vt);
}

// test_get_cancel_drop_one_pending_reader: a getter woken by put_nowait()
// and cancelled before it ran must not lose the item.
TEST(Queue, CancelledWokenGetterLeavesItsItemInTheQueue) {
    auto body = []() -> coroutine<void> {
        pyco::queue<int> q;
        auto reader = pyco::create_task(get_one(q));
        co_await pyco::sleep(0s);
        q.put_nowait(1);
        q.put_nowait(2);
        reader.cancel();
        int result = 0;
        bool cancelled = false;
        try {
            result = co_await reader;
        } catch (const pyco::cancelled_error&) {
            cancelled = true;
        }
        if (cancelled) {
            auto again = pyco::create_task(get_one(q));
            result = co_await again;
        }
        EXPECT_EQ(result, 1);  // 2 would mean 1 was dropped
    };
    pyco::run(body(), vt);
}

// test_get_cancel_drop_many_pending_readers
TEST(Queue, CancelledWokenGetterPassesTheWakeUpOn) {
    auto body = []() -> coroutine<void> {
        pyco::queue<int> q;
        auto r1 = pyco::create_task(get_one(q));
        auto r2 = pyco::create_task(get_one(q));
        auto r3 = pyco::create_task(get_one(q));
        co_await pyco::sleep(0s);
        q.put_nowait(1);
        q.put_nowait(2);
        r1.cancel();
        EXPECT_THROW(co_await r1, pyco::cancelled_error);
        const int b = co_await r3;
        const int a = co_await r2;
        EXPECT_EQ((std::set<int>{a, b}), (std::set<int>{1, 2}));
    };
    pyco::run(body(), vt);
}

// test_put_cancel_drop
TEST(Queue, CancelledWokenPutterPutsNothing) {
    auto body = []() -> coroutine<void> {
        pyco::queue<int> q(1);
        q.put_nowait(1);
        auto writer = pyco::create_task(put_one(q, 2));
        co_await pyco::sleep(0s);
        EXPECT_EQ(q.get_nowait(), 1);
        writer.cancel();
        bool cancelled = false;
        try {
            co_await writer;
        } catch (const pyco::cancelled_error&) {
            cancelled = true;
        }
        if (cancelled) {
            auto again = pyco::create_task(put_one(q, 2));
            co_await again;
        }
        EXPECT_EQ(q.get_nowait(), 2);
        EXPECT_EQ(q.qsize(), 0u);
    };
    pyco::run(body(), vt);
}

// test_put_cancelled, test_put_with_waiting_getters
TEST(Queue, PutWakesAWaitingGetter) {
    auto body = []() -> coroutine<void> {
        pyco::queue<std::string> q;
        auto t = pyco::create_task(get_one(q));
        co_await pyco::sleep(0s);
        co_await q.put("a");
        const std::string v = co_await t;
        EXPECT_EQ(v, "a");
    };
    pyco::run(body(), vt);
}

// test_put_cancelled_race
TEST(Queue, CancelledPutterDoesNotTakeTheSlot) {
    auto body = []() -> coroutine<void> {
        pyco::queue<std::string> q(1);
        auto put_a = pyco::create_task(put_one(q, "a"));
        auto put_b = pyco::create_task(put_one(q, "b"));
        auto put_c = pyco::create_task(put_one(q, "X"));
        co_await pyco::sleep(0s);
        EXPECT_TRUE(put_a.done());
        EXPECT_FALSE(put_b.done());
        put_c.cancel();
        co_await pyco::sleep(0s);
        EXPECT_TRUE(put_c.done());
        EXPECT_EQ(q.get_nowait(), "a");
        co_await pyco::sleep(0s);
        EXPECT_EQ(q.get_nowait(), "b");
        co_await put_b;
    };
    pyco::run(body(), vt);
}

// test_cancelled_puts_not_being_held_in_self_putters,
// test_cancelled_put_silence_value_error_exception
TEST(Queue, CancelledPutterLeavesThePutters) {
    auto body = []() -> coroutine<void> {
        pyco::queue<int> q(1);
        q.put_nowait(1);
        auto t = pyco::create_task(put_one(q, 1));
        co_await pyco::sleep(0s);
        EXPECT_EQ(q.putters(), 1u);
        t.cancel();
        EXPECT_THROW(co_await t, pyco::cancelled_error);
        EXPECT_EQ(q.putters(), 0u);

        auto t2 = pyco::create_task(put_one(q, 1));
        co_await pyco::sleep(0s);
        q.get_nowait();  // pops t2's putter and wakes it
        EXPECT_EQ(q.putters(), 0u);
        t2.cancel();
        EXPECT_THROW(co_await t2, pyco::cancelled_error);
        EXPECT_EQ(q.qsize(), 0u);
    };
    pyco::run(body(), vt);
}

// A get_nowait() between the wake-up and the woken getter's run steals the
// item; the getter waits again (CPython's while-loop in get()).
TEST(Queue, WokenGetterWaitsAgainIfTheItemWasTaken) {
    auto body = []() -> coroutine<void> {
        pyco::queue<int> q;
        auto t = pyco::create_task(get_one(q));
        co_await pyco::sleep(0s);
        q.put_nowait(1);
        EXPECT_EQ(q.qsize(), 1u);  // the item stays until the getter runs
        EXPECT_EQ(q.get_nowait(), 1);
        co_await pyco::sleep(0s);
        EXPECT_FALSE(t.done());
        EXPECT_EQ(q.getters(), 1u);
        q.put_nowait(2);
        const int v = co_await t;
        EXPECT_EQ(v, 2);
    };
    pyco::run(body(), vt);
}

// ---- join and shutdown, for each kind (the _QueueJoinTestMixin and
// _QueueShutdownTestMixin of CPython) ----

template <class Q>
class QueueKinds : public ::testing::Test {};
using kinds = ::testing::Types<pyco::queue<int>, pyco::lifo_queue<int>, pyco::priority_queue<int>>;
TYPED_TEST_SUITE(QueueKinds, kinds);

// test_task_done_underflow
TYPED_TEST(QueueKinds, TaskDoneTooOftenIsAValueError) {
    TypeParam q;
    try {
        q.task_done();
        FAIL() << "no error";
    } catch (const pyco::value_error& e) {
        EXPECT_STREQ(e.what(), "task_done() called too many times");
    }
}

// test_task_done
TYPED_TEST(QueueKinds, JoinWaitsForEveryTaskDone) {
    auto body = []() -> coroutine<void> {
        TypeParam q;
        for (int i = 0; i < 100; ++i) q.put_nowait(i);
        int acc = 0;
        bool running = true;
        auto worker = [](TypeParam& qq, int& a, bool& r) -> coroutine<void> {
            while (r) {
                a += co_await qq.get();
                qq.task_done();
            }
        };
        auto w1 = pyco::create_task(worker(q, acc, running));
        auto w2 = pyco::create_task(worker(q, acc, running));
        co_await q.join();
        EXPECT_EQ(acc, 4950);
        running = false;
        q.put_nowait(0);
        q.put_nowait(0);
        co_await w1;
        co_await w2;
    };
    pyco::run(body(), vt);
}

// test_join_empty_queue
TYPED_TEST(QueueKinds, JoinOnAnEmptyQueueReturnsAtOnce) {
    auto body = []() -> coroutine<void> {
        TypeParam q;
        co_await q.join();
        co_await q.join();
    };
    pyco::run(body(), vt);
}

template <class Q>
coroutine<void> join_of(Q& q) {
    co_await q.join();
}

template <class Q>
void expect_shut(Q& q) {
    EXPECT_THROW(q.put_nowait(1), pyco::queue_shut_down);
    EXPECT_THROW(q.get_nowait(), pyco::queue_shut_down);
}

// test_shutdown_empty
TYPED_TEST(QueueKinds, ShutdownWakesGettersWithQueueShutDown) {
    auto body = []() -> coroutine<void> {
        TypeParam q;
        auto get_task = pyco::create_task(get_one(q));
        co_await pyco::sleep(0s);
        q.shutdown();
        EXPECT_TRUE(q.is_shutdown());
        EXPECT_EQ(q.qsize(), 0u);
        co_await q.join();
        co_await pyco::sleep(0s);
        EXPECT_TRUE(get_task.done());
        EXPECT_THROW(co_await get_task, pyco::queue_shut_down);
        EXPECT_THROW(co_await q.put(1), pyco::queue_shut_down);
        EXPECT_THROW(co_await q.get(), pyco::queue_shut_down);
        expect_shut(q);
    };
    pyco::run(body(), vt);
}

// test_shutdown_nonempty
TYPED_TEST(QueueKinds, ShutdownKeepsItemsForGettersButRefusesPuts) {
    auto body = []() -> coroutine<void> {
        TypeParam q(1);
        q.put_nowait(7);
        auto join_task = pyco::create_task(join_of(q));
        auto put_task = pyco::create_task(put_one(q, 8));
        co_await pyco::sleep(0s);
        EXPECT_FALSE(put_task.done());
        q.shutdown();
        EXPECT_EQ(q.qsize(), 1u);
        co_await pyco::sleep(0s);
        EXPECT_TRUE(put_task.done());
        EXPECT_THROW(co_await put_task, pyco::queue_shut_down);
        const int v = co_await q.get();
        EXPECT_EQ(v, 7);
        co_await pyco::sleep(0s);
        EXPECT_FALSE(join_task.done());
        EXPECT_THROW(co_await q.put(1), pyco::queue_shut_down);
        EXPECT_THROW(co_await q.get(), pyco::queue_shut_down);
        expect_shut(q);
        q.task_done();
        co_await pyco::sleep(0s);
        EXPECT_TRUE(join_task.done());
        co_await join_task;
        EXPECT_THROW(q.task_done(), pyco::value_error);
    };
    pyco::run(body(), vt);
}

// test_shutdown_immediate
TYPED_TEST(QueueKinds, ShutdownImmediateDiscardsItemsAndReleasesJoin) {
    auto body = []() -> coroutine<void> {
        TypeParam q;
        q.put_nowait(1);
        auto join_task = pyco::create_task(join_of(q));
        q.shutdown(true);
        EXPECT_EQ(q.qsize(), 0u);
        co_await pyco::sleep(0s);
        EXPECT_TRUE(join_task.done());
        co_await join_task;
        EXPECT_THROW(co_await q.put(1), pyco::queue_shut_down);
        EXPECT_THROW(co_await q.get(), pyco::queue_shut_down);
        expect_shut(q);
        EXPECT_THROW(q.task_done(), pyco::value_error);
    };
    pyco::run(body(), vt);
}

// test_shutdown_immediate_with_unfinished
TYPED_TEST(QueueKinds, ShutdownImmediateKeepsTasksAlreadyTaken) {
    auto body = []() -> coroutine<void> {
        TypeParam q;
        q.put_nowait(1);
        q.put_nowait(1);
        auto join_task = pyco::create_task(join_of(q));
        const int v = co_await q.get();
        EXPECT_EQ(v, 1);
        q.shutdown(true);
        EXPECT_EQ(q.qsize(), 0u);
        co_await pyco::sleep(0s);
        EXPECT_FALSE(join_task.done());
        expect_shut(q);
        q.task_done();
        EXPECT_THROW(q.task_done(), pyco::value_error);
        co_await pyco::sleep(0s);
        EXPECT_TRUE(join_task.done());
        co_await join_task;
    };
    pyco::run(body(), vt);
}

// Shutdown wakes every blocked putter of a full queue, and they raise.
TYPED_TEST(QueueKinds, ShutdownWakesAllBlockedPutters) {
    auto body = []() -> coroutine<void> {
        TypeParam q(1);
        q.put_nowait(0);
        std::vector<pyco::task<void>> ps;
        for (int i = 0; i < 3; ++i) ps.push_back(pyco::create_task(put_one(q, i)));
        co_await pyco::sleep(0s);
        EXPECT_EQ(q.putters(), 3u);
        q.shutdown();
        for (auto& t : ps) EXPECT_THROW(co_await t, pyco::queue_shut_down);
        EXPECT_EQ(q.qsize(), 1u);
    };
    pyco::run(body(), vt);
}

}  // namespace
