// The loop: callbacks, timers, fds, errors, debug, virtual time.
#include <pyco/event_loop.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <limits>
#include <ratio>
#include <string>
#include <vector>

#include <pyco/detail/saturate.hpp>
#include <pyco/errors.hpp>
#include <pyco/unraisable.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::event_loop;
using trace_t = std::vector<std::string>;

// Runs the loop until `pred` holds (bounded, so a bug cannot hang the suite).
template <class F>
void run_while(event_loop& loop, F pred, int max_iterations = 10000) {
    for (int i = 0; i < max_iterations && pred(); ++i) {
        loop.stop();
        loop.run_forever();  // one iteration
    }
}

TEST(EventLoop, CallSoonRunsInFifoOrder) {
    event_loop loop;
    trace_t tr;
    loop.call_soon([&] { tr.push_back("a"); });
    loop.call_soon([&] { tr.push_back("b"); });
    loop.call_soon([&] {
        tr.push_back("c");
        loop.stop();
    });
    loop.run_forever();
    EXPECT_EQ(tr, (trace_t{"a", "b", "c"}));
}

TEST(EventLoop, CallbacksScheduledByCallbacksWaitForTheNextIteration) {
    event_loop loop;
    trace_t tr;
    loop.call_soon([&] {
        tr.push_back("first");
        loop.call_soon([&] { tr.push_back("scheduled by first"); });
    });
    loop.call_soon([&] { tr.push_back("second"); });
    loop.stop();  // stop before running: exactly one iteration
    loop.run_forever();
    EXPECT_EQ(tr, (trace_t{"first", "second"}));
    loop.stop();
    loop.run_forever();
    EXPECT_EQ(tr.back(), "scheduled by first");
}

TEST(EventLoop, StopLetsTheCurrentIterationFinish) {
    event_loop loop;
    trace_t tr;
    loop.call_soon([&] {
        tr.push_back("stopper");
        loop.stop();
    });
    loop.call_soon([&] { tr.push_back("same iteration"); });
    loop.run_forever();
    EXPECT_EQ(tr, (trace_t{"stopper", "same iteration"}));
    EXPECT_FALSE(loop.is_running());
}

TEST(EventLoop, CancelledHandleDoesNotRun) {
    event_loop loop;
    bool ran = false;
    auto h = loop.call_soon([&] { ran = true; });
    EXPECT_FALSE(h.cancelled());
    h.cancel();
    EXPECT_TRUE(h.cancelled());
    loop.stop();
    loop.run_forever();
    EXPECT_FALSE(ran);
}

TEST(EventLoop, TimersRunInTimeOrderThenFifo) {
    event_loop loop({.virtual_time = true});
    trace_t tr;
    const auto t0 = loop.time();
    loop.call_later(30ms, [&] {
        tr.push_back("30");
        loop.stop();
    });
    loop.call_later(10ms, [&] { tr.push_back("10a"); });
    loop.call_at(t0 + 10ms, [&] { tr.push_back("10b"); });
    loop.call_later(20ms, [&] { tr.push_back("20"); });
    loop.run_forever();
    EXPECT_EQ(tr, (trace_t{"10a", "10b", "20", "30"}));
}

TEST(EventLoop, VirtualTimeJumpsToTheNextTimerWithoutWaiting) {
    event_loop loop({.virtual_time = true});
    const auto wall0 = std::chrono::steady_clock::now();
    const auto t0 = loop.time();
    event_loop::time_point fired{};
    auto h = loop.call_later(1h, [&] {
        fired = loop.time();
        loop.stop();
    });
    EXPECT_EQ(h.when(), t0 + 1h);
    loop.run_forever();
    EXPECT_EQ(fired - t0, 1h);
    EXPECT_LT(std::chrono::steady_clock::now() - wall0, 5s);
}

TEST(EventLoop, RealTimeTimerWaitsAtLeastItsDelay) {
    event_loop loop;
    const auto t0 = loop.time();
    event_loop::time_point fired{};
    loop.call_later(20ms, [&] {
        fired = loop.time();
        loop.stop();
    });
    loop.run_forever();
    EXPECT_GE(fired - t0, 20ms);
}

