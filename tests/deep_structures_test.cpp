// Deep structures: cancelling and tearing down chains as deep as pyco can
// run. A task chain, a nest of gathers and an await chain, each deeper than
// the 8 MiB default stack could hold one C++ frame per level for: cancel,
// completion and destruction must walk them iteratively.
//
// The depths are CPython-sized workloads (issue 7); they are built by the
// loop itself (one level per step), so nothing here needs a big stack.
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include <pyco/coroutine.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/future.hpp>
#include <pyco/gather.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>

namespace {

using pyco::coroutine;
using pyco::event_loop;
using pyco::future;

constexpr int task_depth = 100'000;    // the 70,000, and more
constexpr int gather_depth = 60'000;   // the 50,000, and more
constexpr int await_depth = 200'000;   // the 100,000, and more

// Lets the loop build a structure: one level per iteration.
coroutine<void> until_built(const int& built, int depth) {
    while (built <= depth) co_await pyco::sleep(std::chrono::seconds(0));
}
coroutine<void> one_step() { co_await pyco::sleep(std::chrono::seconds(0)); }

// ---------------------------------------------------------------- task chain

// Each level is a task awaiting the task of the next level; the last one
// awaits `bottom`.
coroutine<int> task_link(int n, future<int> bottom, int& built) {
    ++built;
    if (n == 0) co_return co_await bottom;
    co_return co_await pyco::create_task(task_link(n - 1, bottom, built));
}

TEST(DeepStructures, CancellingTheTopOfADeepTaskChain) {
    event_loop loop;
    future<int> bottom = loop.create_future<int>();
    int built = 0;
    auto top = loop.create_task(task_link(task_depth, bottom, built));
    loop.run_until_complete(until_built(built, task_depth));
    EXPECT_TRUE(top.cancel("deep"));
    EXPECT_TRUE(bottom.cancelled());
    EXPECT_EQ(top.cancelling(), 1);
    try {
        loop.run_until_complete(top);
        ADD_FAILURE() << "the chain was not cancelled";
    } catch (const pyco::cancelled_error& e) {
        EXPECT_STREQ(e.what(), "deep");
    }
    EXPECT_TRUE(top.cancelled());
    EXPECT_TRUE(pyco::all_tasks(loop).empty());
    loop.close();
}

// The same chain, cancelled a second time while the first cancellation is
// still on its way down: every level counts two requests and the bottom
// future stays cancelled once.
TEST(DeepStructures, CancellingADeepTaskChainTwice) {
    event_loop loop;
    future<int> bottom = loop.create_future<int>();
    int built = 0;
    auto top = loop.create_task(task_link(task_depth, bottom, built));
    loop.run_until_complete(until_built(built, task_depth));
    std::vector<pyco::any_task> tasks = pyco::all_tasks(loop);
    ASSERT_EQ(tasks.size(), static_cast<std::size_t>(task_depth) + 1);
    EXPECT_TRUE(top.cancel());
    EXPECT_TRUE(top.cancel());
    for (const auto& t : tasks) EXPECT_EQ(t.cancelling(), 2);
    EXPECT_THROW(loop.run_until_complete(top), pyco::cancelled_error);
    for (const auto& t : tasks) EXPECT_TRUE(t.cancelled());
    tasks.clear();
    loop.close();
}

// ---------------------------------------------------------------- gather nest

// Each level is a task awaiting a gather of the next level's task.
coroutine<int> gather_link(int n, future<int> bottom, int& built) {
    ++built;
    if (n == 0) co_return co_await bottom;
    auto g = pyco::gather(gather_link(n - 1, bottom, built));
    auto [v] = co_await g;
    co_return v + 1;
}

TEST(DeepStructures, CancellingADeepGatherNest) {
    event_loop loop;
    future<int> bottom = loop.create_future<int>();
    int built = 0;
    auto top = loop.create_task(gather_link(gather_depth, bottom, built));
    loop.run_until_complete(until_built(built, gather_depth));
    EXPECT_TRUE(top.cancel());
    EXPECT_TRUE(bottom.cancelled());
    EXPECT_THROW(loop.run_until_complete(top), pyco::cancelled_error);
    EXPECT_TRUE(pyco::all_tasks(loop).empty());
    loop.close();
}

TEST(DeepStructures, CompletingADeepGatherNest) {
    event_loop loop;
    future<int> bottom = loop.create_future<int>();
    int built = 0;
    auto top = loop.create_task(gather_link(gather_depth, bottom, built));
    loop.run_until_complete(until_built(built, gather_depth));
    bottom.set_result(1);
    EXPECT_EQ(loop.run_until_complete(top), gather_depth + 1);
    loop.close();
}

// A gather nest abandoned by a closing loop, and the last handle to its top
// dropped after that.
TEST(DeepStructures, ClosingALoopUnderADeepGatherNest) {
    {
        event_loop loop;
        future<int> bottom = loop.create_future<int>();
        int built = 0;
        auto top = loop.create_task(gather_link(gather_depth, bottom, built));
        loop.run_until_complete(until_built(built, gather_depth));
        loop.set_exception_handler([](event_loop&, const pyco::exception_context&) {});
        loop.close();
        EXPECT_FALSE(top.done());
    }
}

// ---------------------------------------------------------------- await chain

coroutine<int> await_link(int n, future<int> bottom, bool& reached) {
    if (n == 0) {
        reached = true;
        co_return co_await bottom;
    }
    co_return co_await await_link(n - 1, bottom, reached) + 1;
}

// Frames are destroyed from the bottom up, as a chain unwinds: a level's
// locals see their child's already gone.
struct order_probe {
    std::vector<int>* order;
    int level;
    ~order_probe() { order->push_back(level); }
};

coroutine<void> probed_link(int n, future<int> bottom, std::vector<int>& order) {
    order_probe probe{&order, n};
    if (n == 0) {
        co_await bottom;
        co_return;
    }
    co_await probed_link(n - 1, bottom, order);
}

TEST(DeepStructures, ClosingALoopUnderADeepAwaitChain) {
    event_loop loop;
    loop.set_exception_handler([](event_loop&, const pyco::exception_context&) {});
    future<int> bottom = loop.create_future<int>();
    bool reached = false;
    auto top = loop.create_task(await_link(await_depth, bottom, reached));
    loop.run_until_complete(one_step());
    ASSERT_TRUE(reached);
    loop.close();  // abandons `top`: its frames go
    EXPECT_FALSE(top.done());
}

TEST(DeepStructures, DestroyingADeepAwaitChainGoesBottomUp) {
    std::vector<int> order;
    {
        event_loop loop;
        loop.set_exception_handler([](event_loop&, const pyco::exception_context&) {});
        future<int> bottom = loop.create_future<int>();
        auto top = loop.create_task(probed_link(await_depth, bottom, order));
        loop.run_until_complete(one_step());
        loop.close();
    }
    ASSERT_EQ(order.size(), static_cast<std::size_t>(await_depth) + 1);
    for (int i = 0; i <= await_depth; ++i) {
        if (order[static_cast<std::size_t>(i)] != i) {
            ADD_FAILURE() << "level " << order[static_cast<std::size_t>(i)] << " went " << i << "th";
            break;
        }
    }
}

// A coroutine object dropped while what it awaits is suspended deep down
// (here: a task's frame holding it, the task cancelled and finished).
TEST(DeepStructures, CancellingATaskAtTheBottomOfADeepAwaitChain) {
    event_loop loop;
    future<int> bottom = loop.create_future<int>();
    bool reached = false;
    auto top = loop.create_task(await_link(await_depth, bottom, reached));
    loop.run_until_complete(one_step());
    ASSERT_TRUE(reached);
    top.cancel();
    EXPECT_THROW(loop.run_until_complete(top), pyco::cancelled_error);
    loop.close();
}

}  // namespace
