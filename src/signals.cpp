// Signals: a self-pipe. The C handler only writes the signal's number to a
// pipe (async-signal-safe); the loop watches the read end like any fd and
// runs the Python-level handlers as ordinary callbacks. This is CPython's
// signal.set_wakeup_fd design, and it works whichever thread the kernel
// picks to deliver the signal to.
//
// The write end is never closed under a live handler. The handler runs on
// any thread, at any moment, so it announces itself (g_in_handler) before
// it reads the fd, and leaves after its write. Closing the pipe first
// unpublishes the fd, then waits until no handler is inside, then closes:
// a handler that read the fd is counted and waited for; one that was not
// counted yet reads -1 (both sides are seq_cst, so one of the two always
// sees the other). So no write reaches a closed fd, or the file that
// reuses its number. Publishing a new pipe with a seq_cst store orders its
// creation before any handler's write to it.
#include <pyco/event_loop.hpp>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <map>
#include <system_error>
#include <thread>

#include <pyco/errors.hpp>

#include "signal_state.hpp"

namespace pyco {

namespace {

// The write end of the owning loop's pipe, for the C handler; -1: none.
std::atomic<int> g_wakeup_fd{-1};
// C handlers between their announcement and their write's end.
std::atomic<int> g_in_handler{0};
std::atomic<event_loop*> g_owner{nullptr};

// The handler may use only lock-free atomics (async-signal-safe).
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<bool>::is_always_lock_free);

}  // namespace

// Raised by the C handler, lowered by the pipe's reader. A busy loop does
// not poll the pipe (that would cost a syscall per iteration); it polls only
// while this is up. Lock-free atomics are async-signal-safe.
std::atomic<bool> detail::g_signal_pending{false};

namespace {

extern "C" void pyco_on_signal(int sig) {
    const int saved = errno;
    detail::g_signal_pending.store(true, std::memory_order_relaxed);
    g_in_handler.fetch_add(1, std::memory_order_seq_cst);
    const int fd = g_wakeup_fd.load(std::memory_order_seq_cst);
    if (fd >= 0) {
        const unsigned char b = static_cast<unsigned char>(sig);
        [[maybe_unused]] auto r = ::write(fd, &b, 1);  // a full pipe drops it, as CPython
    }
    g_in_handler.fetch_sub(1, std::memory_order_release);
    errno = saved;
}

// Stops handlers from writing to the published fd; when it returns, none is
// still writing to it, and the fd may be closed.
void unpublish_wakeup_fd() noexcept {
    g_wakeup_fd.store(-1, std::memory_order_seq_cst);
    // A handler inside now is on another thread (one on this thread has
    // returned before we go on); it only writes one byte to a non-blocking
    // pipe, so this wait is short.
    while (g_in_handler.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
}

}  // namespace

void event_loop::add_signal_handler(int sig, std::function<void()> fn) {
    check_closed();
    check_thread("add_signal_handler");
    if (sig <= 0 || sig >= NSIG) throw value_error("invalid signal number " + std::to_string(sig));
    if (sig == SIGKILL || sig == SIGSTOP) {
        throw runtime_error("sig " + std::to_string(sig) + " cannot be caught");
    }
    event_loop* expected = nullptr;
    if (!g_owner.compare_exchange_strong(expected, this) && expected != this) {
        throw runtime_error("another event loop owns the signal handlers");
    }
    if (!signals_) {
        auto st = std::make_unique<signal_state>();
        int fds[2];
        if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
            g_owner.store(nullptr);
            throw std::system_error(errno, std::generic_category(), "pipe2 (signal wakeup)");
        }
        st->read_fd = fds[0];
        st->write_fd = fds[1];
        signals_ = std::move(st);
        add_reader(signals_->read_fd, [this] {
            detail::g_signal_pending.store(false, std::memory_order_relaxed);
            unsigned char buf[64];
            ssize_t n;
            while ((n = ::read(signals_->read_fd, buf, sizeof buf)) > 0) {
                for (ssize_t i = 0; i < n; ++i) {
                    auto it = signals_->handlers.find(buf[i]);
                    // As CPython's _handle_signal: the handler runs as a callback.
                    if (it != signals_->handlers.end()) call_soon(it->second.fn);
                }
            }
        });
        g_wakeup_fd.store(signals_->write_fd, std::memory_order_seq_cst);
    }
    auto it = signals_->handlers.find(sig);
    if (it != signals_->handlers.end()) {
        it->second.fn = std::move(fn);  // replace, keep the saved action
        return;
    }
    struct sigaction action {};
    action.sa_handler = &pyco_on_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    signal_state::entry e{std::move(fn), {}};
    if (::sigaction(sig, &action, &e.previous) != 0) {
        const int err = errno;
        if (signals_->handlers.empty()) close_signals();
        if (err == EINVAL) throw runtime_error("sig " + std::to_string(sig) + " cannot be caught");
        throw std::system_error(err, std::generic_category(), "sigaction");
    }
    signals_->handlers.emplace(sig, std::move(e));
}

bool event_loop::remove_signal_handler(int sig) {
    check_thread("remove_signal_handler");
    if (sig <= 0 || sig >= NSIG) throw value_error("invalid signal number " + std::to_string(sig));
    if (!signals_) return false;
    auto it = signals_->handlers.find(sig);
    if (it == signals_->handlers.end()) return false;
    // CPython restores SIG_DFL (SIGINT: Python's default handler); we restore
    // what was there before, which is the default unless the program set one.
    ::sigaction(sig, &it->second.previous, nullptr);
    signals_->handlers.erase(it);
    if (signals_->handlers.empty()) close_signals();
    return true;
}

void event_loop::close_signals() noexcept {
    if (!signals_) return;
    for (auto& [sig, e] : signals_->handlers) ::sigaction(sig, &e.previous, nullptr);
    signals_->handlers.clear();
    unpublish_wakeup_fd();  // before the pipe closes (see the top)
    if (!closed_ || backend_) {
        try {
            remove_reader(signals_->read_fd);
        } catch (...) {
        }
    }
    ::close(signals_->read_fd);
    ::close(signals_->write_fd);
    signals_.reset();
    event_loop* me = this;
    g_owner.compare_exchange_strong(me, nullptr);
}

}  // namespace pyco