TEST(EventLoop, CancelledTimersDoNotRunAndDoNotPileUp) {
    event_loop loop({.virtual_time = true});
    int ran = 0;
    std::vector<pyco::handle> hs;
    for (int i = 0; i < 1000; ++i) hs.push_back(loop.call_later(1s + i * 1ms, [&] { ++ran; }));
    for (auto& h : hs) h.cancel();
    loop.call_later(5s, [&] { loop.stop(); });
    loop.run_forever();
    EXPECT_EQ(ran, 0);
    // Every cancelled timer was dropped: only our handles still hold them.
    for (auto& h : hs) EXPECT_TRUE(h.cancelled());
}

TEST(EventLoop, ExceptionInCallbackGoesToTheHandlerAndTheLoopGoesOn) {
    event_loop loop;
    std::vector<std::string> seen;
    loop.set_exception_handler([&](event_loop&, const pyco::exception_context& ctx) {
        seen.push_back(ctx.message + " | " + pyco::describe_exception(ctx.exception));
        EXPECT_NE(ctx.handle.find("Handle"), std::string::npos);
    });
    bool after = false;
    loop.call_soon([] { throw pyco::value_error("boom"); });
    loop.call_soon([&] {
        after = true;
        loop.stop();
    });
    loop.run_forever();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0], "Exception in callback | pyco::value_error: boom");
    EXPECT_TRUE(after);
}

TEST(EventLoop, DefaultExceptionHandlerLogsToStderr) {
    event_loop loop;
    testing::internal::CaptureStderr();
    loop.call_soon([] { throw pyco::runtime_error("logged"); });
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("Exception in callback"), std::string::npos) << err;
    EXPECT_NE(err.find("pyco::runtime_error: logged"), std::string::npos) << err;
}

TEST(EventLoop, AThrowingExceptionHandlerIsReportedToo) {
    event_loop loop;
    loop.set_exception_handler([](event_loop&, const pyco::exception_context&) {
        throw pyco::value_error("handler broke");
    });
    testing::internal::CaptureStderr();
    loop.call_exception_handler({"original", nullptr, {}, {}});
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("Unhandled error in exception handler"), std::string::npos) << err;
    EXPECT_NE(err.find("original"), std::string::npos) << err;
}

TEST(EventLoop, RunningStateAndErrors) {
    event_loop loop;
    EXPECT_FALSE(loop.is_running());
    EXPECT_THROW(pyco::get_running_loop(), pyco::runtime_error);
    loop.call_soon([&] {
        EXPECT_TRUE(loop.is_running());
        EXPECT_EQ(&pyco::get_running_loop(), &loop);
        EXPECT_THROW(loop.run_forever(), pyco::runtime_error);
        EXPECT_THROW(loop.close(), pyco::runtime_error);
        event_loop other;
        try {
            other.run_forever();
            ADD_FAILURE();
        } catch (const pyco::runtime_error& e) {
            EXPECT_STREQ(e.what(), "Cannot run the event loop while another loop is running");
        }
        loop.stop();
    });
    loop.run_forever();
    EXPECT_THROW(pyco::get_running_loop(), pyco::runtime_error);
}

TEST(EventLoop, ClosedLoopRefusesWork) {
    event_loop loop;
    bool ran = false;
    loop.call_soon([&] { ran = true; });
    loop.close();
    EXPECT_TRUE(loop.is_closed());
    loop.close();  // twice is fine
    try {
        loop.call_soon([] {});
        FAIL();
    } catch (const pyco::runtime_error& e) {
        EXPECT_STREQ(e.what(), "Event loop is closed");
    }
    EXPECT_THROW(loop.run_forever(), pyco::runtime_error);
    EXPECT_FALSE(ran);
}

struct pipe_fds {
    int r = -1, w = -1;
    pipe_fds() {
        int fds[2];
        if (::pipe(fds) == 0) {
            r = fds[0];
            w = fds[1];
        }
    }
    ~pipe_fds() {
        ::close(r);
        ::close(w);
    }
};

TEST(EventLoop, ReaderRunsWhenDataArrives) {
    event_loop loop;
    pipe_fds p;
    ASSERT_GE(p.r, 0);
    std::string got;
    loop.add_reader(p.r, [&] {
        char buf[16];
        auto n = ::read(p.r, buf, sizeof buf);
        got.append(buf, static_cast<std::size_t>(n));
        loop.stop();
    });
    loop.call_later(5ms, [&] { ASSERT_EQ(::write(p.w, "hi", 2), 2); });
    loop.run_forever();
    EXPECT_EQ(got, "hi");
    EXPECT_TRUE(loop.remove_reader(p.r));
    EXPECT_FALSE(loop.remove_reader(p.r));
}

