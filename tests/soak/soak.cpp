// soak — 10,000 connections on loopback for a bounded time, on one backend
// (issue 11 §4). Not a benchmark: a correctness run under load.
//
//   soak [--backend epoll|io_uring] [--seconds N] [--connections N] [--seed N]
//        [--slow-max N]
//
// Three processes. The SERVER (a pyco loop on the chosen backend) echoes
// with start_server + write + drain, so its write buffers are capped by the
// transport's high-water mark and a slow reader makes it stop reading that
// connection. The CLIENT (a pyco loop on epoll) keeps --connections open:
// each is a coroutine running sessions back to back until the run time is
// up. A session is ping-pong rounds of random sizes, then one finale: a
// reset (SO_LINGER {1,0}, then abort: an RST, sometimes with an echo still
// in flight), a half-close (stream a blob, write_eof, read the echo to EOF:
// the server must echo everything, then close) or a slow read (stream
// 3-8 MiB while reading it back, for the first 3 s in small reads with
// sleeps). Every echoed
// byte is checked against the session's pattern, so a lost, duplicated or
// reordered byte is caught. The PARENT forks both, passes the server's port
// on, waits for both and judges: it prints one screen and one JSON line.
//
// What fails the run (exit 1):
//   - an error the client did not cause: the server may see
//     connection_reset_error / broken_pipe_error only as many times as the
//     client sent RSTs; anything else, anywhere, is unexplained;
//   - any echoed byte that differs, or an EOF before the whole echo;
//   - the server's peak heap in use over the bound (below), its peak RSS
//     over 1.5 x that bound, or its write buffer above high-water mark +
//     one read;
//   - a stuck connection: an operation waiting on the peer for over 30 s, a
//     client that does not finish within 60 s of the run time, a server
//     whose connections are not all closed 20 s after the client ended;
//   - the server's loop not closing clean: a task left at the end, or a
//     different number of open fds after the loop closed than before;
//   - a process that does not end by itself (the parent kills it at the
//     run time + 120 s; each child also has an alarm()).
// Exit 77: where the run cannot be made (io_uring unavailable, or
// RLIMIT_NOFILE's hard limit below what a process needs), saying why.
//
// The memory bound. Per connection pyco holds a transport, a protocol, a
// stream_reader, a writer and the handler's task frame: about 8 KiB
// (measured: the heap in use on epoll, 10,000 connections, is ~12 KiB per
// connection with the traffic below). An emptied reader keeps a block of
// at most 16 KiB and an emptied write buffer a chunk of at most 16 KiB
// (src/net/stream_reader.cpp, socket_transport.cpp); a ping-pong message
// the client lets through without a permit is at most 8 KiB. So each
// connection: 8 + 16 + 16 + 8 = 48 KiB. Streaming connections carry more,
// bounded by flow control: the reader's buffer stops the transport at
// 2 x limit (128 KiB), the handler's read is at most 64 KiB, and the write
// buffer is at most high-water (64 KiB) + one read (64 KiB): 320 KiB. The
// client lets only --slow-max connections stream (a slow read, a
// half-close, a message over 8 KiB) at once. So:
//   bound = heap at listen + C x 48 KiB + S x 320 KiB
//           (+ on io_uring the receive buffer ring at its largest,
//              4096 x 16 KiB: src/io/uring_backend, uring_config)
// checked against malloc's bytes in use (mallinfo2), which is what pyco
// holds. RSS is checked against RSS at listen + 1.5 x the same sum: the
// allocator keeps memory that was freed (measured: RSS up to 1.5 x the
// heap in use after 120 s on io_uring, 1.15 x on epoll).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <pyco/detail/io_backend.hpp>
#include <pyco/pyco.hpp>

#include "soak_util.hpp"

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using reader_ptr = std::shared_ptr<pyco::stream_reader>;
using clk = std::chrono::steady_clock;

using namespace soak;

// ---- the server ------------------------------------------------------------

struct server_state {
    server_report rep;
    clk::time_point started = clk::now();
    double seconds = 1;
    std::uint64_t active = 0;
};

