// Debug mode's slow-step report and stall detector (src/stall_watchdog.hpp):
// a task step that blocks the loop is named with CPython's "Executing
// <Task ...> took N seconds" and its stack, and reported while it still
// runs ("event loop stalled for N ms"); nothing outside debug mode.
// Label "threads": the detector is a thread (TSan runs these).
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <pyco/event_loop.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>

namespace {

using namespace std::chrono_literals;

std::mutex g_mu;
std::vector<std::string> g_logs;
std::atomic<bool> g_stalled{false};

void capture(const std::string& text) {
    std::lock_guard lk(g_mu);
    g_logs.push_back(text);
    if (text.rfind("event loop stalled for ", 0) == 0) g_stalled.store(true);
}

struct log_capture {
    pyco::detail::log_hook prev = pyco::detail::set_log_hook(&capture);
    log_capture() {
        std::lock_guard lk(g_mu);
        g_logs.clear();
        g_stalled.store(false);
    }
    ~log_capture() { pyco::detail::set_log_hook(prev); }
    std::vector<std::string> logs() {
        std::lock_guard lk(g_mu);
        return g_logs;
    }
};

void busy_wait(std::chrono::milliseconds d) {
    const auto end = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < end) {
    }
}

pyco::coroutine<void> blocker() {
    co_await pyco::sleep(0s);
    busy_wait(250ms);  // blocks the loop
}

void run_blocker(bool debug) {
    pyco::event_loop loop;
    loop.set_debug(debug);
    auto t = loop.create_task(blocker(), "blocker");
    loop.run_until_complete(t);
    loop.close();
}

bool has(const std::vector<std::string>& logs, const std::string& prefix, const std::string& part) {
    for (const auto& l : logs) {
        if (l.rfind(prefix, 0) == 0 && l.find(part) != std::string::npos) return true;
    }
    return false;
}

TEST(StallDetector, SlowTaskStepIsNamedAndReportedWhileRunning) {
    log_capture cap;
    run_blocker(true);
    auto logs = cap.logs();
    const std::string where = "stall_detector_test.cpp:";
    EXPECT_TRUE(has(logs, "Executing <Task pending name='blocker' coro=<blocker() running at ", " took 0."));
    EXPECT_TRUE(has(logs, "Executing <Task pending name='blocker'", where));
    EXPECT_TRUE(has(logs, "event loop stalled for ", "name='blocker'"));
    EXPECT_TRUE(has(logs, "event loop stalled for ", where));
}

TEST(StallDetector, NothingOutsideDebugMode) {
    log_capture cap;
    run_blocker(false);
    EXPECT_TRUE(cap.logs().empty());
}

TEST(StallDetector, FiresForACallbackThatNeverReturnsByItself) {
    log_capture cap;
    pyco::event_loop loop;
    loop.set_debug(true);
    // Spins until the detector has reported it: without the detector
    // reporting while it runs, this never ends (ctest's timeout).
    loop.call_soon([] {
        while (!g_stalled.load()) {
        }
    });
    loop.call_soon([&loop] { loop.stop(); });
    loop.run_forever();
    loop.close();
    auto logs = cap.logs();
    EXPECT_TRUE(has(logs, "event loop stalled for ", "callback"));
    EXPECT_TRUE(has(logs, "Executing callback", "took"));
}

}  // namespace
