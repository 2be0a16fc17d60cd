// Part three of the tour: queues, threads, signals, and the older style.
#include "tour.hpp"

#include <signal.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;

// --- 14. A producer/consumer pipeline with back-pressure -------------------

coroutine<void> producer(pyco::queue<int>& q, int n) {
    for (int i = 1; i <= n; ++i) {
        // put() waits while the queue is full: a fast producer is held back
        // to the pace of the consumer (back-pressure).
        co_await q.put(i);
        std::printf("  produced %d (queue now holds %zu of %td)\n", i, q.qsize(), q.maxsize());
    }
}

coroutine<void> consumer(pyco::queue<int>& q, int& total) {
    for (;;) {
        int item = co_await q.get();
        co_await pyco::sleep(30ms);  // slow work
        total += item;
        std::printf("  consumed %d\n", item);
        q.task_done();
    }
}

coroutine<void> pipeline() {
    tour::section("14. A producer/consumer pipeline on a bounded queue");
    pyco::queue<int> q(2);  // maxsize 2
    int total = 0;
    auto c = pyco::create_task(consumer(q, total));
    co_await producer(q, 5);
    co_await q.join();  // every item put has been task_done()
    c.cancel();         // the consumer waits forever otherwise
    try {
        co_await c;  // and it uses q until its cancellation has run: q must outlive it
    } catch (const pyco::cancelled_error&) {
    }
    std::printf("  all items processed, total %d\n", total);
}

// --- 15. Blocking work sent to a thread --------------------------------------

long blocking_checksum(int n) {  // stands for a blocking library call
    long sum = 0;
    for (int i = 0; i < n; ++i) sum += i % 7;
    std::this_thread::sleep_for(20ms);
    return sum;
}

coroutine<void> to_a_thread() {
    tour::section("15. Blocking work sent to a thread with to_thread");
    auto ticker = [](int& ticks) -> coroutine<void> {
        for (;;) {
            co_await pyco::sleep(5ms);
            ++ticks;
        }
    };
    int ticks = 0;
    auto t = pyco::create_task(ticker(ticks));
    long sum = co_await pyco::to_thread(blocking_checksum, 1'000'000);
    t.cancel();
    std::printf("  checksum %ld computed on a worker thread; the loop ticked %s meanwhile\n", sum,
                ticks > 0 ? "on" : "(not at all?)");
}

// --- 17. Ctrl-C, handled gracefully -------------------------------------------

coroutine<void> server_main(std::vector<std::string>& log) {
    try {
        log.push_back("serving... (the tour now presses Ctrl-C itself: SIGINT)");
        ::kill(::getpid(), SIGINT);
        co_await pyco::sleep(1h);
    } catch (const pyco::cancelled_error&) {
        log.push_back("main cancelled by Ctrl-C: flushing logs, closing connections");
        throw;
    }
}

void ctrl_c() {
    tour::section("17. Ctrl-C handled gracefully");
    std::vector<std::string> log;
    try {
        pyco::run(server_main(log));
    } catch (const pyco::keyboard_interrupt&) {
        log.push_back("pyco::run raised keyboard_interrupt after the cleanup, as asyncio.run does");
    }
    for (const auto& line : log) std::printf("  %s\n", line.c_str());
}

// --- 16. The older style: a generator that yields what to wait for ----------

coroutine<int> lookup(std::string key) {
    co_await pyco::sleep(1ms);
    co_return static_cast<int>(key.size());
}

// @asyncio.coroutine / Tornado's gen.coroutine: `x = yield fut`.
pyco::generator<coroutine<int>, int, int> total_length_old_style() {
    int a = co_yield lookup("alpha");
    int b = co_yield lookup("beta");
    co_return a + b;
}

// The same logic as PEP 492 made it: `x = await coro`.
coroutine<int> total_length() {
    int a = co_await lookup("alpha");
    int b = co_await lookup("beta");
    co_return a + b;
}

coroutine<void> two_styles() {
    tour::section("16. Generator-based coroutines beside co_await");
    int old_way = co_await pyco::create_task(total_length_old_style());
    int new_way = co_await total_length();
    std::printf("  generator driven by a task: %d; co_await: %d\n", old_way, new_way);
}

coroutine<void> main_part_three() {
    co_await pipeline();
    co_await to_a_thread();
    co_await two_styles();
}

}  // namespace

void tour::part_three() {
    std::printf("\n######## Part three: queues, threads, signals and the older style\n"
                "######## examples/tour/part_three.cpp\n");
    pyco::run(main_part_three());
    ctrl_c();
}