coroutine<void> echo(server_state& st, reader_ptr r, pyco::stream_writer w) {
    ++st.rep.accepted;
    ++st.active;
    try {
        for (;;) {
            std::string data = co_await r->read(static_cast<std::ptrdiff_t>(read_size));
            if (data.empty()) break;  // EOF: everything read was echoed
            st.rep.bytes += data.size();
            w.write(data);
            const std::size_t buffered = w.get_write_buffer_size();
            st.rep.max_write_buffer = std::max<std::uint64_t>(st.rep.max_write_buffer, buffered);
            if (buffered > high_water) ++st.rep.drains_waited;
            co_await w.drain();
        }
        w.close();
        co_await w.wait_closed();
        ++st.rep.finished;
    } catch (const pyco::connection_reset_error&) {
        ++st.rep.resets;
    } catch (const pyco::broken_pipe_error&) {
        ++st.rep.broken_pipes;
    } catch (const std::exception& e) {
        ++st.rep.other_errors;
        note_error(st.rep.first_error, type_and_what(e));
    }
    --st.active;
}

coroutine<void> sample_rss(server_state& st) {
    for (;;) {
        const std::uint64_t rss = rss_bytes();
        st.rep.rss_peak = std::max(st.rep.rss_peak, rss);
        const std::uint64_t heap = heap_in_use();
        st.rep.heap_peak = std::max(st.rep.heap_peak, heap);
        ++st.rep.samples;
        // Peaks by tenth of the run: does memory level off or keep growing?
        const auto tenth = std::chrono::duration<double>(clk::now() - st.started).count() * 10 / st.seconds;
        const auto k = static_cast<std::size_t>(std::clamp(tenth, 0.0, 9.0));
        st.rep.rss_by_tenth[k] = std::max(st.rep.rss_by_tenth[k], rss);
        st.rep.heap_by_tenth[k] = std::max(st.rep.heap_by_tenth[k], heap);
        co_await pyco::sleep(100ms);
    }
}

coroutine<int> serve(server_state& st, int result_fd, int stop_fd) {
    pyco::event_loop& loop = pyco::get_running_loop();
    // Reports that reach the loop's handler: a reset may be reported there
    // (a transport's fatal error), anything else is unexplained.
    loop.set_exception_handler([&st](pyco::event_loop&, const pyco::exception_context& ctx) {
        ++st.rep.handler_reports;
        bool reset = false;
        if (ctx.exception) {
            try {
                std::rethrow_exception(ctx.exception);
            } catch (const pyco::connection_reset_error&) {
                reset = true;
            } catch (const pyco::broken_pipe_error&) {
                reset = true;
            } catch (const std::exception& e) {
                note_error(st.rep.first_error, ctx.message + ": " + type_and_what(e));
            } catch (...) {
                note_error(st.rep.first_error, ctx.message);
            }
        } else {
            note_error(st.rep.first_error, ctx.message);
        }
        if (reset) ++st.rep.handler_reports_reset;
    });
    auto handler = [&st](reader_ptr r, pyco::stream_writer w) { return echo(st, std::move(r), std::move(w)); };
    pyco::start_server_options so;
    so.backlog = 4096;  // net.core.somaxconn here
    pyco::server srv = co_await pyco::start_server(handler, "127.0.0.1", 0, so);
    st.rep.rss_listen = rss_bytes();
    st.rep.heap_listen = heap_in_use();
    const std::uint16_t port = srv.sockets().at(0).port();
    if (!write_all(result_fd, &port, sizeof port)) co_return 4;
    pyco::task<void> sampler = pyco::create_task(sample_rss(st));
    pyco::event stop;
    loop.add_reader(stop_fd, [&stop] { stop.set(); });
    co_await stop.wait();
    loop.remove_reader(stop_fd);
    // The client has ended: every connection should be closing or closed.
    srv.close();
    bool timed_out = false;
    try {
        co_await pyco::wait_for(srv.wait_closed(), 20s);
    } catch (const pyco::timeout_error&) {
        timed_out = true;
    }
    if (timed_out) {
        st.rep.left_open = st.active;
        srv.abort_clients();
        co_await srv.wait_closed();
    }
    sampler.cancel();
    try {
        co_await sampler;
    } catch (const pyco::cancelled_error&) {
    }
    st.rep.rss_final = rss_bytes();
    st.rep.tasks_left = pyco::all_tasks().size() - 1;  // this one
    co_return 0;
}

[[noreturn]] void server_process(const options& opt, int result_fd, int stop_fd) {
    ::alarm(static_cast<unsigned>(opt.seconds) + 150);
    server_state st;
    st.seconds = opt.seconds;
    std::string why;
    if (!raise_fd_limit(static_cast<rlim_t>(opt.connections) + 200, why)) ::_exit(3);
    st.rep.fds_before = count_fds();
    int rc = 6;
    try {
        pyco::loop_options lo;
        lo.backend = opt.uring ? pyco::io_backend_kind::io_uring : pyco::io_backend_kind::epoll;
        rc = pyco::run(serve(st, result_fd, stop_fd), lo);
    } catch (const std::exception& e) {
        note_error(st.rep.first_error, type_and_what(e));
        rc = 7;
    }
    st.rep.fds_after = count_fds();
    st.rep.heap_final = heap_in_use();
    st.rep.ok_started = rc == 0;
    ::close(stop_fd);
    write_all(result_fd, &st.rep, sizeof st.rep);
    ::_exit(rc);
}

