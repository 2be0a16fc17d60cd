#include <pyco/event_loop.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <system_error>
#include <thread>

#include <pyco/detail/faults.hpp>
#include <pyco/detail/io_backend.hpp>
#include <pyco/detail/task_base.hpp>
#include <pyco/errors.hpp>
#include <pyco/executor.hpp>
#include <pyco/unraisable.hpp>

#include "net/sock_registry.hpp"
#include "signal_state.hpp"
#include "stall_watchdog.hpp"

namespace pyco {

namespace {

thread_local event_loop* tls_running_loop = nullptr;

std::uint64_t this_thread_id() noexcept {
    static thread_local const int marker = 0;
    return reinterpret_cast<std::uintptr_t>(&marker);
}

// CPython: _MIN_SCHEDULED_TIMER_HANDLES, _MIN_CANCELLED_TIMER_HANDLES_FRACTION
constexpr std::size_t min_scheduled_timers = 100;

bool timer_later(const detail::timer_entry& a, const detail::timer_entry& b) noexcept {
    return a.when != b.when ? a.when > b.when : a.seq > b.seq;  // min-heap
}

std::string describe_handle(const detail::handle_state* h) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "<%s at %p>", h->in_heap || h->when != event_loop::time_point{}
                                                    ? "TimerHandle" : "Handle",
                  static_cast<const void*>(h));
    return buf;
}

}  // namespace