TEST(EventLoop, WriterRunsWhenWritable) {
    event_loop loop;
    pipe_fds p;
    int calls = 0;
    loop.add_writer(p.w, [&] {
        ++calls;
        loop.remove_writer(p.w);
        loop.stop();
    });
    loop.run_forever();
    EXPECT_EQ(calls, 1);
    EXPECT_FALSE(loop.remove_writer(p.w));
}

TEST(EventLoop, ReaderAndWriterOnOneFdAndReplacement) {
    event_loop loop;
    pipe_fds p;
    trace_t tr;
    loop.add_reader(p.r, [&] { tr.push_back("old reader"); });
    loop.add_reader(p.r, [&] {  // replaces the first, as in CPython
        char c;
        ASSERT_EQ(::read(p.r, &c, 1), 1);
        tr.push_back("new reader");
        loop.stop();
    });
    ASSERT_EQ(::write(p.w, "x", 1), 1);
    loop.run_forever();
    EXPECT_EQ(tr, trace_t{"new reader"});
    loop.remove_reader(p.r);
}

TEST(EventLoop, BadFdIsAnError) {
    event_loop loop;
    EXPECT_THROW(loop.add_reader(-1, [] {}), pyco::value_error);
    EXPECT_THROW(loop.add_reader(987654, [] {}), std::system_error);  // not open
    EXPECT_FALSE(loop.remove_reader(987654));
}

TEST(EventLoop, DebugModeReportsSlowCallbacks) {
    event_loop loop({.debug = true});
    EXPECT_TRUE(loop.get_debug());
    loop.set_slow_callback_duration(1ms);
    testing::internal::CaptureStderr();
    loop.call_soon([] { ::usleep(5000); });
    loop.call_soon([&] { loop.stop(); });
    loop.run_forever();
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("took"), std::string::npos) << err;
    EXPECT_NE(err.find("seconds"), std::string::npos) << err;
}

TEST(EventLoop, DebugFromEnvironment) {
    ::setenv("PYCO_DEBUG", "1", 1);
    event_loop on;
    ::setenv("PYCO_DEBUG", "0", 1);
    event_loop off;
    ::unsetenv("PYCO_DEBUG");
    event_loop unset;
    EXPECT_TRUE(on.get_debug());
    EXPECT_FALSE(off.get_debug());
    EXPECT_FALSE(unset.get_debug());
}

// ---- delays beyond the clock (detail/saturate.hpp) ----------------------

