// Tasks, switches, futures and timers: pyco beside Boost.Asio in one binary
// (bench/async_bench.py measures CPython's asyncio on the same cases).
//
// Each benchmark checks its own result and fails loudly if the work was not
// done (state.SkipWithError), so a broken build cannot report a fast time.
#include <benchmark/benchmark.h>

#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <pyco/pyco.hpp>

// ---- allocation accounting (for bytes per task) ---------------------------

namespace {
std::atomic<long long> g_live_bytes{0};
}

void* operator new(std::size_t n) {
    void* p = std::malloc(n ? n : 1);
    if (!p) throw std::bad_alloc();
    g_live_bytes.fetch_add(static_cast<long long>(malloc_usable_size(p)), std::memory_order_relaxed);
    return p;
}
void operator delete(void* p) noexcept {
    if (!p) return;
    g_live_bytes.fetch_sub(static_cast<long long>(malloc_usable_size(p)), std::memory_order_relaxed);
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using pyco::coroutine;

// ---- task spawn + complete + join ------------------------------------------

coroutine<int> trivial(int i) { co_return i; }

void BM_pyco_task_spawn_join(benchmark::State& state) {
    auto body = [](benchmark::State& st) -> coroutine<long> {
        long sum = 0;
        for (auto _ : st) sum += co_await pyco::create_task(trivial(1));
        co_return sum;
    };
    long sum = pyco::run(body(state));
    if (sum != static_cast<long>(state.iterations())) state.SkipWithError("wrong sum");
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_pyco_task_spawn_join);

asio::awaitable<int> asio_trivial(int i) { co_return i; }

void BM_asio_co_spawn_join(benchmark::State& state) {
    asio::io_context ctx;
    long sum = 0;
    auto body = [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        for (auto _ : state) sum += co_await asio::co_spawn(ex, asio_trivial(1), asio::use_awaitable);
    };
    asio::co_spawn(ctx, body(), asio::detached);
    ctx.run();
    if (sum != static_cast<long>(state.iterations())) state.SkipWithError("wrong sum");
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_asio_co_spawn_join);

// 1,000,000 tasks created, then all awaited.
void BM_pyco_million_tasks(benchmark::State& state) {
    constexpr int n = 1'000'000;
    for (auto _ : state) {
        auto body = []() -> coroutine<long> {
            std::vector<pyco::task<int>> tasks;
            tasks.reserve(n);
            for (int i = 0; i < n; ++i) tasks.push_back(pyco::create_task(trivial(1)));
            long sum = 0;
            for (auto& t : tasks) sum += co_await t;
            co_return sum;
        };
        if (pyco::run(body()) != n) state.SkipWithError("wrong sum");
    }
    state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_pyco_million_tasks)->Unit(benchmark::kMillisecond)->Iterations(3);

// ---- sleep(0) switches -----------------------------------------------------

void BM_pyco_sleep0_switch(benchmark::State& state) {
    const int ntasks = static_cast<int>(state.range(0));
    constexpr int per_task = 20'000;
    long switches = 0;
    for (auto _ : state) {
        auto body = [](int nt, long& sw) -> coroutine<void> {
            auto worker = [](long& s) -> coroutine<void> {
                for (int i = 0; i < per_task; ++i) {
                    co_await pyco::sleep(0s);
                    ++s;
                }
            };
            std::vector<pyco::task<void>> ts;
            for (int i = 0; i < nt; ++i) ts.push_back(pyco::create_task(worker(sw)));
            for (auto& t : ts) co_await t;
        };
        pyco::run(body(ntasks, switches));
    }
    if (switches != state.iterations() * ntasks * per_task) state.SkipWithError("switches lost");
    state.SetItemsProcessed(switches);
}
BENCHMARK(BM_pyco_sleep0_switch)->Arg(1)->Arg(2)->Arg(100)->Unit(benchmark::kMillisecond);

void BM_asio_post_switch(benchmark::State& state) {
    const int ntasks = static_cast<int>(state.range(0));
    constexpr int per_task = 20'000;
    long switches = 0;
    for (auto _ : state) {
        asio::io_context ctx;
        auto worker = [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            for (int i = 0; i < per_task; ++i) {
                co_await asio::post(ex, asio::use_awaitable);
                ++switches;
            }
        };
        for (int i = 0; i < ntasks; ++i) asio::co_spawn(ctx, worker(), asio::detached);
        ctx.run();
    }
    if (switches != state.iterations() * ntasks * per_task) state.SkipWithError("switches lost");
    state.SetItemsProcessed(switches);
}
BENCHMARK(BM_asio_post_switch)->Arg(1)->Arg(2)->Arg(100)->Unit(benchmark::kMillisecond);

// ---- future ping-pong between two tasks ------------------------------------

void BM_pyco_future_ping_pong(benchmark::State& state) {
    constexpr int rounds = 50'000;
    long total = 0;
    for (auto _ : state) {
        auto body = [](long& tot) -> coroutine<void> {
            auto& loop = pyco::get_running_loop();
            // Each round: a sets ping and waits for pong; b the other way round.
            auto ping = loop.create_future<int>();
            auto pong = loop.create_future<int>();
            auto a = [](pyco::future<int>* pi, pyco::future<int>* po, pyco::event_loop& l) -> coroutine<long> {
                long s = 0;
                for (int i = 0; i < rounds; ++i) {
                    pi->set_result(i);
                    s += co_await *po;
                    *po = l.create_future<int>();
                }
                co_return s;
            };
            auto b = [](pyco::future<int>* pi, pyco::future<int>* po, pyco::event_loop& l) -> coroutine<long> {
                long s = 0;
                for (int i = 0; i < rounds; ++i) {
                    s += co_await *pi;
                    *pi = l.create_future<int>();
                    po->set_result(i);
                }
                co_return s;
            };
            auto tb = pyco::create_task(b(&ping, &pong, loop));
            auto ta = pyco::create_task(a(&ping, &pong, loop));
            tot += co_await ta + co_await tb;
        };
        pyco::run(body(total));
    }
    const long expect = 2L * (static_cast<long>(rounds) * (rounds - 1) / 2);
    if (total != expect * static_cast<long>(state.iterations())) state.SkipWithError("wrong total");
    state.SetItemsProcessed(state.iterations() * rounds);  // round trips
}
BENCHMARK(BM_pyco_future_ping_pong)->Unit(benchmark::kMillisecond);

// ---- sleep(0) at the bottom of an await chain --------------------------------

coroutine<long> chain(int depth, int switches) {
    if (depth <= 1) {
        for (int i = 0; i < switches; ++i) co_await pyco::sleep(0s);
        co_return switches;
    }
    co_return co_await chain(depth - 1, switches);
}

void BM_pyco_sleep0_await_chain(benchmark::State& state) {
    const int depth = static_cast<int>(state.range(0));
    constexpr int switches = 100'000;
    long done = 0;
    for (auto _ : state) done += pyco::run(chain(depth, switches));
    if (done != switches * state.iterations()) state.SkipWithError("switches lost");
    state.SetItemsProcessed(done);
}
BENCHMARK(BM_pyco_sleep0_await_chain)->Arg(1)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

// ---- memory: 1,000,000 tasks suspended at once ------------------------------

coroutine<void> parked(pyco::future<>* gate) { co_await *gate; }

void BM_pyco_bytes_per_suspended_task(benchmark::State& state) {
    constexpr int n = 1'000'000;
    for (auto _ : state) {
        auto body = [&](benchmark::State& st) -> coroutine<void> {
            auto gate = pyco::get_running_loop().create_future<>();
            // The frame alone, measured the same way.
            {
                std::vector<coroutine<void>> frames;
                frames.reserve(1000);
                const long long v0 = g_live_bytes.load();
                for (int i = 0; i < 1000; ++i) frames.push_back(parked(&gate));
                st.counters["frame_bytes"] = static_cast<double>(g_live_bytes.load() - v0) / 1000.0;
            }
            std::vector<pyco::task<void>> tasks;
            tasks.reserve(n);
            const long long b0 = g_live_bytes.load();
            for (int i = 0; i < n; ++i) tasks.push_back(pyco::create_task(parked(&gate)));
            co_await pyco::sleep(0s);  // every task is now parked on the gate
            const long long b1 = g_live_bytes.load();
            const double per_task = static_cast<double>(b1 - b0) / n;
            st.counters["bytes_per_task"] = per_task;
            st.counters["task_bytes_besides_frame"] = per_task - st.counters["frame_bytes"];
            gate.set_result();
            for (auto& t : tasks) co_await t;
        };
        pyco::run(body(state));
    }
}
BENCHMARK(BM_pyco_bytes_per_suspended_task)->Unit(benchmark::kMillisecond)->Iterations(1);

// ---- 1,000,000 call_later, then cancel all ----------------------------------

void BM_pyco_million_call_later_cancel(benchmark::State& state) {
    constexpr int n = 1'000'000;
    for (auto _ : state) {
        pyco::event_loop loop({.virtual_time = true});
        const long long base = g_live_bytes.load();
        std::vector<pyco::handle> hs;
        hs.reserve(n);
        int ran = 0;
        for (int i = 0; i < n; ++i) hs.push_back(loop.call_later(1s + std::chrono::microseconds(i), [&ran] { ++ran; }));
        const long long peak = g_live_bytes.load();
        for (auto& h : hs) h.cancel();
        hs.clear();
        hs.shrink_to_fit();
        loop.stop();
        loop.run_forever();  // one iteration compacts the heap
        const long long after = g_live_bytes.load();
        if (ran != 0) state.SkipWithError("a cancelled timer ran");
        state.counters["peak_bytes_per_timer"] = static_cast<double>(peak - base) / n;
        state.counters["bytes_left_after"] = static_cast<double>(after - base);
    }
    state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_pyco_million_call_later_cancel)->Unit(benchmark::kMillisecond)->Iterations(3);

// ---- 1,000,000 awaitables through gather, wait and as_completed --------------
// Their set-up once scanned the awaitables seen so far for duplicates:
// quadratic (92 s for gather of 10^6). Per awaitable, everything included.

template <class G>
coroutine<typename G::value_type> await_gather(G g) {
    co_return co_await g;
}

void BM_pyco_gather_million_coroutines(benchmark::State& state) {
    constexpr int n = 1'000'000;
    for (auto _ : state) {
        auto body = []() -> coroutine<long> {
            std::vector<coroutine<int>> cs;
            cs.reserve(n);
            for (int i = 0; i < n; ++i) cs.push_back(trivial(1));
            auto g = pyco::gather(cs);  // each becomes a task
            std::vector<int> r = co_await g;
            long sum = 0;
            for (int v : r) sum += v;
            co_return sum;
        };
        if (pyco::run(body()) != n) state.SkipWithError("wrong sum");
    }
    state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_pyco_gather_million_coroutines)->Unit(benchmark::kMillisecond)->Iterations(3);

// 10^6 futures, each passed twice: 2 * 10^6 arguments, 10^6 callbacks.
void BM_pyco_gather_million_futures_twice(benchmark::State& state) {
    constexpr int n = 1'000'000;
    for (auto _ : state) {
        pyco::event_loop loop;
        std::vector<pyco::future<int>> fs;
        fs.reserve(2 * n);
        for (int i = 0; i < n; ++i) fs.emplace_back(loop);
        for (int i = 0; i < n; ++i) fs.push_back(fs[static_cast<std::size_t>(i)]);
        auto g = pyco::gather(fs);
        for (int i = 0; i < n; ++i) fs[static_cast<std::size_t>(i)].set_result(1);
        std::vector<int> r = loop.run_until_complete(await_gather(g));
        long sum = 0;
        for (int v : r) sum += v;
        if (sum != 2L * n) state.SkipWithError("wrong sum");
        loop.close();
    }
    state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_pyco_gather_million_futures_twice)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_pyco_wait_million_tasks(benchmark::State& state) {
    constexpr int n = 1'000'000;
    for (auto _ : state) {
        auto body = []() -> coroutine<long> {
            std::vector<pyco::task<int>> tasks;
            tasks.reserve(n);
            for (int i = 0; i < n; ++i) tasks.push_back(pyco::create_task(trivial(1)));
            auto [done, pending] = co_await pyco::wait(tasks);
            long sum = 0;
            for (auto& t : done) sum += t.result();
            co_return pending.empty() ? sum : -1;
        };
        if (pyco::run(body()) != n) state.SkipWithError("wrong sum");
    }
    state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_pyco_wait_million_tasks)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_pyco_as_completed_million_tasks(benchmark::State& state) {
    constexpr int n = 1'000'000;
    for (auto _ : state) {
        auto body = []() -> coroutine<long> {
            std::vector<pyco::task<int>> tasks;
            tasks.reserve(n);
            for (int i = 0; i < n; ++i) tasks.push_back(pyco::create_task(trivial(1)));
            long sum = 0;
            for (auto& c : pyco::as_completed(tasks)) sum += co_await c;
            co_return sum;
        };
        if (pyco::run(body()) != n) state.SkipWithError("wrong sum");
    }
    state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_pyco_as_completed_million_tasks)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
