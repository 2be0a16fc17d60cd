// Sync primitives and queues: pyco beside Boost.Asio's experimental
// channel in one binary (bench/sync_bench.py measures CPython's asyncio on
// the same cases).
//
// Each benchmark checks its own result and fails loudly if the work was not
// done (state.SkipWithError), so a broken build cannot report a fast time.
#include <benchmark/benchmark.h>

#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <pyco/event.hpp>
#include <pyco/lock.hpp>
#include <pyco/queue.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using pyco::coroutine;

// pyco::run() now installs a SIGINT handler (asyncio.run's Ctrl-C), whose
// self-pipe is a watched fd, so every loop iteration makes an epoll_wait
// syscall (about 0.2 us, more than a whole hand-off). The benchmarks run on a
// plain loop, as the earlier figures of docs/benchmarks.md were measured;
// see docs/benchmarks_sync.md.
void run_plain(coroutine<void> c) {
    pyco::event_loop loop;
    loop.run_until_complete(std::move(c));
    loop.close();
}

// ---- lock ----------------------------------------------------------------

// One task: acquire + release, never contended (the fast path).
void BM_pyco_lock_uncontended(benchmark::State& state) {
    constexpr int n = 1'000'000;
    long held = 0;
    for (auto _ : state) {
        auto body = [](long& h) -> coroutine<void> {
            pyco::lock l;
            for (int i = 0; i < n; ++i) {
                co_await l.acquire();
                if (l.locked()) ++h;
                l.release();
            }
        };
        run_plain(body(held));
    }
    if (held != state.iterations() * n) state.SkipWithError("acquisitions lost");
    state.SetItemsProcessed(held);
}
BENCHMARK(BM_pyco_lock_uncontended)->Unit(benchmark::kMillisecond);

// `tasks` tasks each take the lock `per_task` times and yield (sleep(0))
// while holding it, so every other task is queued: each acquisition is a
// FIFO hand-off through the wait queue. ns per acquisition.
void BM_pyco_lock_contended(benchmark::State& state) {
    const int tasks = static_cast<int>(state.range(0));
    constexpr int per_task = 50'000;
    long held = 0;
    for (auto _ : state) {
        auto body = [](int nt, long& h) -> coroutine<void> {
            pyco::lock l;
            int inside = 0;
            auto worker = [](pyco::lock& lk, int& in, long& hh) -> coroutine<void> {
                for (int i = 0; i < per_task; ++i) {
                    co_await lk.acquire();
                    if (++in == 1) ++hh;  // mutual exclusion holds
                    co_await pyco::sleep(0s);
                    --in;
                    lk.release();
                }
            };
            std::vector<pyco::task<void>> ts;
            for (int i = 0; i < nt; ++i) ts.push_back(pyco::create_task(worker(l, inside, h)));
            for (auto& t : ts) co_await t;
        };
        run_plain(body(tasks, held));
    }
    if (held != state.iterations() * tasks * per_task) state.SkipWithError("acquisitions lost");
    state.SetItemsProcessed(held);
}
BENCHMARK(BM_pyco_lock_contended)->Arg(4)->Unit(benchmark::kMillisecond);

// ---- event: one set() wakes 10,000 waiters ------------------------------

// Timed: set() and every waiter resuming (tasks created and parked outside
// the timed region). ns per woken waiter.
void BM_pyco_event_wake_10000(benchmark::State& state) {
    constexpr int waiters = 10'000;
    long woke = 0;
    for (auto _ : state) {
        state.PauseTiming();
        pyco::event_loop loop;
        pyco::event ev;
        std::vector<pyco::task<void>> ts;
        ts.reserve(waiters);
        auto waiter = [](pyco::event& e, long& w) -> coroutine<void> {
            co_await e.wait();
            ++w;
        };
        for (int i = 0; i < waiters; ++i) ts.push_back(loop.create_task(waiter(ev, woke)));
        auto park = []() -> coroutine<void> { co_await pyco::sleep(0s); };
        loop.run_until_complete(park());  // every waiter is parked now
        state.ResumeTiming();
        auto wake = [](pyco::event& e, std::vector<pyco::task<void>>& all) -> coroutine<void> {
            e.set();
            for (auto& t : all) co_await t;
        };
        loop.run_until_complete(wake(ev, ts));
        state.PauseTiming();
        ts.clear();
        loop.close();
        state.ResumeTiming();
    }
    if (woke != state.iterations() * waiters) state.SkipWithError("waiters not woken");
    state.SetItemsProcessed(woke);
}
BENCHMARK(BM_pyco_event_wake_10000)->Unit(benchmark::kMillisecond);

// ---- queue throughput: producers -> one consumer --------------------------