// ---- the client ------------------------------------------------------------

struct client_state {
    const options& opt;
    std::uint16_t port;
    clk::time_point started, deadline;
    client_report rep;
    std::vector<std::uint32_t> rtt_us;
    pyco::semaphore connecting{512};  // pending connects stay well under the backlog
    pyco::semaphore streaming;        // slow reads, half-closes, messages over 8 KiB
    // Per connection: since when it has waited on the server (zero: not
    // waiting), for the stuck check.
    std::vector<clk::time_point> waiting_since;
    std::vector<const char*> waiting_on;
    std::vector<char> reported_stuck;
    explicit client_state(const options& o)
        : opt(o), streaming(o.slow_max), waiting_since(static_cast<std::size_t>(o.connections)),
          waiting_on(static_cast<std::size_t>(o.connections), ""),
          reported_stuck(static_cast<std::size_t>(o.connections), 0) {}
    void wait_on(int id, const char* what) {
        waiting_since[static_cast<std::size_t>(id)] = clk::now();
        waiting_on[static_cast<std::size_t>(id)] = what;
    }
    void done_waiting(int id) { waiting_since[static_cast<std::size_t>(id)] = {}; }
    void mismatch(const std::string& what) {
        ++rep.mismatches;
        note_error(rep.first_error, what);
    }
};

struct conn {
    reader_ptr r;
    pyco::stream_writer w;
    std::uint64_t key = 0, sent = 0, received = 0;
};

std::size_t message_size(std::mt19937_64& rng) {
    const std::uint64_t x = rng() % 1000;
    if (x < 800) return 1 + rng() % 256;
    if (x < 970) return 257 + rng() % (8192 - 256);
    return 8193 + rng() % (65536 - 8192);
}

coroutine<void> round_trip(client_state& cl, int id, conn& c, std::size_t n) {
    const auto t0 = clk::now();
    c.w.write(pattern(c.key, c.sent, n));
    c.sent += n;
    cl.rep.bytes_sent += n;
    cl.wait_on(id, "a ping-pong echo");
    co_await c.w.drain();
    std::string back = co_await c.r->readexactly(static_cast<std::ptrdiff_t>(n));
    cl.done_waiting(id);
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(clk::now() - t0).count();
    cl.rtt_us.push_back(static_cast<std::uint32_t>(std::min<long long>(us, UINT32_MAX)));
#ifdef SOAK_DEBUG_RTT
    if (us > 5000) std::fprintf(stderr, "rtt %lld us size %zu\n", static_cast<long long>(us), n);
#endif
    if (!matches(c.key, c.received, back)) cl.mismatch("ping-pong echo differs from what was sent");
    c.received += n;
    cl.rep.bytes_echoed += n;
    ++cl.rep.rounds;
}

// RST: SO_LINGER {1, 0}, then abort (close() would flush first).
void reset(client_state& cl, conn& c) {
    const int fd = std::any_cast<int>(c.w.get_extra_info("socket"));
    const linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    c.w.transport().abort();
    ++cl.rep.rsts;
}

coroutine<void> stream_out(client_state& cl, conn& c, std::uint64_t total) {
    std::uint64_t left = total;
    while (left > 0) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, 60000));
        c.w.write(pattern(c.key, c.sent, n));
        c.sent += n;
        cl.rep.bytes_sent += n;
        left -= n;
        co_await c.w.drain();
    }
    c.w.write_eof();
}

// Reads the echo to EOF; slow: small reads with sleeps in between.
coroutine<void> stream_in(client_state& cl, int id, conn& c, std::uint64_t total, bool slow,
                          std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    const std::uint64_t end = c.received + total;
    const auto slow_until = clk::now() + 3s;
    for (;;) {
        const std::ptrdiff_t n = slow ? static_cast<std::ptrdiff_t>(1024 + rng() % 16384) : 65536;
        cl.wait_on(id, slow ? "a slow read" : "a half-close echo");
        std::string got = co_await c.r->read(n);
        cl.done_waiting(id);
        if (got.empty()) break;
        if (c.received + got.size() > end) {
            cl.mismatch("more bytes echoed than sent");
            break;
        }
        if (!matches(c.key, c.received, got)) cl.mismatch("streamed echo differs from what was sent");
        c.received += got.size();
        cl.rep.bytes_echoed += got.size();
        // Slow for 3 s at most, then at full speed: the kernel's buffers and
        // then the server's write buffer fill in the first second, and a
        // loaded loop (whose sleeps overrun) cannot stretch one session
        // without end.
        if (slow && clk::now() < slow_until) co_await pyco::sleep(std::chrono::milliseconds(1 + rng() % 10));
    }
    if (c.received != end) cl.mismatch("EOF before the whole echo (half-close)");
}

