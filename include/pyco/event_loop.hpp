// pyco/event_loop.hpp — asyncio's event loop: callbacks, timers, fds.
//
// One iteration (run_once), in this order — the only place callbacks run:
//   1. drop cancelled timers from the top of the heap; if more than half of
//      over 100 timers are cancelled, rebuild the heap without them;
//   2. wait for I/O: not at all if callbacks are ready or the loop is
//      stopping, else until the earliest timer (or forever if none);
//      with virtual time the wait never sleeps: time jumps to that timer;
//   3. queue the callbacks of ready fds, then of timers now due;
//   4. run the callbacks that are ready at this point, in FIFO order; those
//      they schedule wait for the next iteration.
// An exception escaping a callback goes to the exception handler and the
// loop goes on. stop() lets the current iteration finish.
//
// Thread rule: a loop belongs to the thread that runs it. Every method here
// is for that thread only (debug mode reports other callers), except
// call_soon_threadsafe and proxy(), which any thread may call. Other threads
// hold a loop_proxy, never the loop: once the loop closes, the proxy refuses
// work instead of touching freed memory.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <pyco/detail/intrusive.hpp>
#include <pyco/detail/saturate.hpp>
#include <pyco/detail/unique_fn.hpp>

namespace pyco {

class event_loop;
class executor;
template <class T>
class future;
template <class T>
class coroutine;
template <class T>
class task;
class protocol;
class transport;
class server;
class socket;
struct server_options;
struct unix_server_options;
class ssl_context;
struct start_tls_options;
struct connection_options;
struct unix_connection_options;
struct accepted_socket_options;
class datagram_protocol;
class datagram_transport;
struct datagram_options;
using datagram_protocol_factory = std::function<std::shared_ptr<datagram_protocol>()>;
using datagram_pair = std::pair<std::shared_ptr<datagram_transport>, std::shared_ptr<datagram_protocol>>;
// What makes a protocol for each connection (Python's protocol_factory).
using protocol_factory = std::function<std::shared_ptr<protocol>()>;
using connection_pair = std::pair<std::shared_ptr<transport>, std::shared_ptr<protocol>>;
class sock_address;
struct addrinfo_entry;
struct subprocess_options;
class subprocess_protocol;
class subprocess_transport;
using subprocess_protocol_factory = std::function<std::shared_ptr<subprocess_protocol>()>;
using subprocess_pair = std::pair<std::shared_ptr<subprocess_transport>, std::shared_ptr<subprocess_protocol>>;

namespace detail {

class io_backend;
struct io_op;
struct fault_config;
class fault_injector;
struct io_result;
class future_base;
struct sock_registry;
class stall_watchdog;

// A callback the user can cancel (asyncio's Handle / TimerHandle).
struct handle_state final : refcounted {
    std::function<void()> fn;
    event_loop* loop = nullptr;
    std::chrono::steady_clock::time_point when{};
    bool cancelled = false;
    bool in_heap = false;  // a timer not yet due
};

// What the ready queue holds: a function and two words. Internal scheduling
// (task steps, future callbacks) uses it without allocating. `run` is false
// when the loop closes with the entry still queued: free, do not run.
struct ready_entry {
    void (*fn)(void* a, void* b, bool run);
    void* a;
    void* b;
};

// A FIFO ring that grows by doubling; push and pop never allocate once warm.
class ready_ring {
public:
    ready_ring() = default;
    ready_ring(const ready_ring&) = delete;
    ready_ring& operator=(const ready_ring&) = delete;
    void push(const ready_entry& e) {
        if (size_ == buf_.size()) grow();
        buf_[(head_ + size_) & (buf_.size() - 1)] = e;
        ++size_;
    }
    ready_entry pop() noexcept {
        ready_entry e = buf_[head_];
        head_ = (head_ + 1) & (buf_.size() - 1);
        --size_;
        return e;
    }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

private:
    void grow();
    std::vector<ready_entry> buf_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

// What other threads hold of a loop. Its inbox is drained at the start of
// each iteration; posting wakes the loop if it waits in the backend.
class loop_proxy {
public:
    explicit loop_proxy(io_backend* backend) noexcept : backend_(backend) {}
    // False (and fn dropped) once the loop has closed.
    bool post(unique_fn fn);
    bool closed() const;

private:
    friend class pyco::event_loop;
    void detach() noexcept;
    std::vector<unique_fn> take();