namespace detail {

event_loop* running_loop() noexcept { return tls_running_loop; }

namespace {
std::atomic<log_hook> g_log_hook{nullptr};
}  // namespace

void log_warning(const std::string& text) noexcept {
    if (log_hook h = g_log_hook.load(std::memory_order_acquire)) {
        h(text);
        return;
    }
    std::string line = text + "\n";
    std::fputs(line.c_str(), stderr);
}

log_hook set_log_hook(log_hook h) noexcept { return g_log_hook.exchange(h, std::memory_order_acq_rel); }

bool debug_enabled() noexcept {
    if (event_loop* l = tls_running_loop) return l->get_debug();
    return env_debug();
}

bool env_debug() noexcept {
    const char* v = std::getenv("PYCO_DEBUG");
    return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

void ready_ring::grow() {
    std::vector<ready_entry> bigger(buf_.empty() ? 64 : buf_.size() * 2);
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = buf_[(head_ + i) & (buf_.size() - 1)];
    buf_ = std::move(bigger);
    head_ = 0;
}

}  // namespace detail

event_loop& get_running_loop() {
    if (tls_running_loop == nullptr) throw runtime_error("no running event loop");
    return *tls_running_loop;
}

void handle::cancel() noexcept {
    if (!s_ || s_->cancelled) return;
    s_->cancelled = true;
    if (s_->in_heap && s_->loop) s_->loop->timer_cancelled();
}

namespace {

// What io_backend_kind::automatic means when PYCO_BACKEND is unset: epoll.
// Measured (docs/benchmarks.md, "Networking"): on kernel 6.18 io_uring makes
// a tenth of the syscalls, but its CPU per message is within noise of
// epoll's, and it adds a rule epoll has not (the loop belongs to the thread
// that first ran it) and may be refused by the kernel. Change this one line
// when a measurement says otherwise.
constexpr io_backend_kind default_backend = io_backend_kind::epoll;

std::unique_ptr<detail::io_backend> make_backend(detail::ready_ring& ready, io_backend_kind kind, bool debug) {
    const char* asked_by = "loop_options::backend";
    if (kind == io_backend_kind::automatic) {
        asked_by = "PYCO_BACKEND=io_uring";
        const char* env = std::getenv("PYCO_BACKEND");
        const std::string_view v = env ? env : "";
        if (v == "epoll") {
            kind = io_backend_kind::epoll;
        } else if (v == "io_uring") {
            kind = io_backend_kind::io_uring;
        } else if (!v.empty() && v != "auto") {
            std::string msg = "PYCO_BACKEND must be epoll, io_uring or auto, not '";
            msg += v;
            msg += '\'';
            throw value_error(msg);
        }
    }
    const bool forced = kind != io_backend_kind::automatic;
    if (!forced) kind = default_backend;
    if (kind == io_backend_kind::epoll) return detail::make_epoll_backend(ready);
    try {
        return detail::make_io_uring_backend(ready);
    } catch (const std::exception& e) {
        if (forced) {
            std::string msg = e.what();
            msg += " (asked for by ";
            msg += asked_by;
            msg += ')';
            throw runtime_error(msg);
        }
        if (debug) detail::log_warning(std::string("pyco: the loop uses epoll: ") + e.what());
        return detail::make_epoll_backend(ready);
    }
}

}  // namespace

event_loop::event_loop() : event_loop(loop_options{}) {}

event_loop::event_loop(loop_options options)
    : backend_(make_backend(ready_, options.backend, options.debug.value_or(detail::env_debug()))),
      proxy_(std::make_shared<detail::loop_proxy>(backend_.get())),
      anchor_(detail::intrusive_ptr<detail::loop_anchor>::adopt(new detail::loop_anchor(this))),
      virtual_time_(options.virtual_time),
      debug_(options.debug.value_or(detail::env_debug())) {
    if (virtual_time_) virtual_now_ = clock::now();
    std::optional<detail::fault_config> faults;
    if (options.faults) {
        faults = *options.faults;
    } else if (const char* env = std::getenv("PYCO_FAULTS"); env && *env) {
        faults = detail::parse_faults(env);
    }
    if (faults) {
        faults_ = std::make_unique<detail::fault_injector>(*faults);
        if (const char* t = std::getenv("PYCO_FAULTS_TRACE")) faults_->trace = *t && *t != '0';
        detail::g_faults_on.store(true, std::memory_order_relaxed);
        if (faults->kinds & detail::fk_delay) {
            backend_ = detail::make_fault_backend(std::move(backend_), ready_);
            faults_->wrapper = backend_.get();
            proxy_ = std::make_shared<detail::loop_proxy>(backend_.get());
        }
    }
}

event_loop::~event_loop() {
    if (running_) {
        // Destroying a running loop is a bug in the caller; there is no
        // way to report it but to refuse loudly.
        std::fputs("pyco: event_loop destroyed while running\n", stderr);
        std::abort();
    }
    close();
    anchor_->loop = nullptr;  // futures that outlive the loop see it gone
}

const char* event_loop::backend_name() const noexcept { return backend_ ? backend_->name() : "closed"; }

event_loop::time_point event_loop::time() const noexcept {
    return virtual_time_ ? virtual_now_ : clock::now();
}

void event_loop::check_closed() const {
    if (closed_) throw_closed();
}

void event_loop::throw_closed() { throw runtime_error("Event loop is closed"); }

executor& event_loop::default_executor() {
    check_closed();
    if (!default_executor_) default_executor_ = std::make_unique<thread_pool_executor>();
    return *default_executor_;
}

void event_loop::shutdown_default_executor() {
    if (!default_executor_) return;
    if (closed_ || running_) {
        default_executor_->shutdown(true);
        return;
    }
    // As CPython: a helper thread joins the executor while this loop keeps
    // running, so that a job still waiting for the loop (a
    // run_coroutine_threadsafe(...).get()) can finish. The helper touches
    // the executor and the proxy only. If the wait is cut short (Ctrl-C's
    // keyboard_interrupt), the helper is given the executor and left to
    // finish alone: the loop then owns nothing it still uses.
    struct join_state {
        std::mutex m;
        bool joined = false;                // under m
        std::unique_ptr<executor> orphan;  // under m: ours to free, if given
        bool waiting = true;               // loop thread only
        bool done = false;                 // loop thread only
        std::exception_ptr error;          // loop thread only
    };
    auto st = std::make_shared<join_state>();
    std::thread helper;
    try {
        helper = std::thread([st, ex = default_executor_.get(), proxy = proxy_, this] {
            std::exception_ptr error;
            try {
                ex->shutdown(true);
            } catch (...) {
                error = std::current_exception();
            }
            std::unique_ptr<executor> orphan;
            {
                std::lock_guard<std::mutex> lock(st->m);
                st->joined = true;
                orphan = std::move(st->orphan);
            }
            if (orphan) return;  // nobody waits; its threads are joined
            // Queued after every completion the jobs posted before they ended.
            proxy->post([st, this, error = std::move(error)]() mutable {
                if (!st->waiting) return;
                st->done = true;
                st->error = std::move(error);
                stop();
            });
        });
    } catch (const std::system_error&) {
        // No thread to spare: join here, then run what the jobs posted.
        default_executor_->shutdown(true);
        stop();
        run_forever();
        return;
    }
    try {
        while (!st->done) run_forever();
    } catch (...) {
        st->waiting = false;
        bool joined;
        {
            std::lock_guard<std::mutex> lock(st->m);
            joined = st->joined;
            if (!joined) st->orphan = std::move(default_executor_);
        }
        if (joined) {
            helper.join();
        } else {
            helper.detach();
        }
        throw;
    }
    helper.join();
    if (st->error) std::rethrow_exception(st->error);
}

bool detail::loop_proxy::post(unique_fn fn) {
    {
        std::lock_guard<std::mutex> lock(m_);
        if (backend_ == nullptr) return false;
        inbox_.push_back(std::move(fn));
        pending_.store(true, std::memory_order_release);
        // Under the lock: detach() cannot free the backend meanwhile.
        backend_->wakeup();
    }
    return true;
}

bool detail::loop_proxy::closed() const {
    std::lock_guard<std::mutex> lock(m_);
    return backend_ == nullptr;
}

void detail::loop_proxy::detach() noexcept {
    std::vector<unique_fn> dropped;
    {
        std::lock_guard<std::mutex> lock(m_);
        backend_ = nullptr;
        dropped.swap(inbox_);
        pending_.store(false, std::memory_order_relaxed);
    }
    // Destroyed outside the lock: a destructor may post again (and be refused).
}

std::vector<detail::unique_fn> detail::loop_proxy::take() {
    std::vector<unique_fn> out;
    if (!pending_.load(std::memory_order_acquire)) return out;
    std::lock_guard<std::mutex> lock(m_);
    out.swap(inbox_);
    pending_.store(false, std::memory_order_relaxed);
    return out;
}

void event_loop::drain_inbox() {
    for (detail::unique_fn& fn : proxy_->take()) {
        auto* holder = new detail::unique_fn(std::move(fn));
        ready_.push({[](void* a, void*, bool run) {
                         std::unique_ptr<detail::unique_fn> f(static_cast<detail::unique_fn*>(a));
                         if (run) (*f)();
                     },
                     holder, nullptr});
    }
}

void event_loop::check_thread(const char* what) const {
    // CPython checks only in debug mode, and so do we: the check costs a
    // thread-local read on every call.
    if (debug_ && running_ && thread_id_ != this_thread_id()) {
        throw runtime_error(std::string("Non-thread-safe operation invoked on an event loop other "
                                        "than the current one (") + what + ")");
    }
}

void event_loop::schedule(const detail::ready_entry& e) { ready_.push(e); }

// One fd's add_reader/add_writer state. Each direction is a multishot
// readiness operation; its completion runs the current handle. The entry
// lives until both operations are finished (the backend owns a submitted op
// until its final completion), so remove_reader only cancels, and a reader
// added again before the cancel lands is picked up when it does.
struct event_loop::fd_entry {
    event_loop* loop;
    int fd;
    detail::intrusive_ptr<detail::handle_state> reader, writer;
    detail::io_op rop, wop;
    bool rop_live = false, wop_live = false;
};

void event_loop::run_handle(void* a, void*, bool run) {
    auto h = detail::intrusive_ptr<detail::handle_state>::adopt(static_cast<detail::handle_state*>(a));
    if (!run) return;
    invoke_handle(h.get());
}

void event_loop::invoke_handle(detail::handle_state* h) {
    if (h->cancelled) return;
    try {
        h->fn();
    } catch (const keyboard_interrupt&) {
        throw;  // as KeyboardInterrupt: out of the loop, not to the handler
    } catch (...) {
        // Reported here, while the handle is still alive to be described.
        exception_context ctx{"Exception in callback", std::current_exception(), {}, {}};
        try {
            ctx.handle = describe_handle(h);
        } catch (...) {
        }
        h->loop->call_exception_handler(ctx);
    }
}

handle event_loop::call_soon(std::function<void()> fn) {
    check_closed();
    check_thread("call_soon");
    auto* s = new detail::handle_state;
    s->fn = std::move(fn);
    s->loop = this;
    s->add_ref();  // the queue's reference
    ready_.push({&run_handle, s, nullptr});
    return handle(detail::intrusive_ptr<detail::handle_state>::adopt(s));
}

handle event_loop::call_at(time_point when, std::function<void()> fn) {
    check_closed();
    check_thread("call_at");
    auto* s = new detail::handle_state;
    s->fn = std::move(fn);
    s->loop = this;
    s->when = when;
    s->in_heap = true;
    s->add_ref();  // the heap's reference
    timers_.push_back({when, ++timer_seq_, s});
    std::push_heap(timers_.begin(), timers_.end(), timer_later);
    return handle(detail::intrusive_ptr<detail::handle_state>::adopt(s));
}

void event_loop::clean_timers() {
    if (timers_.size() > min_scheduled_timers && cancelled_timers_ * 2 > timers_.size()) {
        // Many cancelled: rebuild the heap without them (CPython does the
        // same), and give the memory back.
        std::erase_if(timers_, [](const detail::timer_entry& t) {
            if (!t.h->cancelled) return false;
            t.h->in_heap = false;
            t.h->release();
            return true;
        });
        std::make_heap(timers_.begin(), timers_.end(), timer_later);
        if (timers_.capacity() > 4 * timers_.size() + 64) timers_.shrink_to_fit();
        cancelled_timers_ = 0;
        return;
    }
    while (!timers_.empty() && timers_.front().h->cancelled) {
        std::pop_heap(timers_.begin(), timers_.end(), timer_later);
        detail::handle_state* h = timers_.back().h;
        timers_.pop_back();
        --cancelled_timers_;
        h->in_heap = false;
        h->release();
    }
}

void event_loop::report_callback_error() noexcept {
    // Internal entries (task steps, future callbacks): user handles report
    // their own errors in run_handle.
    call_exception_handler({"Exception in callback", std::current_exception(), {}, {}});
}

void event_loop::run_once() {
    drain_inbox();
    clean_timers();

    std::optional<duration> timeout;
    if (!ready_.empty() || stopping_) {
        timeout = duration::zero();
    } else if (!timers_.empty()) {
        timeout = std::max(duration::zero(), detail::saturating_sub(timers_.front().when, time()));
    }

    // A post from another thread after drain_inbox() is not lost: its
    // wake-up makes the wait below return at once.
    // With nothing pending in the backend, a zero-timeout poll can only find
    // nothing: skip the syscall, which would otherwise dominate a busy loop's
    // iteration. The signal pipe (pyco::run always has one, for Ctrl-C)
    // counts only while a signal is pending.
    const std::size_t own_ops = signals_ ? 1 : 0;
    const bool nothing_to_poll = backend_->pending() <= own_ops &&
                                 !(own_ops && detail::g_signal_pending.load(std::memory_order_relaxed));
    if (virtual_time_ && timeout && *timeout > duration::zero()) {
        const std::size_t before = ready_.size();
        if (!nothing_to_poll) backend_->wait(duration::zero());
        if (ready_.size() == before) virtual_now_ = std::max(virtual_now_, timers_.front().when);
    } else if (!(nothing_to_poll && timeout && *timeout == duration::zero())) {
        backend_->wait(timeout);
    }

    // Reading the clock costs as much as a task step: only with timers.
    const time_point now = timers_.empty() ? time_point{} : time();
    while (!timers_.empty() && timers_.front().when <= now) {
        std::pop_heap(timers_.begin(), timers_.end(), timer_later);
        detail::handle_state* h = timers_.back().h;
        timers_.pop_back();
        h->in_heap = false;
        if (h->cancelled) {
            --cancelled_timers_;
            h->release();
            continue;
        }
        ready_.push({&run_handle, h, nullptr});  // the heap's reference moves
    }

    // Only what is ready now: callbacks scheduled by these wait their turn.
    auto run = [this](const detail::ready_entry& e) {
        try {
            e.fn(e.a, e.b, true);
        } catch (const keyboard_interrupt&) {
            throw;  // as KeyboardInterrupt: out of the loop
        } catch (...) {
            report_callback_error();
        }
    };
    for (std::size_t n = ready_.size(); n > 0; --n) {
        detail::ready_entry e = ready_.pop();
        if (!debug_) {
            run(e);
            continue;
        }
        // What runs, described before it runs (the stall detector's
        // thread must not walk a running task's frames).
        std::string what = describe_entry(e);
        if (!watchdog_) watchdog_ = std::make_unique<detail::stall_watchdog>();
        const auto t0 = clock::now();
        watchdog_->begin(what, t0, slow_callback_);
        run(e);
        const auto dt = clock::now() - t0;
        watchdog_->end();
        if (dt >= slow_callback_) {
            char secs[32];
            std::snprintf(secs, sizeof secs, "%.3f", std::chrono::duration<double>(dt).count());
            const std::size_t nl = std::min(what.find('\n'), what.size());
            std::string text = "Executing ";
            text.append(what, 0, nl);
            text += " took ";
            text += secs;
            text += " seconds";
            text.append(what, nl, std::string::npos);
            if (detail::task_base* t = detail::task_base::stepped_by(e.fn, e.a); t && !t->done()) {
                text += "\n  now at:";
                for (const frame_info& f : t->get_stack()) {
                    text += "\n    " + f.function + " (" + f.file + ":" + std::to_string(f.line) + ")";
                }
            }
            detail::log_warning(text);
        }
    }
}

// Debug mode: CPython's "Executing <Task ...>" form for a task step, with
// the stack it resumes from; else the entry's function.
std::string event_loop::describe_entry(const detail::ready_entry& e) {
    if (detail::task_base* t = detail::task_base::stepped_by(e.fn, e.a)) {
        std::string s = t->describe();
        s += "\n  resumed from:";
        for (const frame_info& f : t->get_stack()) {
            s += "\n    " + f.function + " (" + f.file + ":" + std::to_string(f.line) + ")";
        }
        return s;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "callback %p", reinterpret_cast<void*>(e.fn));
    return buf;
}

void event_loop::run_forever() {
    check_closed();
    if (running_) throw runtime_error("This event loop is already running");
    if (tls_running_loop != nullptr) {
        throw runtime_error("Cannot run the event loop while another loop is running");
    }
    running_ = true;
    thread_id_ = this_thread_id();
    tls_running_loop = this;
    detail::tls_faults = faults_.get();
    struct reset {
        event_loop* l;
        ~reset() {
            l->stopping_ = false;
            l->running_ = false;
            l->thread_id_ = 0;
            tls_running_loop = nullptr;
            detail::tls_faults = nullptr;
        }
    } guard{this};
    while (true) {
        run_once();
        if (stopping_) break;
    }
}

void event_loop::close() {
    if (running_) throw runtime_error("Cannot close a running event loop");
    if (closed_) return;
    watchdog_.reset();  // joins the stall detector's thread
    // Tasks still pending are abandoned first: their frames go, reported.
    while (tasks_.linked()) {
        detail::abandon_task(tasks_.next);
    }
    // Async generators still linked may outlive the loop: forget them, or
    // they would unlink themselves from freed memory later.
    while (asyncgens_.linked()) asyncgens_.next->unlink();
    closed_ = true;
    anchor_->closed = true;
    while (!ready_.empty()) {
        detail::ready_entry e = ready_.pop();
        e.fn(e.a, e.b, false);
    }
    for (detail::timer_entry& t : timers_) {
        t.h->in_heap = false;
        t.h->release();
    }
    timers_.clear();
    fds_.clear();
    close_signals();
    proxy_->detach();  // before the backend goes: posts are refused from now
    if (default_executor_) default_executor_->shutdown(false);  // as CPython: don't wait
    default_executor_.reset();  // joins what is still running
    backend_.reset();
    // Sockets' operations still in flight can complete no more: free them.
    socks_.reset();
    if (faults_) {
        detail::add_fault_totals(faults_->counts());
        faults_.reset();
    }
}

void event_loop::fd_ready(detail::io_op& op, const detail::io_result& r) {
    auto* e = static_cast<fd_entry*>(op.user);
    const bool writer = &op == &e->wop;
    auto& slot = writer ? e->writer : e->reader;
    if (r.more) {
        if (slot) {
            detail::intrusive_ptr<detail::handle_state> h = slot;  // may be removed while running
            invoke_handle(h.get());
        }
        return;
    }
    // Finished (cancelled by remove_*, or the backend refused the fd).
    (writer ? e->wop_live : e->rop_live) = false;
    event_loop* loop = e->loop;
    if (slot && r.res != -ECANCELED) {
        // The backend gave up on the fd: report it as asyncio would an
        // invalid fd, and forget the callback.
        slot->cancelled = true;
        slot = {};
        loop->call_exception_handler({"Exception in callback",
                                      std::make_exception_ptr(std::system_error(
                                          static_cast<int>(-r.res), std::generic_category(),
                                          writer ? "add_writer" : "add_reader")),
                                      {}, {}});
    } else if (slot) {
        // Added again while the cancel was in flight.
        (writer ? e->wop_live : e->rop_live) = true;
        loop->backend_->submit(op);
        return;
    }
    if (!e->reader && !e->writer && !e->rop_live && !e->wop_live) loop->fds_.erase(e->fd);
}

void event_loop::set_fd_callback(int fd, bool writer, std::function<void()> fn) {
    check_closed();
    check_thread(writer ? "add_writer" : "add_reader");
    if (fd < 0) throw value_error("Invalid file descriptor: " + std::to_string(fd));
    std::unique_ptr<fd_entry>& p = fds_[fd];
    if (!p) {
        p = std::make_unique<fd_entry>();
        p->loop = this;
        p->fd = fd;
    }
    fd_entry& e = *p;
    auto* s = new detail::handle_state;
    s->fn = std::move(fn);
    s->loop = this;
    auto& slot = writer ? e.writer : e.reader;
    if (slot) slot->cancelled = true;  // replaced, as in CPython
    slot = detail::intrusive_ptr<detail::handle_state>::adopt(s);
    bool& live = writer ? e.wop_live : e.rop_live;
    if (live) return;
    detail::io_op& op = writer ? e.wop : e.rop;
    op = detail::io_op{};
    op.on_complete = &fd_ready;
    op.user = &e;
    op.fd = fd;
    op.code = writer ? detail::io_opcode::poll_write : detail::io_opcode::poll_read;
    try {
        backend_->submit(op);
    } catch (...) {
        slot = {};
        if (!e.reader && !e.writer && !e.rop_live && !e.wop_live) fds_.erase(fd);
        throw;
    }
    live = true;
}

bool event_loop::clear_fd_callback(int fd, bool writer) {
    if (closed_) return false;
    check_thread(writer ? "remove_writer" : "remove_reader");
    auto it = fds_.find(fd);
    if (it == fds_.end()) return false;
    fd_entry& e = *it->second;
    auto& slot = writer ? e.writer : e.reader;
    if (!slot) return false;
    slot->cancelled = true;
    slot = {};
    backend_->cancel(writer ? e.wop : e.rop);
    return true;
}

void event_loop::add_reader(int fd, std::function<void()> fn) { set_fd_callback(fd, false, std::move(fn)); }
void event_loop::add_writer(int fd, std::function<void()> fn) { set_fd_callback(fd, true, std::move(fn)); }
bool event_loop::remove_reader(int fd) { return clear_fd_callback(fd, false); }
bool event_loop::remove_writer(int fd) { return clear_fd_callback(fd, true); }

void event_loop::call_exception_handler(const exception_context& ctx) noexcept {
    if (!handler_) {
        default_exception_handler(ctx);
        return;
    }
    try {
        handler_(*this, ctx);
    } catch (...) {
        // CPython: the handler's own failure is logged by the default handler.
        exception_context nested{"Unhandled error in exception handler", std::current_exception(), {}, {}};
        default_exception_handler(nested);
        default_exception_handler(ctx);
    }
}

void event_loop::default_exception_handler(const exception_context& ctx) noexcept {
    detail::print_exception_context(ctx);
}

void detail::print_exception_context(const exception_context& ctx) noexcept {
    try {
        std::string text = ctx.message.empty() ? "Unhandled exception in event loop" : ctx.message;
        if (!ctx.future.empty()) text += "\nfuture: " + ctx.future;
        if (!ctx.handle.empty()) text += "\nhandle: " + ctx.handle;
        if (ctx.exception) {
            // Appended in two steps: GCC 12 at -O3 warns (-Wrestrict, a false
            // positive) on "literal" + std::string&&, which inserts at the front.
            text += '\n';
            text += describe_exception(ctx.exception);
        }
        detail::log_warning(text);
    } catch (...) {
        std::fputs("pyco: exception handler failed\n", stderr);
    }
}

}  // namespace pyco