// `producers` tasks put `total / producers` items each into a queue of
// maxsize 100; one consumer gets them all. ns per item.
void BM_pyco_queue_throughput(benchmark::State& state) {
    const int producers = static_cast<int>(state.range(0));
    constexpr int total = 400'000;
    long sum = 0;
    for (auto _ : state) {
        auto body = [](int np, long& s) -> coroutine<void> {
            pyco::queue<int> q(100);
            auto producer = [](pyco::queue<int>& qq, int count) -> coroutine<void> {
                for (int i = 0; i < count; ++i) co_await qq.put(i);
            };
            auto consumer = [](pyco::queue<int>& qq, long& ss) -> coroutine<void> {
                for (int i = 0; i < total; ++i) ss += co_await qq.get();
            };
            auto c = pyco::create_task(consumer(q, s));
            std::vector<pyco::task<void>> ps;
            for (int i = 0; i < np; ++i) ps.push_back(pyco::create_task(producer(q, total / np)));
            for (auto& p : ps) co_await p;
            co_await c;
        };
        run_plain(body(producers, sum));
    }
    const long per = static_cast<long>(total / producers);
    const long expect = producers * (per * (per - 1) / 2);
    if (sum != expect * state.iterations()) state.SkipWithError("items lost");
    state.SetItemsProcessed(state.iterations() * total);
}
BENCHMARK(BM_pyco_queue_throughput)->Arg(1)->Arg(4)->Unit(benchmark::kMillisecond);

using int_channel = asio::experimental::channel<void(boost::system::error_code, int)>;

void BM_asio_channel_throughput(benchmark::State& state) {
    const int producers = static_cast<int>(state.range(0));
    constexpr int total = 400'000;
    long sum = 0;
    for (auto _ : state) {
        asio::io_context ctx;
        int_channel ch(ctx, 100);
        auto producer = [&ch](int count) -> asio::awaitable<void> {
            for (int i = 0; i < count; ++i) co_await ch.async_send(boost::system::error_code{}, i, asio::use_awaitable);
        };
        auto consumer = [&ch, &sum]() -> asio::awaitable<void> {
            for (int i = 0; i < total; ++i) sum += co_await ch.async_receive(asio::use_awaitable);
        };
        asio::co_spawn(ctx, consumer(), asio::detached);
        for (int i = 0; i < producers; ++i) asio::co_spawn(ctx, producer(total / producers), asio::detached);
        ctx.run();
    }
    const long per = static_cast<long>(total / producers);
    const long expect = producers * (per * (per - 1) / 2);
    if (sum != expect * state.iterations()) state.SkipWithError("items lost");
    state.SetItemsProcessed(state.iterations() * total);
}
BENCHMARK(BM_asio_channel_throughput)->Arg(1)->Arg(4)->Unit(benchmark::kMillisecond);

// ---- queue hand-off ping-pong ---------------------------------------------

// Two tasks, two queues of maxsize 1: a puts on `ping` and gets from
// `pong`, b the other way round. Each round trip is two hand-offs, each
// one a blocked get() woken by a put(). ns per round trip.
void BM_pyco_queue_ping_pong(benchmark::State& state) {
    constexpr int rounds = 200'000;
    long total = 0;
    for (auto _ : state) {
        auto body = [](long& tot) -> coroutine<void> {
            pyco::queue<int> ping(1);
            pyco::queue<int> pong(1);
            auto a = [](pyco::queue<int>& pi, pyco::queue<int>& po) -> coroutine<long> {
                long s = 0;
                for (int i = 0; i < rounds; ++i) {
                    co_await pi.put(i);
                    s += co_await po.get();
                }
                co_return s;
            };
            auto b = [](pyco::queue<int>& pi, pyco::queue<int>& po) -> coroutine<long> {
                long s = 0;
                for (int i = 0; i < rounds; ++i) {
                    const int v = co_await pi.get();
                    s += v;
                    co_await po.put(v);
                }
                co_return s;
            };
            auto tb = pyco::create_task(b(ping, pong));
            auto ta = pyco::create_task(a(ping, pong));
            const long ra = co_await ta;
            const long rb = co_await tb;
            tot += ra + rb;
        };
        run_plain(body(total));
    }
    const long expect = 2L * (static_cast<long>(rounds) * (rounds - 1) / 2);
    if (total != expect * state.iterations()) state.SkipWithError("wrong total");
    state.SetItemsProcessed(state.iterations() * rounds);  // round trips
}
BENCHMARK(BM_pyco_queue_ping_pong)->Unit(benchmark::kMillisecond);

void BM_asio_channel_ping_pong(benchmark::State& state) {
    constexpr int rounds = 200'000;
    long total = 0;
    for (auto _ : state) {
        asio::io_context ctx;
        int_channel ping(ctx, 1);
        int_channel pong(ctx, 1);
        auto a = [&]() -> asio::awaitable<void> {
            long s = 0;
            for (int i = 0; i < rounds; ++i) {
                co_await ping.async_send(boost::system::error_code{}, i, asio::use_awaitable);
                s += co_await pong.async_receive(asio::use_awaitable);
            }
            total += s;
        };
        auto b = [&]() -> asio::awaitable<void> {
            long s = 0;
            for (int i = 0; i < rounds; ++i) {
                const int v = co_await ping.async_receive(asio::use_awaitable);
                s += v;
                co_await pong.async_send(boost::system::error_code{}, v, asio::use_awaitable);
            }
            total += s;
        };
        asio::co_spawn(ctx, b(), asio::detached);
        asio::co_spawn(ctx, a(), asio::detached);
        ctx.run();
    }
    const long expect = 2L * (static_cast<long>(rounds) * (rounds - 1) / 2);
    if (total != expect * state.iterations()) state.SkipWithError("wrong total");
    state.SetItemsProcessed(state.iterations() * rounds);
}
BENCHMARK(BM_asio_channel_ping_pong)->Unit(benchmark::kMillisecond);

}  // namespace