    mutable std::mutex m_;
    io_backend* backend_;  // null once the loop closed
    std::vector<unique_fn> inbox_;
    std::atomic<bool> pending_{false};
};

// What a future keeps of its loop, since a future may outlive it: the
// loop's address while the loop exists, and whether it has closed. The loop
// holds one reference and clears `loop` when destroyed; each future holds
// one (a plain count: loop thread only). After close() a future refuses to
// queue its callbacks ("Event loop is closed"), as CPython's call_soon does.
struct loop_anchor final : refcounted {
    explicit loop_anchor(event_loop* l) noexcept : loop(l) {}
    event_loop* loop;     // null once the loop is destroyed
    bool closed = false;  // set by close(): nothing more may be queued
};

struct timer_entry {
    std::chrono::steady_clock::time_point when;
    std::uint64_t seq;  // FIFO among equal times
    handle_state* h;    // the heap holds one reference
};

}  // namespace detail

// A scheduled callback; cancel() stops it from running.
class handle {
public:
    handle() = default;
    void cancel() noexcept;
    bool cancelled() const noexcept { return !s_ || s_->cancelled; }
    // A timer's due time (call_later/call_at).
    std::chrono::steady_clock::time_point when() const noexcept { return s_ ? s_->when : decltype(s_->when){}; }

private:
    friend class event_loop;
    explicit handle(detail::intrusive_ptr<detail::handle_state> s) : s_(std::move(s)) {}
    detail::intrusive_ptr<detail::handle_state> s_;
};

// What call_exception_handler receives (asyncio's context dict).
struct exception_context {
    std::string message;
    std::exception_ptr exception;  // may be null
    std::string future;            // the future or task involved, if any
    std::string handle;            // the callback involved, if any
};

// Which kernel interface a loop's I/O goes through (pyco's own: asyncio has
// one selector per platform).
//   automatic  PYCO_BACKEND=epoll|io_uring in the environment decides if
//              set; else pyco's default (epoll for now), and where the
//              default is io_uring but the kernel refuses it, epoll (said
//              on stderr in debug mode).
//   epoll      readiness, then the syscall (any Linux).
//   io_uring   operations submitted to the kernel, one io_uring_enter per
//              iteration (Linux 6.0+, built with liburing). Asking for it
//              where it is unavailable throws pyco::runtime_error saying why.
//              The loop then belongs to the first thread that runs it.
// event_loop::backend_name() says which one a loop got.
enum class io_backend_kind { automatic, epoll, io_uring };

struct loop_options {
    // Time jumps to the next timer whenever nothing else can happen (a
    // TestLoop/MockClock): timeouts are tested without waiting.
    bool virtual_time = false;
    // Debug mode; unset: PYCO_DEBUG=1 in the environment turns it on.
    std::optional<bool> debug = std::nullopt;
    io_backend_kind backend = io_backend_kind::automatic;
    // Pyco's own tests only (pyco/detail/faults.hpp): a seeded schedule of
    // injected I/O faults; null: PYCO_FAULTS in the environment decides.
    const detail::fault_config* faults = nullptr;
};

class event_loop {
public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;
    using duration = clock::duration;
    using exception_handler = std::function<void(event_loop&, const exception_context&)>;

    event_loop();
    explicit event_loop(loop_options options);
    ~event_loop();
    event_loop(const event_loop&) = delete;
    event_loop& operator=(const event_loop&) = delete;

    // --- callbacks and timers ---
    handle call_soon(std::function<void()> fn);
    template <class Rep, class Period>
    handle call_later(std::chrono::duration<Rep, Period> delay, std::function<void()> fn) {
        // A delay past the clock's range is the clock's end (detail/saturate.hpp).
        return call_at(detail::saturating_add(time(), detail::saturating_ceil<duration>(delay)), std::move(fn));
    }
    handle call_at(time_point when, std::function<void()> fn);
    time_point time() const noexcept;

