// Part two of the tour: async/await and the event loop.
#include "tour.hpp"

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
    tour::section("8. Tasks running side by side");
    auto a = pyco::create_task(worker("task A", 3), "A");
    auto b = pyco::create_task(worker("task B", 2), "B");
    int total = co_await a + co_await b;
    std::printf("  both done: %d steps in all\n", total);
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
    co_await cancellation();
    co_await task_dump();
}

}  // namespace

void tour::part_two() {
    std::printf("\n######## Part two: async/await and the event loop (PEP 492, 525, asyncio)\n");
    // Virtual time: the sleeps above take no wall-clock time.
    pyco::run(main_part_two(), {.virtual_time = true});
}
