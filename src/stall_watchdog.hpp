// The debug mode's stall detector (Seastar's reactor stall report): a
// thread, started the first time a debug-mode loop runs a ready entry,
// that reports "event loop stalled for N ms" while an entry is still
// running past the loop's slow_callback_duration — even one that never
// returns (a callback spinning forever).
//
// Why a thread and not a timer signal: the report needs the task's name and
// stack, made of std::strings; a signal handler may neither allocate nor
// take a lock, and the string could not be read safely from it. The thread
// reads a description the loop thread prepared before it ran the entry.
//
// Thread rule: begin()/end() on the loop thread; the watchdog thread reads
// what begin() stored only under mu_ (TSan sees every access ordered). The
// entry's description is made by the loop thread before begin(), never by
// the watchdog (the task may be running: its frames are not for another
// thread to walk). One report per entry: a later report would only repeat.
// Release-mode cost: none; the loop calls this only when debug is on.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace pyco::detail {

class stall_watchdog {
public:
    using clock = std::chrono::steady_clock;
    stall_watchdog() = default;
    stall_watchdog(const stall_watchdog&) = delete;
    stall_watchdog& operator=(const stall_watchdog&) = delete;
    ~stall_watchdog();

    // An entry starts running at `start` (the time the loop measures its
    // duration from, so that an entry reported stalled is also reported
    // slow when it returns); what describes it, and the threshold.
    void begin(std::string what, clock::time_point start, clock::duration threshold);
    void end() noexcept;

private:
    void watch();
    std::mutex mu_;
    std::condition_variable cv_;
    std::string what_;
    clock::time_point started_{};
    clock::duration threshold_{};
    std::uint64_t seq_ = 0;       // entries begun
    std::uint64_t reported_ = 0;  // the last entry reported
    bool running_ = false;        // an entry is running
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace pyco::detail