    // --- running ---
    void run_forever();
    // Defined in <pyco/task.hpp> (pyco.hpp includes it).
    template <class T>
    T run_until_complete(future<T> f);
    template <class T>
    T run_until_complete(task<T> t);
    template <class T>
    T run_until_complete(coroutine<T> c);
    template <class T>
    task<T> create_task(coroutine<T> c, std::string name = {});
    template <class T = void>
    [[nodiscard]] future<T> create_future();
    void stop() noexcept { stopping_ = true; }
    // loop.shutdown_asyncgens(): aclose() every live async generator, at
    // once; failures go to the exception handler. <pyco/async_generator.hpp>.
    coroutine<void> shutdown_asyncgens();
    void close();
    bool is_running() const noexcept { return running_; }
    bool is_closed() const noexcept { return closed_; }

    // --- threads ---
    // Any thread: run fn on the loop's next iteration, waking it at once if
    // it waits. runtime_error("Event loop is closed") once closed.
    template <class F>
    void call_soon_threadsafe(F&& fn) {
        if (!proxy_->post(detail::unique_fn(std::forward<F>(fn)))) throw_closed();
    }
    // What a thread keeps to reach this loop safely (see the thread rule).
    std::shared_ptr<detail::loop_proxy> proxy() const noexcept { return proxy_; }

    // fn() on an executor's thread; the future completes on this loop.
    // Defined in <pyco/threads.hpp>.
    template <class F>
    auto run_in_executor(F fn) -> future<std::invoke_result_t<F&>>;
    template <class F>
    auto run_in_executor(executor& ex, F fn) -> future<std::invoke_result_t<F&>>;
    // The default executor, made at first use; shut down by pyco::run.
    executor& default_executor();
    // Finish its queued jobs and join its threads. Called while the loop is
    // not running (as pyco::run does), the loop runs meanwhile, so a job may
    // still wait for it; an exception out of the loop (keyboard_interrupt)
    // stops the wait and leaves the jobs to finish on their own.
    void shutdown_default_executor();

    // --- file descriptors (one reader and one writer per fd) ---
    void add_reader(int fd, std::function<void()> fn);
    void add_writer(int fd, std::function<void()> fn);
    bool remove_reader(int fd);
    bool remove_writer(int fd);

    // --- sockets: the low-level API (src/net/sock_ops.cpp) ---
    // Need <pyco/net/socket.hpp>. Each is a coroutine that tries the
    // operation at once and waits only if the socket is not ready. The
    // socket must outlive the call (it may be closed meanwhile: the call
    // then raises EBADF); so must a buffer or data passed as a span or
    // string_view. OS failures raise std::system_error with errno, e.g.
    // "recv: Connection reset by peer" (os_error.hpp's named types).
    //
    // Cancel safety (cancelling the task that awaits one):
    //   - sock_recv, sock_recv_into, sock_recvfrom, sock_recvfrom_into,
    //     sock_accept lose nothing: either nothing was received (or
    //     accepted) and cancelled_error is raised, or it was, and the call
    //     returns it and the cancellation is raised at the task's next
    //     await instead (CPython drops what it received in that race);
    //   - sock_sendall may have sent part of the data, sock_sendto the
    //     datagram, and sock_connect may have connected (or go on
    //     connecting): no way to know, as in CPython;
    //   - in every case the task resumes only once the kernel is done with
    //     the operation's buffers.
    // sock_recv(n): up to n bytes ("" at end of stream).
    coroutine<std::string> sock_recv(socket& sock, std::size_t n);
    coroutine<std::size_t> sock_recv_into(socket& sock, std::span<std::byte> buf);
    // One datagram (truncated to n) and its sender (empty if unnamed).
    coroutine<std::pair<std::string, sock_address>> sock_recvfrom(socket& sock, std::size_t n);
    coroutine<std::pair<std::size_t, sock_address>> sock_recvfrom_into(socket& sock, std::span<std::byte> buf);
    coroutine<void> sock_sendall(socket& sock, std::span<const std::byte> data);
    coroutine<void> sock_sendall(socket& sock, std::string_view data);
    // One datagram to `to` (empty: the connected peer); the bytes sent.
    coroutine<std::size_t> sock_sendto(socket& sock, std::span<const std::byte> data, sock_address to);
    coroutine<std::size_t> sock_sendto(socket& sock, std::string_view data, sock_address to);
    // The connection (non-blocking, close-on-exec) and the peer's address.
    coroutine<std::pair<socket, sock_address>> sock_accept(socket& sock);
    // to is an address, never a name: resolve names with getaddrinfo.
    // Refused: connection_refused_error "Connect call failed ('127.0.0.1', 1)".
    coroutine<void> sock_connect(socket& sock, sock_address to);