TEST(Saturate, DelaysConvertExactlyOrClampToTheClocksRange) {
    using ns = std::chrono::nanoseconds;
    using pyco::detail::saturating_ceil;
    using dsec = std::chrono::duration<double>;
    using pico = std::chrono::duration<long long, std::pico>;
    using years = std::chrono::years;
    // In range: exact, rounded up.
    EXPECT_EQ(saturating_ceil<ns>(5s), ns(5'000'000'000));
    EXPECT_EQ(saturating_ceil<ns>(-1ms), ns(-1'000'000));
    EXPECT_EQ(saturating_ceil<ns>(pico(1500)), ns(2));
    EXPECT_EQ(saturating_ceil<ns>(pico(-1500)), ns(-1));
    EXPECT_EQ(saturating_ceil<ns>(dsec(1.5e-9)), ns(2));
    EXPECT_EQ(saturating_ceil<ns>(std::chrono::seconds(9'223'372'036)), ns(9'223'372'036'000'000'000));
    EXPECT_EQ(saturating_ceil<ns>(ns::max()), ns::max());
    EXPECT_EQ(saturating_ceil<ns>(ns::min()), ns::min());
    EXPECT_EQ(saturating_ceil<ns>(years(292)), std::chrono::duration_cast<ns>(years(292)));
    // Beyond: the clock's end (or its beginning).
    EXPECT_EQ(saturating_ceil<ns>(std::chrono::seconds(9'223'372'037)), ns::max());
    EXPECT_EQ(saturating_ceil<ns>(years(293)), ns::max());
    EXPECT_EQ(saturating_ceil<ns>(std::chrono::seconds::max()), ns::max());
    EXPECT_EQ(saturating_ceil<ns>(std::chrono::hours::max()), ns::max());
    EXPECT_EQ(saturating_ceil<ns>(std::chrono::hours::min()), ns::min());
    EXPECT_EQ(saturating_ceil<ns>(std::chrono::duration<unsigned long long>(~0ULL)), ns::max());
    EXPECT_EQ(saturating_ceil<ns>(dsec(1e300)), ns::max());
    EXPECT_EQ(saturating_ceil<ns>(dsec(-1e300)), ns::min());
    EXPECT_EQ(saturating_ceil<ns>(dsec(std::numeric_limits<double>::infinity())), ns::max());
    // NaN never comes due, as in CPython.
    EXPECT_EQ(saturating_ceil<ns>(dsec(std::numeric_limits<double>::quiet_NaN())), ns::max());
    // The edge itself: 2^63 ns is one past the end.
    EXPECT_EQ(saturating_ceil<ns>(dsec(9223372036.854775808)), ns::max());
    EXPECT_EQ(saturating_ceil<ns>(std::chrono::duration<long double, std::nano>(-9223372036854775808.0L)), ns::min());
}

TEST(Saturate, DeadlinesClampToTheClocksRange) {
    using pyco::detail::saturating_add;
    using pyco::detail::saturating_sub;
    using tp = event_loop::time_point;
    using d = event_loop::duration;
    const tp now = std::chrono::steady_clock::now();
    EXPECT_EQ(saturating_add(now, 1s), now + 1s);
    EXPECT_EQ(saturating_add(now, d::max()), tp::max());
    EXPECT_EQ(saturating_add(tp::max(), 1ns), tp::max());
    EXPECT_EQ(saturating_add(now, d::min()), tp(now.time_since_epoch() + d::min()));
    EXPECT_EQ(saturating_add(tp::min(), -1ns), tp::min());
    EXPECT_EQ(saturating_sub(tp::max(), now), d::max() - now.time_since_epoch());
    EXPECT_EQ(saturating_sub(tp::min(), now), d::min());
    EXPECT_EQ(saturating_sub(tp::max(), tp::min()), d::max());
    EXPECT_EQ(saturating_sub(now, now - 1s), 1s);
}

// A timer beyond the clock used to wrap to a deadline in the past and fire
// at once.
TEST(EventLoop, CallLaterBeyondTheClockNeverComesDue) {
    event_loop loop({.virtual_time = true});
    trace_t tr;
    auto far = loop.call_later(std::chrono::nanoseconds::max(), [&] { tr.push_back("far"); });
    auto farther = loop.call_later(std::chrono::hours::max(), [&] { tr.push_back("farther"); });
    auto float_far = loop.call_later(std::chrono::duration<double>(1e300), [&] { tr.push_back("1e300"); });
    loop.call_later(100ms, [&] {
        tr.push_back("100ms");
        loop.stop();
    });
    loop.run_forever();
    EXPECT_EQ(tr, trace_t{"100ms"});
    EXPECT_EQ(far.when(), event_loop::time_point::max());
    EXPECT_EQ(farther.when(), event_loop::time_point::max());
    EXPECT_EQ(float_far.when(), event_loop::time_point::max());
}

// ... and a deadline far in the past must not make the wait overflow.
TEST(EventLoop, CallAtTheClocksBeginningRunsAtOnce) {
    event_loop loop({.virtual_time = true});
    trace_t tr;
    loop.call_at(event_loop::time_point::min(), [&] { tr.push_back("min"); });
    loop.call_later(std::chrono::hours::min(), [&] { tr.push_back("hours::min"); });
    loop.call_later(1s, [&] { loop.stop(); });
    loop.run_forever();
    EXPECT_EQ(tr, (trace_t{"min", "hours::min"}));
}

// On real time the wrapped deadline left the loop asleep in epoll for about
// 25 days: a 1 ms timer behind it never fired (this hung until ctest's
// timeout before the fix).
TEST(EventLoop, RealTimeLoopWithAnEndlessTimerStillRunsTheOthers) {
    event_loop loop;
    bool far = false;
    loop.call_later(std::chrono::nanoseconds::max(), [&] { far = true; });
    loop.call_later(1ms, [&] { loop.stop(); });
    loop.run_forever();
    EXPECT_FALSE(far);
}

TEST(EventLoop, BackendIsEpoll) {
    event_loop loop;
    EXPECT_STREQ(loop.backend_name(), "epoll");
}

}  // namespace
