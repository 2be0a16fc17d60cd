// Part two of the tour: async/await and the event loop.
#include "tour.hpp"

#include <exception>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;

// --- 7. Coroutines awaiting each other --------------------------------------

coroutine<std::string> fetch_user(int id) {
    std::printf("  fetch_user(%d): asking the database\n", id);
    co_await pyco::sleep(20ms);  // stands for real I/O
    co_return "user" + std::to_string(id);
}

coroutine<std::string> greet(int id) {
    // Awaiting a coroutine runs it right here, as `await` does in Python.
    std::string user = co_await fetch_user(id);
    co_return "hello, " + user;
}

coroutine<void> awaiting() {
    tour::section("7. Coroutines awaiting each other");
    auto& loop = pyco::get_running_loop();
    auto t0 = loop.time();
    std::string msg = co_await greet(1);
    std::printf("  %s (after %lld ms of virtual time)\n", msg.c_str(),
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(loop.time() - t0).count()));
    auto c = greet(2);
    co_await c;
    try {
        co_await c;
    } catch (const pyco::runtime_error& e) {
        std::printf("  awaiting it again: runtime_error: %s\n", e.what());
    }
}

// --- 8. Tasks running side by side ------------------------------------------

coroutine<int> worker(std::string name, int steps) {
    for (int i = 1; i <= steps; ++i) {
        std::printf("  %s: step %d\n", name.c_str(), i);
        co_await pyco::sleep(10ms);
    }
    co_return steps;
}

coroutine<void> side_by_side() {
    tour::section("8. Tasks running side by side with gather");
    // gather wraps each coroutine in a task; they interleave at each await.
    auto [a, b] = co_await pyco::gather(worker("task A", 3), worker("task B", 2));
    std::printf("  gather gave (%d, %d)\n", a, b);
    auto failing = []() -> coroutine<int> {
        co_await pyco::sleep(5ms);
        throw pyco::value_error("sensor offline");
    };
    auto results = co_await pyco::gather(pyco::return_exceptions, worker("task C", 1), failing());
    std::printf("  with return_exceptions: C -> %d, the other -> %s\n", std::get<0>(results).value(),
                pyco::describe_exception(std::get<1>(results).exception()).c_str());
}

// --- 9. A timeout ----------------------------------------------------------

coroutine<void> timeouts() {
    tour::section("9. A timeout");
    // async with asyncio.timeout(0.1):
    //     await slow_query()
    // C++ has no `async with`: enter() and exit() are its two halves. The
    // deadline cancels the body, so the body's exception must reach exit(),
    // which turns that cancellation into timeout_error; C++ cannot co_await
    // inside a catch block, hence the exception_ptr.
    pyco::timeout t(100ms);
    t.enter();
    std::exception_ptr err;
    try {
        std::printf("  a slow query starts (it would take 500 ms)\n");
        co_await pyco::sleep(500ms);
    } catch (...) {
        err = std::current_exception();  // here: cancelled_error, from the deadline
    }
    try {
        t.exit(err);
    } catch (const pyco::timeout_error&) {
        std::printf("  timeout_error after 100 ms; expired() = %s\n", t.expired() ? "true" : "false");
    }
    // Timeout.reschedule: more time after all. A body that cannot fail
    // needs no try.
    pyco::timeout u(10ms);
    u.enter();
    u.reschedule(pyco::get_running_loop().time() + 1s);
    co_await pyco::sleep(200ms);
    u.exit();
    std::printf("  rescheduled timeout: the body finished in time\n");
    // One awaitable under a deadline: wait_for.
    try {
        co_await pyco::wait_for(pyco::sleep(1s), 25ms);
    } catch (const pyco::timeout_error&) {
        std::printf("  wait_for: timeout_error, the inner coroutine cancelled\n");
    }
}

// --- 10. A cancellation caught and cleaned up ------------------------------

coroutine<void> long_download(std::vector<std::string>& log) {
    struct temp_file {  // RAII cleanup runs too
        std::vector<std::string>& log;
        ~temp_file() { log.push_back("temp file removed"); }
    } tmp{log};
    try {
        for (int chunk = 1;; ++chunk) {
            co_await pyco::sleep(100ms);
            log.push_back("chunk " + std::to_string(chunk));
        }
    } catch (const pyco::cancelled_error& e) {
        log.push_back(std::string("cancelled (") + e.what() + "): closing the connection");
        throw;  // let the task end cancelled, as it should
    }
}