coroutine<void> stream_session(client_state& cl, int id, conn& c, std::uint64_t total, bool slow,
                               std::uint64_t seed) {
    std::vector<coroutine<void>> both;
    both.push_back(stream_out(cl, c, total));
    both.push_back(stream_in(cl, id, c, total, slow, seed));
    co_await pyco::gather(both);
    c.w.close();
    co_await c.w.wait_closed();
}

coroutine<void> session(client_state& cl, int id, std::mt19937_64& rng) {
    cl.wait_on(id, "a connect");
    co_await cl.connecting.acquire();
    conn c;
    try {
        pyco::stream_pair p = co_await pyco::open_connection("127.0.0.1", cl.port);
        c.r = std::move(p.first);
        c.w = std::move(p.second);
    } catch (...) {
        cl.connecting.release();
        throw;
    }
    cl.connecting.release();
    cl.done_waiting(id);
    ++cl.rep.connects;
    ++cl.rep.sessions;
    if (cl.rep.connects == static_cast<std::uint64_t>(cl.opt.connections)) {
        cl.rep.ramp_s = std::chrono::duration<double>(clk::now() - cl.started).count();
    }
    c.key = rng() % P;
    const std::uint64_t pick = rng() % 100;
    // Most sessions are long: bounded churn keeps ephemeral ports and
    // TIME_WAIT sockets far from running out.
    const int rounds = 5 + static_cast<int>(rng() % 40);
    for (int i = 0; i < rounds && clk::now() < cl.deadline; ++i) {
        const std::size_t n = message_size(rng);
        if (n > 8192) {
            co_await cl.streaming.acquire();
            co_await round_trip(cl, id, c, n);
            cl.streaming.release();
        } else {
            co_await round_trip(cl, id, c, n);
        }
        co_await pyco::sleep(std::chrono::milliseconds(rng() % 2000));
    }
    const bool late = clk::now() >= cl.deadline;
    if (pick < 45) {
        if (rng() % 2 == 0) {
            // An echo still in flight: the server's write may meet the RST.
            const std::size_t n = message_size(rng);
            c.w.write(pattern(c.key, c.sent, n));
            c.sent += n;
            cl.rep.bytes_sent += n;
            ++cl.rep.finale_reset_in_flight;
        }
        reset(cl, c);
        ++cl.rep.finale_reset;
        co_return;
    }
    // Near the end, no slow read (one lasts seconds), and half-closes stay
    // small (at most 8 KiB, as a message without a permit: the memory
    // bound) and need no permit: the run ends soon after its time.
    const bool slow = pick >= 80 && clk::now() + 6s < cl.deadline;
    if (late) {
        co_await stream_session(cl, id, c, 1 + rng() % 8192, false, rng());
        ++cl.rep.finale_halfclose;
        co_return;
    }
    co_await cl.streaming.acquire();
    // A slow read must outgrow what the kernel buffers on loopback (the
    // server's send buffer is autotuned to ~2.6 MiB at connect, the
    // client's receive buffer holds 128 KiB) for the server's write buffer
    // to reach its high-water mark: 3 to 8 MiB.
    const std::uint64_t total = slow ? (3u << 20) + rng() % (5u << 20) : 1 + rng() % (256u << 10);
    try {
        co_await stream_session(cl, id, c, total, slow, rng());
    } catch (...) {
        cl.streaming.release();
        throw;
    }
    cl.streaming.release();
    ++(slow ? cl.rep.finale_slowread : cl.rep.finale_halfclose);
}

coroutine<void> worker(client_state& cl, int id) {
    std::mt19937_64 rng(cl.opt.seed * 1000003u + static_cast<std::uint64_t>(id));
    while (clk::now() < cl.deadline) {
        bool failed = false;
        try {
            co_await session(cl, id, rng);
        } catch (const pyco::cancelled_error&) {
            throw;
        } catch (const std::exception& e) {
            ++cl.rep.errors;
            note_error(cl.rep.first_error, type_and_what(e));
            failed = true;
        }
        if (failed) co_await pyco::sleep(100ms);  // no spin if the server is gone
    }
}