    // getaddrinfo(3) and getnameinfo(3) on the default executor, as asyncio
    // does; an IP literal host with a numeric port (SOCK_STREAM or
    // SOCK_DGRAM) is answered at once, without a thread (asyncio's
    // _ipaddr_info). host or port "" is Python's None. Failures raise
    // pyco::gaierror (<pyco/net/address.hpp>).
    coroutine<std::vector<addrinfo_entry>> getaddrinfo(std::string host, std::string port, int family = 0,
                                                       int type = 0, int proto = 0, int flags = 0);
    coroutine<std::vector<addrinfo_entry>> getaddrinfo(std::string host, int port, int family = 0, int type = 0,
                                                       int proto = 0, int flags = 0);
    // (host, service); with NI_NUMERICHOST | NI_NUMERICSERV, at once.
    coroutine<std::pair<std::string, std::string>> getnameinfo(sock_address addr, int flags = 0);

    // --- signals (signals.cpp) ---
    // loop.add_signal_handler(sig, fn): fn runs as a callback on this loop
    // when sig arrives, whichever thread the kernel delivered it to. One
    // loop at a time may own signal handlers (CPython: the main thread's).
    // value_error for an invalid number; runtime_error for SIGKILL/SIGSTOP,
    // or when another loop owns signal handlers.
    void add_signal_handler(int sig, std::function<void()> fn);
    // Restores the default action; false if no handler was set.
    bool remove_signal_handler(int sig);

    // --- transports and servers (src/net/connection.cpp) ---
    // Need <pyco/net/connection.hpp> (options, connection_pair, server).
    // Each returns once the protocol's connection_made has run (clients) or
    // the listening sockets are bound (and, with start_serving, accepting).
    coroutine<connection_pair> create_connection(protocol_factory factory, std::string host, std::uint16_t port);
    coroutine<connection_pair> create_connection(protocol_factory factory, std::string host, std::uint16_t port,
                                                 connection_options options);
    // Python's sock=: an already connected stream socket.
    coroutine<connection_pair> create_connection(protocol_factory factory, socket sock);
    coroutine<connection_pair> create_connection(protocol_factory factory, socket sock,
                                                 unix_connection_options options);
    coroutine<connection_pair> create_unix_connection(protocol_factory factory, std::string path);
    coroutine<connection_pair> create_unix_connection(protocol_factory factory, std::string path,
                                                      unix_connection_options options);
    coroutine<connection_pair> connect_accepted_socket(protocol_factory factory, socket sock);
    coroutine<connection_pair> connect_accepted_socket(protocol_factory factory, socket sock,
                                                       accepted_socket_options options);
    // host "" listens on every interface; port 0 picks a free port.
    coroutine<server> create_server(protocol_factory factory, std::string host, std::uint16_t port);
    coroutine<server> create_server(protocol_factory factory, std::string host, std::uint16_t port,
                                    server_options options);
    coroutine<server> create_server(protocol_factory factory, std::vector<std::string> hosts, std::uint16_t port,
                                    server_options options);
    coroutine<server> create_unix_server(protocol_factory factory, std::string path, unix_server_options options);
    // loop.start_tls: upgrade a connection to TLS in place (<pyco/net/ssl.hpp>).
    // Returns the new transport once the handshake is done; `t` is then
    // owned by the TLS layer (do not use it). The protocol's connection_made
    // is not called again. On failure or cancellation `t` is closed.
    coroutine<std::shared_ptr<transport>> start_tls(std::shared_ptr<transport> t, std::shared_ptr<protocol> p,
                                                    ssl_context ctx, start_tls_options options);
    coroutine<std::shared_ptr<transport>> start_tls(std::shared_ptr<transport> t, std::shared_ptr<protocol> p,
                                                    ssl_context ctx);
    // Needs <pyco/net/datagram.hpp>.
    coroutine<datagram_pair> create_datagram_endpoint(datagram_protocol_factory factory, datagram_options options);

