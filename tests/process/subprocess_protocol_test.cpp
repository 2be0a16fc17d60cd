// loop.subprocess_exec / subprocess_shell with a subprocess_protocol: the
// callbacks' order (asyncio's base_subprocess) and the transport's methods.
#include <pyco/subprocess_transport.hpp>

#include <signal.h>

#include <algorithm>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <pyco/event_loop.hpp>
#include <pyco/net/os_error.hpp>
#include <pyco/net/transport.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using pyco::subprocess_options;
namespace sp = pyco::subprocess;

struct recorder : pyco::subprocess_protocol {
    std::vector<std::string> events;
    std::string out, err;
    pyco::subprocess_transport* transport = nullptr;
    int pauses = 0;
    void connection_made(pyco::subprocess_transport& t) override {
        transport = &t;
        events.push_back("made");
    }
    void pipe_data_received(int fd, std::span<const std::byte> data) override {
        (fd == 1 ? out : err).append(reinterpret_cast<const char*>(data.data()), data.size());
    }
    void pipe_connection_lost(int fd, std::exception_ptr exc) override {
        events.push_back("pipe_lost " + std::to_string(fd) + (exc ? " error" : ""));
    }
    void process_exited() override {
        events.push_back("exited " + std::to_string(transport->get_returncode().value_or(999)));
    }
    void connection_lost(std::exception_ptr exc) override { events.push_back(exc ? "lost error" : "lost"); }
    void pause_writing() override { ++pauses; }
};

std::shared_ptr<recorder> made;
pyco::subprocess_protocol_factory factory() {
    return [] {
        made = std::make_shared<recorder>();
        return made;
    };
}

TEST(SubprocessProtocol, CallbackOrder) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        subprocess_options o;
        o.stdin = sp::PIPE;
        o.stdout = sp::PIPE;
        o.stderr = sp::PIPE;
        auto [t, p] = co_await loop.subprocess_shell(factory(), "read x; echo out$x; echo err$x >&2; exit 3", o);
        EXPECT_EQ(p, made);
        EXPECT_EQ(made->events, std::vector<std::string>{"made"});
        EXPECT_GT(t->get_pid(), 0);
        EXPECT_FALSE(t->get_returncode());
        EXPECT_NE(t->get_pipe_transport(0), nullptr);
        if (!t->get_pipe_transport(0)) co_return;
        EXPECT_NE(t->get_pipe_transport(1), nullptr);
        EXPECT_NE(t->get_pipe_transport(2), nullptr);
        EXPECT_EQ(t->get_pipe_transport(3), nullptr);
        t->get_pipe_transport(0)->write("1\n");
        t->get_pipe_transport(0)->close();
        EXPECT_EQ(co_await t->wait(), 3);
        EXPECT_EQ(t->get_returncode(), 3);
        EXPECT_EQ(made->out, "out1\n");
        EXPECT_EQ(made->err, "err1\n");
        const auto& ev = made->events;
        // made first, lost last; each pipe lost once; exited once.
        EXPECT_EQ(ev.size(), 6u);
        EXPECT_EQ(ev.front(), "made");
        EXPECT_EQ(ev.back(), "lost");
        for (const char* e : {"pipe_lost 0", "pipe_lost 1", "pipe_lost 2", "exited 3"}) {
            EXPECT_EQ(std::count(ev.begin(), ev.end(), e), 1) << e;
        }
        EXPECT_THROW(t->kill(), pyco::process_lookup_error);
    };
    pyco::run(body());
}

// The child has exited, but a grandchild holds stdout: process_exited comes,
// connection_lost (and wait()) only once the pipe closes.
TEST(SubprocessProtocol, ExitedBeforePipeLost) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        subprocess_options o;
        o.stdout = sp::PIPE;
        auto [t, p] = co_await loop.subprocess_shell(factory(), "(sleep 0.2; echo late) & exit 0", o);
        while (!t->get_returncode()) co_await pyco::sleep(1ms);
        EXPECT_EQ(made->events, (std::vector<std::string>{"made", "exited 0"}));
        t->kill();  // exited, not finished: ignored
        EXPECT_EQ(co_await t->wait(), 0);
        EXPECT_EQ(made->out, "late\n");
        EXPECT_EQ(made->events, (std::vector<std::string>{"made", "exited 0", "pipe_lost 1", "lost"}));
    };
    pyco::run(body());
}

// close() kills a child still running and closes the pipes.
TEST(SubprocessProtocol, CloseKillsTheChild) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        subprocess_options o;
        o.stdin = sp::PIPE;
        std::vector<std::string> argv{"sleep", "100"};
        auto [t, p] = co_await loop.subprocess_exec(factory(), argv, o);
        EXPECT_FALSE(t->is_closing());
        t->close();
        EXPECT_TRUE(t->is_closing());
        EXPECT_EQ(co_await t->wait(), -SIGKILL);
        EXPECT_EQ(made->events.back(), "lost");
    };
    pyco::run(body());
}

// stdin's flow control reaches the protocol: pause_writing above 64 KiB.
TEST(SubprocessProtocol, StdinFlowControl) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        subprocess_options o;
        o.stdin = sp::PIPE;
        std::vector<std::string> argv{"sleep", "100"};
        auto [t, p] = co_await loop.subprocess_exec(factory(), argv, o);
        std::string big(1024 * 1024, 'x');
        t->get_pipe_transport(0)->write(big);
        EXPECT_EQ(made->pauses, 1);
        EXPECT_GT(t->get_pipe_transport(0)->get_write_buffer_size(), 0u);
        t->terminate();
        EXPECT_EQ(co_await t->wait(), -SIGTERM);
        // stdin was lost with its bytes unsent: broken pipe.
        EXPECT_EQ(std::count(made->events.begin(), made->events.end(), "pipe_lost 0 error"), 1);
    };
    pyco::run(body());
}

// The overloads without options: stdin, stdout, stderr are PIPE, as
// asyncio's loop.subprocess_exec/subprocess_shell defaults.
TEST(SubprocessProtocol, DefaultOptionsArePipes) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        auto [t, p] = co_await loop.subprocess_shell(factory(), "echo o; echo e >&2; exit 2");
        EXPECT_NE(t->get_pipe_transport(0), nullptr);
        EXPECT_NE(t->get_pipe_transport(1), nullptr);
        EXPECT_NE(t->get_pipe_transport(2), nullptr);
        t->get_pipe_transport(0)->close();
        EXPECT_EQ(co_await t->wait(), 2);
        EXPECT_EQ(made->out, "o\n");
        EXPECT_EQ(made->err, "e\n");
        std::vector<std::string> argv{"true"};
        auto [t2, p2] = co_await loop.subprocess_exec(factory(), argv);
        EXPECT_NE(t2->get_pipe_transport(1), nullptr);
        EXPECT_EQ(co_await t2->wait(), 0);
        // With options: as given (inherit by default).
        auto [t3, p3] = co_await loop.subprocess_shell(factory(), "exit 0", subprocess_options{});
        EXPECT_EQ(t3->get_pipe_transport(1), nullptr);
        EXPECT_EQ(co_await t3->wait(), 0);
    };
    pyco::run(body());
}

}  // namespace