coroutine<void> watch_stuck(client_state& cl) {
    for (int tick = 0;; ++tick) {
        co_await pyco::sleep(1s);
        if (tick % 2 == 0) cl.rep.time_wait_peak = std::max(cl.rep.time_wait_peak, count_time_wait(cl.port));
        const auto now = clk::now();
        for (std::size_t i = 0; i < cl.waiting_since.size(); ++i) {
            const auto since = cl.waiting_since[i];
            if (since == clk::time_point{} || now - since < stuck_after || cl.reported_stuck[i]) continue;
            cl.reported_stuck[i] = 1;
            ++cl.rep.stuck;
            note_error(cl.rep.first_error, "connection " + std::to_string(i) + " stuck in " + cl.waiting_on[i]);
        }
    }
}

coroutine<void> run_clients(client_state& cl) {
    cl.started = clk::now();
    cl.deadline = cl.started + std::chrono::seconds(cl.opt.seconds);
    pyco::task<void> watcher = pyco::create_task(watch_stuck(cl));
    std::vector<pyco::task<void>> workers;
    workers.reserve(static_cast<std::size_t>(cl.opt.connections));
    for (int i = 0; i < cl.opt.connections; ++i) workers.push_back(pyco::create_task(worker(cl, i)));
    try {
        co_await pyco::wait(workers, std::chrono::seconds(cl.opt.seconds + 60));
    } catch (...) {
    }
    for (auto& w : workers) {
        if (!w.done()) {
            ++cl.rep.unfinished;
            w.cancel();
        }
    }
    for (auto& w : workers) {
        try {
            co_await w;
        } catch (...) {
        }
    }
    cl.rep.tail_s = std::chrono::duration<double>(clk::now() - cl.deadline).count();
    watcher.cancel();
    try {
        co_await watcher;
    } catch (const pyco::cancelled_error&) {
    }
}

[[noreturn]] void client_process(const options& opt, std::uint16_t port, int result_fd) {
    ::alarm(static_cast<unsigned>(opt.seconds) + 140);
    client_state cl(opt);
    cl.port = port;
    std::string why;
    if (!raise_fd_limit(static_cast<rlim_t>(opt.connections) + 200, why)) ::_exit(3);
    cl.rtt_us.reserve(1u << 22);
    const auto t0 = clk::now();
    int rc = 0;
    try {
        pyco::loop_options lo;
        lo.backend = pyco::io_backend_kind::epoll;
        pyco::run(run_clients(cl), lo);
    } catch (const std::exception& e) {
        note_error(cl.rep.first_error, type_and_what(e));
        ++cl.rep.errors;
        rc = 7;
    }
    cl.rep.elapsed_s = std::chrono::duration<double>(clk::now() - t0).count();
    auto& v = cl.rtt_us;
    auto pct = [&v](double q) -> std::uint64_t {
        if (v.empty()) return 0;
        const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
        std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
        return v[k];
    };
    cl.rep.p50_us = pct(0.5);
    cl.rep.p99_us = pct(0.99);
    cl.rep.p999_us = pct(0.999);
    cl.rep.max_us = v.empty() ? 0 : *std::max_element(v.begin(), v.end());
    cl.rep.ok = rc == 0;
    write_all(result_fd, &cl.rep, sizeof cl.rep);
    ::_exit(rc);
}

// ---- the parent -----------------------------------------------------------

// Reads n bytes before the deadline; false on EOF, error or time out.
bool read_by(int fd, void* p, std::size_t n, clk::time_point deadline) {
    auto* c = static_cast<char*>(p);
    while (n > 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clk::now()).count();
        if (left <= 0) return false;
        pollfd pfd{fd, POLLIN, 0};
        const int pr = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left, 1000)));
        if (pr < 0 && errno != EINTR) return false;
        if (pr <= 0) continue;
        const ssize_t r = ::read(fd, c, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        c += r;
        n -= static_cast<std::size_t>(r);
    }
    return true;
}

// Waits for the child until the deadline, then kills it. Returns its
// status; *killed says whether it had to be killed.
int reap(pid_t pid, clk::time_point deadline, bool& killed) {
    int status = 0;
    for (;;) {
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) return status;
        if (r < 0 && errno != EINTR) return -1;
        if (clk::now() >= deadline) {
            killed = true;
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return status;
        }
        ::usleep(20000);
    }
}

std::string describe(int status) {
    if (status == -1) return "lost";
    if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return std::string("killed by ") + ::strsignal(WTERMSIG(status));
    return "status " + std::to_string(status);
}