    // --- subprocesses (src/process/) ---
    // Need <pyco/subprocess_transport.hpp>. argv[0] is the program (PATH
    // searched unless it has a '/'); subprocess_shell runs /bin/sh -c cmd.
    // Return once the protocol's connection_made has run; spawn failures
    // raise file_not_found_error / permission_error (os_error.hpp). Without
    // options, stdin, stdout and stderr are all PIPE (asyncio's defaults
    // here); with options, as given (subprocess_options' own defaults are
    // create_subprocess_exec's: inherit).
    coroutine<subprocess_pair> subprocess_exec(subprocess_protocol_factory factory, std::vector<std::string> argv);
    coroutine<subprocess_pair> subprocess_exec(subprocess_protocol_factory factory, std::vector<std::string> argv,
                                               subprocess_options options);
    coroutine<subprocess_pair> subprocess_shell(subprocess_protocol_factory factory, std::string cmd);
    coroutine<subprocess_pair> subprocess_shell(subprocess_protocol_factory factory, std::string cmd,
                                                subprocess_options options);

    // --- errors ---
    void set_exception_handler(exception_handler h) { handler_ = std::move(h); }
    const exception_handler& get_exception_handler() const noexcept { return handler_; }
    void call_exception_handler(const exception_context& ctx) noexcept;
    void default_exception_handler(const exception_context& ctx) noexcept;

    // --- debug ---
    // Debug mode (asyncio's): wrong-thread calls raise, and a ready entry
    // (a task step or a callback) that runs slow_callback_duration or more
    // is reported through detail::log_warning twice:
    //   - while it still runs, by the stall detector (a thread made on the
    //     first debug-mode entry, joined at close(); src/stall_watchdog.hpp):
    //     "event loop stalled for N ms: <what>", once per entry, even if the
    //     entry never returns;
    //   - when it returns: "Executing <what> took 0.503 seconds".
    // <what> is CPython's repr for a task step, "<Task pending name='...'
    // coro=<f() running at file:line>>", then the stack it resumed from
    // (and, after the step, where it is now); "callback 0x..." else.
    // The description is made before each entry runs, on the loop thread:
    // debug mode costs an allocation or a few per entry; release costs
    // nothing (one branch on debug_, as before).
    void set_debug(bool on) noexcept { debug_ = on; }
    bool get_debug() const noexcept { return debug_; }
    void set_slow_callback_duration(duration d) noexcept { slow_callback_ = d; }
    duration slow_callback_duration() const noexcept { return slow_callback_; }

    bool virtual_time() const noexcept { return virtual_time_; }
    // "epoll" or "io_uring" (see io_backend_kind); "closed" once closed.
    const char* backend_name() const noexcept;
    // The I/O seam (detail/io_backend.hpp), for transports and sockets.
    detail::io_backend& backend() noexcept { return *backend_; }

