// Crossing threads: call_soon_threadsafe and to_thread round trips, beside
// Boost.Asio doing the same in the same binary (bench/threads_bench.py
// measures CPython). Each benchmark checks that every trip arrived.
#include <benchmark/benchmark.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <pyco/pyco.hpp>

namespace {

namespace asio = boost::asio;
using pyco::coroutine;

// A one-slot mailbox a thread can wait on.
struct mailbox {
    std::mutex m;
    std::condition_variable cv;
    long seen = 0;
    void put() {
        {
            std::lock_guard<std::mutex> l(m);
            ++seen;
        }
        cv.notify_one();
    }
    void wait_for(long n) {
        std::unique_lock<std::mutex> l(m);
        cv.wait(l, [&] { return seen >= n; });
    }
};

// A foreign thread posts a callback to the loop and waits until it ran.
void BM_pyco_call_soon_threadsafe_round_trip(benchmark::State& state) {
    pyco::event_loop loop;
    mailbox box;
    long trips = 0;
    std::thread client([&] {
        for (auto _ : state) {
            loop.call_soon_threadsafe([&box] { box.put(); });
            box.wait_for(++trips);
        }
        loop.call_soon_threadsafe([&] { loop.stop(); });
    });
    loop.run_forever();
    client.join();
    if (box.seen != trips) state.SkipWithError("lost trips");
    state.SetItemsProcessed(trips);
}
BENCHMARK(BM_pyco_call_soon_threadsafe_round_trip)->UseRealTime();

void BM_asio_post_round_trip_from_thread(benchmark::State& state) {
    asio::io_context ctx;
    auto guard = asio::make_work_guard(ctx);
    mailbox box;
    long trips = 0;
    std::thread client([&] {
        for (auto _ : state) {
            asio::post(ctx, [&box] { box.put(); });
            box.wait_for(++trips);
        }
        guard.reset();
    });
    ctx.run();
    client.join();
    if (box.seen != trips) state.SkipWithError("lost trips");
    state.SetItemsProcessed(trips);
}
BENCHMARK(BM_asio_post_round_trip_from_thread)->UseRealTime();

// A task sends a no-op to the default executor and awaits it.
void BM_pyco_to_thread_round_trip(benchmark::State& state) {
    auto body = [](benchmark::State& st) -> coroutine<long> {
        long n = 0;
        for (auto _ : st) n += co_await pyco::to_thread([] { return 1; });
        co_return n;
    };
    long n = pyco::run(body(state));
    if (n != static_cast<long>(state.iterations())) state.SkipWithError("lost trips");
    state.SetItemsProcessed(n);
}
BENCHMARK(BM_pyco_to_thread_round_trip)->UseRealTime();

// Asio: hop to a thread pool and back to the io_context.
void BM_asio_pool_round_trip(benchmark::State& state) {
    asio::io_context ctx;
    asio::thread_pool pool(4);
    long n = 0;
    auto body = [&]() -> asio::awaitable<void> {
        auto home = co_await asio::this_coro::executor;
        for (auto _ : state) {
            co_await asio::post(pool.get_executor(), asio::use_awaitable);
            co_await asio::post(home, asio::use_awaitable);
            ++n;
        }
    };
    asio::co_spawn(ctx, body(), asio::detached);
    ctx.run();
    pool.join();
    if (n != static_cast<long>(state.iterations())) state.SkipWithError("lost trips");
    state.SetItemsProcessed(n);
}
BENCHMARK(BM_asio_pool_round_trip)->UseRealTime();

}  // namespace
