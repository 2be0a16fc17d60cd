// A server whose accept fails for lack of resources (EMFILE, ENFILE,
// ENOBUFS, ENOMEM) reports it once and pauses (asyncio's
// ACCEPT_RETRY_DELAY, 1 s) before it accepts again: it must not spin, and
// it serves the connection once the fds are back. The faults are injected
// where the backend makes its accept (tests/io/fault_util.hpp), on both
// backends; virtual time keeps the real one-second pauses out of the run.
#include <gtest/gtest.h>

#include <pyco/net/connection.hpp>
#include <pyco/net/server.hpp>
#include <pyco/net/streams.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>
#include <pyco/wait.hpp>

#include "io/fault_util.hpp"

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using reader_ptr = std::shared_ptr<pyco::stream_reader>;

TEST(FaultAccept, EmfileIsReportedOncePerPauseAndTheServerRecovers) {
    pyco::detail::fault_config c;
    c.seed = 7;
    c.rate = 1.0;  // every accept fails...
    c.kinds = pyco::detail::fk_emfile;
    const int fds = fault_test::open_fds();
    struct report {
        std::string message;
        std::string error;
        pyco::event_loop::time_point when;
    };
    std::vector<report> reports;
    std::uint64_t calls_while_failing = 0;
    auto body = [&]() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        loop.set_exception_handler([&](pyco::event_loop& l, const pyco::exception_context& ctx) {
            reports.push_back({ctx.message, fault_test::classify(ctx.exception), l.time()});
        });
        auto echo = [](reader_ptr r, pyco::stream_writer w) -> coroutine<void> {
            std::string line = co_await r->readline();
            w.write(line);
            co_await w.drain();
            w.close();
        };
        pyco::server srv = co_await pyco::start_server(echo, "127.0.0.1", 0);
        auto [r, w] = co_await pyco::open_connection("127.0.0.1", srv.sockets().at(0).port());
        w.write("ping\n");
        // Three pauses' worth of (virtual) time with every accept failing.
        co_await pyco::sleep(3500ms);
        calls_while_failing = pyco::detail::tls_faults->counts().accept_calls;
        pyco::detail::fault_config ok = c;
        ok.rate = 0;  // ...until the fds are back
        pyco::detail::tls_faults->set_config(ok);
        std::string got = co_await pyco::wait_for(r->readline(), 10s);
        EXPECT_EQ(got, "ping\n");
        w.close();
        co_await w.wait_closed();
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::loop_options o;
    o.faults = &c;
    o.virtual_time = true;
    pyco::run(body(), o);
    // One report per failed accept, one failed accept per pause: the first
    // at once, then one each second (3.5 s: four in all), and no spin.
    ASSERT_EQ(reports.size(), 4u);
    EXPECT_EQ(calls_while_failing, reports.size());
    for (std::size_t i = 0; i < reports.size(); ++i) {
        EXPECT_EQ(reports[i].message, "socket.accept() out of system resource");
        EXPECT_EQ(reports[i].error, "EMFILE");
        if (i > 0) {
            EXPECT_GE(reports[i].when - reports[i - 1].when, std::chrono::seconds(1));
        }
    }
    EXPECT_EQ(fault_test::open_fds(), fds);
}

// PYCO_FAULTS: what a failing schedule prints must reproduce it, and a typo
// must not silently run without faults.
TEST(FaultConfig, ParsesWhatDescribePrints) {
    const pyco::detail::fault_config c = pyco::detail::parse_faults("seed=42,rate=0.25,kinds=eagain,short,reset");
    EXPECT_EQ(c.seed, 42u);
    EXPECT_EQ(c.rate, 0.25);
    EXPECT_EQ(c.kinds, pyco::detail::fk_eagain | pyco::detail::fk_short | pyco::detail::fk_reset);
    const pyco::detail::fault_config d = pyco::detail::parse_faults(pyco::detail::describe(c));
    EXPECT_EQ(d.seed, c.seed);
    EXPECT_EQ(d.rate, c.rate);
    EXPECT_EQ(d.kinds, c.kinds);
    EXPECT_EQ(pyco::detail::parse_faults("kinds=benign").kinds, pyco::detail::fk_benign);
    EXPECT_EQ(pyco::detail::parse_faults("kinds=all").kinds, pyco::detail::fk_benign | pyco::detail::fk_fatal);
    EXPECT_THROW(pyco::detail::parse_faults("seed=1,kinds=eagian"), pyco::value_error);
    EXPECT_THROW(pyco::detail::parse_faults("rate=2"), pyco::value_error);
    EXPECT_THROW(pyco::detail::parse_faults("sed=1"), pyco::value_error);
}

}  // namespace