int usage() {
    std::fprintf(stderr,
                 "usage: soak [--backend epoll|io_uring] [--seconds N] [--connections N] [--seed N] "
                 "[--slow-max N]\n");
    return 2;
}

std::string json_escape(const char* s) {
    std::string out;
    for (; *s != '\0'; ++s) {
        if (*s == '"' || *s == '\\') out += '\\';
        out += (static_cast<unsigned char>(*s) < 0x20) ? ' ' : *s;
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const bool has_value = i + 1 < argc;
        if (a == "--backend" && has_value) {
            const std::string b = argv[++i];
            if (b != "epoll" && b != "io_uring") return usage();
            opt.uring = b == "io_uring";
        } else if (a == "--seconds" && has_value) {
            opt.seconds = std::atoi(argv[++i]);
        } else if (a == "--connections" && has_value) {
            opt.connections = std::atoi(argv[++i]);
        } else if (a == "--seed" && has_value) {
            opt.seed = std::strtoull(argv[++i], nullptr, 10);
        } else if (a == "--slow-max" && has_value) {
            opt.slow_max = std::atoi(argv[++i]);
        } else {
            return usage();
        }
    }
    if (opt.seconds < 1 || opt.connections < 1 || opt.slow_max < 1) return usage();
    const char* backend = opt.uring ? "io_uring" : "epoll";
    if (opt.uring && !pyco::detail::io_uring_unavailable_reason().empty()) {
        std::printf("soak: skipped: io_uring is unavailable: %s\n", pyco::detail::io_uring_unavailable_reason().c_str());
        return 77;
    }
    std::string why;
    if (!raise_fd_limit(static_cast<rlim_t>(opt.connections) + 200, why)) {
        std::printf("soak: skipped: %s\n", why.c_str());
        return 77;
    }
    ::signal(SIGPIPE, SIG_IGN);
    int srv_pipe[2], stop_pipe[2], cli_pipe[2];
    if (::pipe(srv_pipe) != 0 || ::pipe(stop_pipe) != 0 || ::pipe(cli_pipe) != 0) return 1;
    std::fflush(stdout);
    const auto start = clk::now();
    const auto kill_at = start + std::chrono::seconds(opt.seconds + 120);
    const pid_t server_pid = ::fork();
    if (server_pid == 0) {
        ::close(srv_pipe[0]);
        ::close(stop_pipe[1]);
        ::close(cli_pipe[0]);
        ::close(cli_pipe[1]);
        server_process(opt, srv_pipe[1], stop_pipe[0]);
    }
    ::close(srv_pipe[1]);
    ::close(stop_pipe[0]);
    std::vector<std::string> failures;
    std::uint16_t port = 0;
    server_report srep;
    client_report crep;
    bool server_killed = false, client_killed = false, got_client = false;
    int client_status = -1;
    if (!read_by(srv_pipe[0], &port, sizeof port, start + 30s)) {
        failures.push_back("the server did not start");
    } else {
        const pid_t client_pid = ::fork();
        if (client_pid == 0) {
            ::close(srv_pipe[0]);
            ::close(stop_pipe[1]);
            ::close(cli_pipe[0]);
            client_process(opt, port, cli_pipe[1]);
        }
        ::close(cli_pipe[1]);
        got_client = read_by(cli_pipe[0], &crep, sizeof crep, kill_at);
        client_status = reap(client_pid, kill_at, client_killed);
    }
    ::close(stop_pipe[1]);  // the server closes down
    const bool got_server = read_by(srv_pipe[0], &srep, sizeof srep, kill_at);
    const int server_status = reap(server_pid, kill_at, server_killed);
    const double wall = std::chrono::duration<double>(clk::now() - start).count();

    const std::uint64_t conns = static_cast<std::uint64_t>(opt.connections);
    const std::uint64_t held = conns * per_conn_budget + static_cast<std::uint64_t>(opt.slow_max) * in_flight_max +
                               (opt.uring ? uring_ring_max : 0);
    const std::uint64_t bound = srep.heap_listen + held;
    const std::uint64_t rss_bound = srep.rss_listen + held + held / 2;
    auto fail_if = [&failures](bool bad, const std::string& what) {
        if (bad) failures.push_back(what);
    };
    fail_if(client_killed, "the client did not end by itself (killed)");
    fail_if(server_killed, "the server did not end by itself (killed)");
    fail_if(!got_client && port != 0, "no report from the client (" + describe(client_status) + ")");
    fail_if(!got_server, "no report from the server (" + describe(server_status) + ")");
    if (got_client) {
        fail_if(client_status != 0, "client " + describe(client_status));
        fail_if(crep.mismatches != 0, std::to_string(crep.mismatches) + " echo mismatches");
        fail_if(crep.errors != 0, std::to_string(crep.errors) + " errors in the client");
        fail_if(crep.stuck != 0, std::to_string(crep.stuck) + " connections stuck over 30 s");
        fail_if(crep.unfinished != 0, std::to_string(crep.unfinished) + " connections unfinished 60 s after the run");
    }
    if (got_server) {
        fail_if(server_status != 0, "server " + describe(server_status));
        fail_if(srep.other_errors != 0, std::to_string(srep.other_errors) + " unexplained errors in the server");
        fail_if(srep.handler_reports != srep.handler_reports_reset,
                std::to_string(srep.handler_reports - srep.handler_reports_reset) +
                    " unexplained reports to the loop's exception handler");
        fail_if(srep.max_write_buffer > high_water + read_size, "a write buffer above high-water + one read");
        fail_if(srep.heap_peak > bound, "peak heap in use over the bound");
        fail_if(srep.rss_peak > rss_bound, "peak RSS over the bound");
        fail_if(srep.left_open != 0, std::to_string(srep.left_open) + " connections still open 20 s after the client");
        fail_if(srep.tasks_left != 0, std::to_string(srep.tasks_left) + " tasks left when the server ended");
        fail_if(srep.fds_after != srep.fds_before, "fds before the loop " + std::to_string(srep.fds_before) +
                                                       ", after it closed " + std::to_string(srep.fds_after));
    }
    if (got_client && got_server) {
        fail_if(srep.resets + srep.broken_pipes > crep.rsts,
                "the server saw more resets/broken pipes than the client sent RSTs");
        fail_if(srep.handler_reports_reset > crep.rsts, "more reset reports than RSTs");
        fail_if(srep.accepted != crep.connects, "server accepted " + std::to_string(srep.accepted) +
                                                    ", client connected " + std::to_string(crep.connects));
        fail_if(srep.finished + srep.resets + srep.broken_pipes + srep.other_errors != srep.accepted,
                "not every accepted connection ended");
    }
    const double mib = 1024.0 * 1024.0;
    std::printf("soak on %s: %d s, %d connections, seed %" PRIu64 ", slow-max %d (wall %.1f s)\n", backend,
                opt.seconds, opt.connections, opt.seed, opt.slow_max, wall);
    std::printf("  client: %" PRIu64 " connections made, %" PRIu64 " sessions, %" PRIu64 " round trips\n",
                crep.connects, crep.sessions, crep.rounds);
    std::printf("          all %d connected after %.1f s; the last session ended %.1f s after the run time\n",
                opt.connections, crep.ramp_s, crep.tail_s);
    std::printf("          TIME_WAIT sockets of the run at most %" PRIu64 " (ephemeral ports here: 28,232)\n",
                crep.time_wait_peak);
    std::printf("          finales: %" PRIu64 " reset (%" PRIu64 " with an echo in flight), %" PRIu64
                " half-close, %" PRIu64 " slow read\n",
                crep.finale_reset, crep.finale_reset_in_flight, crep.finale_halfclose, crep.finale_slowread);
    std::printf("          %.1f MiB sent, %.1f MiB echoed and checked, %" PRIu64 " mismatches, %" PRIu64
                " errors, %" PRIu64 " stuck\n",
                static_cast<double>(crep.bytes_sent) / mib, static_cast<double>(crep.bytes_echoed) / mib,
                crep.mismatches, crep.errors, crep.stuck);
    std::printf("          round trip: p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
                static_cast<double>(crep.p50_us) / 1e3, static_cast<double>(crep.p99_us) / 1e3,
                static_cast<double>(crep.p999_us) / 1e3, static_cast<double>(crep.max_us) / 1e3);
    std::printf("  server: %" PRIu64 " accepted, %" PRIu64 " ended clean, %" PRIu64 " reset, %" PRIu64
                " broken pipe (client sent %" PRIu64 " RSTs), %" PRIu64 " other errors\n",
                srep.accepted, srep.finished, srep.resets, srep.broken_pipes, crep.rsts, srep.other_errors);
    std::printf("          %.1f MiB echoed; write buffer at most %" PRIu64 " B (%" PRIu64
                " writes went over high-water and waited)\n",
                static_cast<double>(srep.bytes) / mib, srep.max_write_buffer, srep.drains_waited);
    std::printf("          heap in use: %.1f MiB at listen, peak %.1f MiB (bound %.1f MiB), %.1f MiB after the loop "
                "closed\n",
                static_cast<double>(srep.heap_listen) / mib, static_cast<double>(srep.heap_peak) / mib,
                static_cast<double>(bound) / mib, static_cast<double>(srep.heap_final) / mib);
    std::printf("          RSS: %.1f MiB at listen, peak %.1f MiB (bound %.1f MiB), final %.1f MiB (%" PRIu64
                " samples)\n",
                static_cast<double>(srep.rss_listen) / mib, static_cast<double>(srep.rss_peak) / mib,
                static_cast<double>(rss_bound) / mib, static_cast<double>(srep.rss_final) / mib, srep.samples);
    std::string heap_line, rss_line;
    for (std::size_t k = 0; k < 10; ++k) {
        heap_line += " " + std::to_string(srep.heap_by_tenth[k] >> 20);
        rss_line += " " + std::to_string(srep.rss_by_tenth[k] >> 20);
    }
    std::printf("          peak by tenth of the run, MiB: heap%s; RSS%s\n", heap_line.c_str(), rss_line.c_str());
    std::printf("          exception handler: %" PRIu64 " reports (%" PRIu64 " resets); tasks left %" PRIu64
                ", fds %d before, %d after\n",
                srep.handler_reports, srep.handler_reports_reset, srep.tasks_left, srep.fds_before, srep.fds_after);
    if (srep.first_error[0] != '\0') std::printf("  server's first error: %s\n", srep.first_error);
    if (crep.first_error[0] != '\0') std::printf("  client's first error: %s\n", crep.first_error);
    for (const auto& f : failures) std::printf("  FAILED: %s\n", f.c_str());
    std::printf("  %s\n", failures.empty() ? "PASSED" : "FAILED");
    std::printf("SOAK_JSON {\"backend\":\"%s\",\"seconds\":%d,\"connections\":%d,\"seed\":%" PRIu64
                ",\"slow_max\":%d,\"wall_s\":%.1f,\"ramp_s\":%.1f,\"tail_s\":%.1f,\"time_wait_peak\":%" PRIu64 ",\"connects\":%" PRIu64 ",\"sessions\":%" PRIu64
                ",\"round_trips\":%" PRIu64 ",\"finale_reset\":%" PRIu64 ",\"finale_reset_in_flight\":%" PRIu64
                ",\"finale_halfclose\":%" PRIu64 ",\"finale_slowread\":%" PRIu64 ",\"bytes_sent\":%" PRIu64
                ",\"bytes_echoed\":%" PRIu64 ",\"server_bytes\":%" PRIu64 ",\"p50_us\":%" PRIu64
                ",\"p99_us\":%" PRIu64 ",\"p999_us\":%" PRIu64 ",\"max_us\":%" PRIu64 ",\"rsts\":%" PRIu64
                ",\"server_resets\":%" PRIu64 ",\"server_broken_pipes\":%" PRIu64 ",\"server_other_errors\":%" PRIu64
                ",\"max_write_buffer\":%" PRIu64 ",\"drains_waited\":%" PRIu64 ",\"rss_listen\":%" PRIu64
                ",\"rss_peak\":%" PRIu64 ",\"rss_final\":%" PRIu64 ",\"rss_bound\":%" PRIu64 ",\"heap_peak\":%" PRIu64 ",\"heap_bound\":%" PRIu64
                ",\"mismatches\":%" PRIu64 ",\"client_errors\":%" PRIu64 ",\"stuck\":%" PRIu64
                ",\"failures\":%zu,\"first_error\":\"%s\"}\n",
                backend, opt.seconds, opt.connections, opt.seed, opt.slow_max, wall, crep.ramp_s, crep.tail_s, crep.time_wait_peak, crep.connects, crep.sessions,
                crep.rounds, crep.finale_reset, crep.finale_reset_in_flight, crep.finale_halfclose,
                crep.finale_slowread, crep.bytes_sent, crep.bytes_echoed, srep.bytes, crep.p50_us, crep.p99_us,
                crep.p999_us, crep.max_us, crep.rsts, srep.resets, srep.broken_pipes, srep.other_errors,
                srep.max_write_buffer, srep.drains_waited, srep.rss_listen, srep.rss_peak, srep.rss_final, rss_bound, srep.heap_peak, bound,
                crep.mismatches, crep.errors, crep.stuck, failures.size(),
                json_escape(srep.first_error[0] != '\0' ? srep.first_error : crep.first_error).c_str());
    return failures.empty() ? 0 : 1;
}