    // --- for pyco's own machinery ---
    // Queue a raw entry for the next iteration. No allocation once warm.
    void schedule(const detail::ready_entry& e);
    // Live tasks, in creation order (all_tasks); tasks link themselves in.
    detail::list_link& live_tasks() noexcept { return tasks_; }
    // Async generators started on this loop and not yet finished; they link
    // themselves in (asyncio's _asyncgens) for shutdown_asyncgens().
    detail::list_link& live_asyncgens() noexcept { return asyncgens_; }
    std::uint64_t next_task_id() noexcept { return ++task_counter_; }
    // What futures hold of this loop (see loop_anchor).
    detail::loop_anchor* anchor() const noexcept { return anchor_.get(); }
    // What the sock_* operations know of their sockets (src/net/).
    detail::sock_registry& socks();

private:
    friend class handle;
    void run_once();
    void drain_inbox();
    [[noreturn]] static void throw_closed();
    void report_callback_error() noexcept;
    std::string describe_entry(const detail::ready_entry& e);
    void check_thread(const char* what) const;
    void check_closed() const;
    void timer_cancelled() noexcept { ++cancelled_timers_; }
    void clean_timers();
    void set_fd_callback(int fd, bool writer, std::function<void()> fn);
    bool clear_fd_callback(int fd, bool writer);
    static void run_handle(void* a, void* b, bool run);
    static void invoke_handle(detail::handle_state* h);
    static void fd_ready(detail::io_op& op, const detail::io_result& r);
    struct fd_entry;

    detail::ready_ring ready_;
    std::vector<detail::timer_entry> timers_;
    std::size_t cancelled_timers_ = 0;
    std::uint64_t timer_seq_ = 0;
    // add_reader/add_writer: a readiness operation per fd and direction.
    std::unordered_map<int, std::unique_ptr<fd_entry>> fds_;
    std::unique_ptr<detail::io_backend> backend_;
    std::unique_ptr<detail::fault_injector> faults_;  // loop_options::faults or PYCO_FAULTS
    std::shared_ptr<detail::loop_proxy> proxy_;
    detail::intrusive_ptr<detail::loop_anchor> anchor_;
    std::unique_ptr<executor> default_executor_;
    struct signal_state;
    std::unique_ptr<signal_state> signals_;
    // Made at the first sock_* operation that waits; freed after backend_.
    std::unique_ptr<detail::sock_registry> socks_;
    // Debug mode's stall detector (src/stall_watchdog.hpp): made on the
    // first debug-mode entry, its thread joined at close().
    std::unique_ptr<detail::stall_watchdog> watchdog_;
    // Takes sock over for this loop's operations (the loop rule of
    // <pyco/net/socket.hpp>); its fd, or EBADF raised with `what`.
    int attach(socket& sock, const char* what);
    void close_signals() noexcept;
    detail::list_link tasks_;
    detail::list_link asyncgens_;
    std::uint64_t task_counter_ = 0;
    exception_handler handler_;
    duration slow_callback_ = std::chrono::milliseconds(100);
    time_point virtual_now_{};
    std::uint64_t thread_id_ = 0;
    bool virtual_time_ = false;
    bool debug_ = false;
    bool running_ = false;
    bool stopping_ = false;
    bool closed_ = false;
};

// asyncio.get_running_loop(): runtime_error("no running event loop") outside.
event_loop& get_running_loop();

namespace detail {
// The loop running on this thread, or null.
event_loop* running_loop() noexcept;
// Debug output (slow callbacks, stalls, never-awaited coroutines) goes
// here: to stderr, or to the hook if one is set (tests capture it; any
// thread may call it: the stall detector's does).
void log_warning(const std::string& text) noexcept;
using log_hook = void (*)(const std::string& text);
log_hook set_log_hook(log_hook h) noexcept;  // the previous one
bool env_debug() noexcept;
// Defined with tasks: abandon the pending task linked at `link`.
void abandon_task(list_link* link) noexcept;
// Debug mode of the running loop, else PYCO_DEBUG.
bool debug_enabled() noexcept;
// Prints a context as the default exception handler does.
void print_exception_context(const exception_context& ctx) noexcept;
// A signal arrived and its byte waits in the signal pipe (signals.cpp).
extern std::atomic<bool> g_signal_pending;
}  // namespace detail

}  // namespace pyco