coroutine<void> cancellation() {
    tour::section("10. A cancellation caught and cleaned up");
    std::vector<std::string> log;
    auto t = pyco::create_task(long_download(log), "download");
    co_await pyco::sleep(250ms);
    t.cancel("user pressed stop");
    try {
        co_await t;
    } catch (const pyco::cancelled_error&) {
        log.push_back("the awaiting task sees cancelled_error");
    }
    for (const auto& line : log) std::printf("  %s\n", line.c_str());
    std::printf("  task cancelled: %s\n", t.cancelled() ? "yes" : "no");
}

// --- 11. A task group failing as a group ----------------------------------

coroutine<void> fetch_page(pyco::semaphore& connections, std::string url, int ms, bool fail) {
    // async with connections: at most two fetches at a time; the guard gives
    // the permit back when it goes, however this coroutine ends.
    auto slot = co_await connections.scoped();
    std::printf("  %s: connected\n", url.c_str());
    try {
        co_await pyco::sleep(std::chrono::milliseconds(ms));
    } catch (const pyco::cancelled_error&) {
        std::printf("  %s: cancelled because a sibling failed\n", url.c_str());
        throw;
    }
    if (fail) throw pyco::runtime_error(url + " returned 503");
    std::printf("  %s: fetched\n", url.c_str());
}

coroutine<void> task_groups() {
    tour::section("11. A task group failing as a group");
    pyco::semaphore connections(2);
    // async with asyncio.TaskGroup() as tg:
    //     tg.create_task(fetch_page(...)) ...
    pyco::task_group tg;
    tg.enter();
    tg.create_task(fetch_page(connections, "/index", 10, false));
    tg.create_task(fetch_page(connections, "/api", 20, true));
    tg.create_task(fetch_page(connections, "/images", 500, false));
    tg.create_task(fetch_page(connections, "/feed", 600, false));
    try {
        // exit() waits for every task. This body has no co_await, so nothing
        // can interrupt it and it needs no try; with one, catch what it
        // raises and pass it on: co_await tg.exit(err).
        co_await tg.exit();
    } catch (const pyco::exception_group& eg) {
        std::printf("  %s\n", eg.what());
        // except* runtime_error:
        auto [runtime, rest] = eg.split<pyco::runtime_error>();
        for (const auto& e : runtime->exceptions()) {
            std::printf("    except* runtime_error: %s\n", pyco::describe_exception(e).c_str());
        }
        std::printf("    anything else: %s\n", rest ? "yes" : "no");
    }
    std::printf("  every permit back: %lld free\n", static_cast<long long>(connections.value()));
}

// --- 12. An async generator consumed by a task ------------------------------

pyco::async_generator<std::string> sensor_readings(int n) {
    for (int i = 1; i <= n; ++i) {
        co_await pyco::sleep(50ms);  // awaits and yields in one body
        co_yield "reading " + std::to_string(i * 7);
    }
}

coroutine<int> consume(pyco::async_generator<std::string> readings) {
    int seen = 0;
    while (auto r = co_await readings.anext()) {  // async for r in readings
        std::printf("  consumer got %s\n", r->c_str());
        ++seen;
    }
    co_return seen;
}

coroutine<void> async_generators() {
    tour::section("12. An async generator consumed by a task");
    int n = co_await pyco::create_task(consume(sensor_readings(3)));
    std::printf("  the generator finished after %d readings\n", n);
    auto endless = sensor_readings(1000);
    auto first = co_await endless.anext();
    std::printf("  took %s from another and closed it: ", first->c_str());
    co_await endless.aclose();
    std::printf("%s\n", (co_await endless.anext()) ? "still going?" : "it is finished");
}

// --- 13. A task dump of suspended tasks --------------------------------------

coroutine<void> wait_for_reply() { co_await pyco::sleep(1h); }
coroutine<void> handle_request() { co_await wait_for_reply(); }

coroutine<void> task_dump() {
    tour::section("13. A task dump of suspended tasks");
    auto t1 = pyco::create_task(handle_request(), "request-1");
    auto t2 = pyco::create_task(wait_for_reply(), "poller");
    co_await pyco::sleep(0s);
    for (pyco::any_task& t : pyco::all_tasks()) {
        if (t == pyco::current_task()) continue;
        t.print_stack(stdout);
    }
    t1.cancel();
    t2.cancel();
}

coroutine<void> main_part_two() {
    co_await awaiting();
    co_await side_by_side();
    co_await timeouts();
    co_await cancellation();
    co_await task_groups();
    co_await async_generators();
    co_await task_dump();
}

}  // namespace

void tour::part_two() {
    std::printf("\n######## Part two: async/await and the event loop (PEP 492, 525, asyncio)\n"
                "######## examples/tour/part_two.cpp\n");
    // Virtual time: the sleeps above take no wall-clock time.
    pyco::run(main_part_two(), {.virtual_time = true});
}
