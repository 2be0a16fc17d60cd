// The subprocess transport (asyncio's BaseSubprocessTransport with the
// Unix pipe transports and PidfdChildWatcher / ThreadedChildWatcher), and
// loop.subprocess_exec / subprocess_shell.
//
// Invariants:
//   - self_ is held from the spawn until finish() (the child reaped AND
//     every pipe lost AND connection_lost run) or the loop's close
//     (loop_closed): the child is always watched, whoever holds handles;
//   - returncode_ is set exactly once, by exited(), on the loop thread; the
//     pidfd (if any) is unregistered and closed there;
//   - connection_lost is scheduled exactly once (finishing_), after
//     process_exited and every pipe_connection_lost;
//   - the fallback watcher's thread owns nothing of the transport but a
//     weak_ptr, which it only copies into the fn it posts (locked on the
//     loop thread); it reaps its child itself, so whether the post lands or
//     the loop has closed, no zombie is left.
// Cancellation: wait() parks a future; cancelling it leaves the child and
// its watch as they were.
#include <sys/syscall.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <thread>

#include <pyco/detail/io_backend.hpp>
#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/future.hpp>
#include <pyco/net/os_error.hpp>
#include <pyco/net/protocol.hpp>
#include <pyco/net/transport.hpp>
#include <pyco/subprocess_transport.hpp>
#include <pyco/task.hpp>

#include "../net/sock_registry.hpp"
#include "../net/socket_transport.hpp"
#include "spawn.hpp"

namespace pyco {

void subprocess_transport::terminate() { send_signal(SIGTERM); }
void subprocess_transport::kill() { send_signal(SIGKILL); }

namespace detail {

namespace {

int returncode_of(int status) {
    if (WIFSIGNALED(status)) return -WTERMSIG(status);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return status;
}

bool force_thread_watcher() {
    const char* v = std::getenv("PYCO_CHILD_WATCHER");
    return v && std::strcmp(v, "thread") == 0;
}

int pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
    errno = ENOSYS;
    return -1;
#endif
}

// Blocks until pid exits and reaps it (a detached thread's job).
int wait_blocking(pid_t pid) {
    int status = 0;
    for (;;) {
        if (::waitpid(pid, &status, 0) == pid) return returncode_of(status);
        if (errno != EINTR) return 255;  // reaped by someone else (asyncio says 255)
    }
}

// A write to a pipe whose reader is gone raises SIGPIPE, which kills the
// process by default (sockets avoid it with MSG_NOSIGNAL; pipes cannot).
// The Python interpreter ignores SIGPIPE from its start; pyco does the same
// the first time it makes a stdin pipe, if SIGPIPE is still at its default
// action — an application's own handler, or SIG_IGN, is left as it is. The
// children get the default back (spawn.cpp).
void ignore_sigpipe_once() {
    static const bool done = [] {
        struct sigaction old {};
        if (::sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL &&
            !(old.sa_flags & SA_SIGINFO)) {
            struct sigaction ign {};
            ign.sa_handler = SIG_IGN;
            sigemptyset(&ign.sa_mask);
            ::sigaction(SIGPIPE, &ign, nullptr);
        }
        return true;
    }();
    (void)done;
}

class subprocess_impl;

// What a pipe transport calls (asyncio's Read/WriteSubprocessPipeProto).
class pipe_proto final : public protocol {
public:
    pipe_proto(std::weak_ptr<subprocess_impl> owner, int fd) : owner_(std::move(owner)), fd_(fd) {}
    void data_received(std::span<const std::byte> data) override;
    bool eof_received() override { return false; }
    void connection_lost(std::exception_ptr exc) override;
    void pause_writing() override;
    void resume_writing() override;

private:
    std::weak_ptr<subprocess_impl> owner_;
    int fd_;
};

class subprocess_impl final : public subprocess_transport,
                              public std::enable_shared_from_this<subprocess_impl>,
                              private loop_owned {
public:
    explicit subprocess_impl(event_loop& loop) : loop_(&loop) {}

    // Spawns, connects the pipes and starts watching; then connection_made.
    void start(const std::vector<std::string>& argv, const subprocess_options& o,
               std::shared_ptr<subprocess_protocol> proto) {
        protocol_ = std::move(proto);
        if (o.stdin == subprocess::PIPE) ignore_sigpipe_once();
        spawned s = spawn_child(argv, o);
        pid_ = s.pid;
        self_ = shared_from_this();
        own_by_loop(*loop_, *this);
        std::weak_ptr<subprocess_impl> weak = self_;
        for (int fd = 0; fd < 3; ++fd) {
            if (s.pipes[fd] < 0) continue;
            stream_transport_options to;
            to.is_pipe = true;
            to.pipe_write_only = fd == 0;
            pipes_[fd] = make_stream_transport(*loop_, s.pipes[fd], std::make_shared<pipe_proto>(weak, fd), to);
        }
        watch();
        try {
            protocol_->connection_made(*this);
        } catch (...) {
            close();
            throw;
        }
    }

    int get_pid() const noexcept override { return pid_; }
    std::optional<int> get_returncode() const noexcept override { return returncode_; }
    std::shared_ptr<transport> get_pipe_transport(int fd) const override {
        if (fd < 0 || fd > 2) return nullptr;
        return pipes_[fd];
    }
    void send_signal(int sig) override {
        if (finished_ || loop_closed_) throw process_lookup_error(ESRCH, "send_signal");
        if (returncode_) return;  // exited, not yet finished: Popen ignores it
        if (::kill(pid_, sig) != 0) throw_os_error(errno, "kill");
    }
    void close() override {
        if (closed_) return;
        closed_ = true;
        for (auto& p : pipes_) {
            if (p && !p->is_closing()) p->close();
        }
        if (!returncode_ && !loop_closed_) ::kill(pid_, SIGKILL);  // ESRCH: nothing to kill
    }
    bool is_closing() const noexcept override { return closed_; }
    coroutine<int> wait() override {
        std::shared_ptr<subprocess_impl> keep = shared_from_this();
        if (finished_) co_return *returncode_;
        future<int> f = create_future<int>(*loop_);
        waiters_.push_back(f);
        co_return co_await f;
    }

    // --- from the pipes ---
    void pipe_data(int fd, std::span<const std::byte> data) {
        if (finishing_) return;
        try {
            protocol_->pipe_data_received(fd, data);
        } catch (...) {
            loop_->call_exception_handler({"Exception in callback pipe_data_received", std::current_exception(), {}, {}});
        }
    }
    void pipe_lost(int fd, std::exception_ptr exc) {
        lost_[fd] = true;
        try {
            protocol_->pipe_connection_lost(fd, exc);
        } catch (...) {
            loop_->call_exception_handler(
                {"Exception in callback pipe_connection_lost", std::current_exception(), {}, {}});
        }
        try_finish();
    }
    subprocess_protocol& proto() noexcept { return *protocol_; }

private:
    void watch() {
        if (!force_thread_watcher()) {
            pidfd_ = pidfd_open(pid_);
            if (pidfd_ < 0 && errno != ENOSYS) {
                // EMFILE and such: still watched, by a thread.
                pidfd_ = -1;
            }
        }
        if (pidfd_ >= 0) {
            ::fcntl(pidfd_, F_SETFD, FD_CLOEXEC);
            loop_->add_reader(pidfd_, [this] { reap(); });
            return;
        }
        // ThreadedChildWatcher: one thread per child, blocked in waitpid.
        std::weak_ptr<subprocess_impl> weak = self_;
        std::shared_ptr<loop_proxy> proxy = loop_->proxy();
        const pid_t pid = pid_;
        std::thread([weak = std::move(weak), proxy = std::move(proxy), pid]() mutable {
            const int code = wait_blocking(pid);
            proxy->post(unique_fn([weak = std::move(weak), code] {
                if (auto me = weak.lock()) me->exited(code);
            }));
        }).detach();
    }

    void reap() {
        int status = 0;
        const pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == 0) return;  // not yet (spurious readiness)
        exited(r == pid_ ? returncode_of(status) : 255);
    }

    void exited(int code) {
        if (returncode_ || loop_closed_) return;
        if (pidfd_ >= 0) {
            loop_->remove_reader(pidfd_);
            ::close(pidfd_);
            pidfd_ = -1;
        }
        returncode_ = code;
        try {
            protocol_->process_exited();
        } catch (...) {
            loop_->call_exception_handler({"Exception in callback process_exited", std::current_exception(), {}, {}});
        }
        try_finish();
    }

    void try_finish() {
        if (!returncode_ || finishing_) return;
        for (int fd = 0; fd < 3; ++fd) {
            if (pipes_[fd] && !lost_[fd]) return;
        }
        finishing_ = true;
        std::shared_ptr<subprocess_impl> me = self_;
        loop_->call_soon([me] { me->finish(); });
    }

    void finish() {
        try {
            protocol_->connection_lost(nullptr);
        } catch (...) {
            loop_->call_exception_handler({"Exception in callback connection_lost", std::current_exception(), {}, {}});
        }
        finished_ = true;
        std::vector<future<int>> ws = std::move(waiters_);
        waiters_.clear();
        for (future<int>& w : ws) {
            if (!w.done()) w.set_result(*returncode_);
        }
        disown_by_loop(*loop_, *this);
        auto me = std::move(self_);  // may destroy *this: nothing after this line
    }

    // The loop closed before the child was reaped (or before connection_lost
    // ran): no callback runs any more; a child still running is left to a
    // detached thread that reaps it (it is not killed, as CPython does not
    // kill it at loop close either).
    std::shared_ptr<void> loop_closed() noexcept override {
        loop_closed_ = closed_ = true;
        if (pidfd_ >= 0) {
            ::close(pidfd_);
            pidfd_ = -1;
            if (!returncode_) {
                const pid_t pid = pid_;
                try {
                    std::thread([pid] { (void)wait_blocking(pid); }).detach();
                } catch (...) {
                    // No thread to be had: the child stays a zombie until this process exits.
                }
            }
        }
        waiters_.clear();
        return std::move(self_);
    }

    event_loop* loop_;
    pid_t pid_ = -1;
    int pidfd_ = -1;
    std::optional<int> returncode_;
    std::shared_ptr<subprocess_protocol> protocol_;
    std::shared_ptr<transport> pipes_[3];
    bool lost_[3] = {false, false, false};
    std::vector<future<int>> waiters_;
    std::shared_ptr<subprocess_impl> self_;
    bool closed_ = false, finishing_ = false, finished_ = false, loop_closed_ = false;
};

void pipe_proto::data_received(std::span<const std::byte> data) {
    if (auto o = owner_.lock()) o->pipe_data(fd_, data);
}
void pipe_proto::connection_lost(std::exception_ptr exc) {
    if (auto o = owner_.lock()) o->pipe_lost(fd_, exc);
}
void pipe_proto::pause_writing() {
    if (auto o = owner_.lock()) o->proto().pause_writing();
}
void pipe_proto::resume_writing() {
    if (auto o = owner_.lock()) o->proto().resume_writing();
}

}  // namespace

subprocess_pair start_subprocess(event_loop& loop, subprocess_protocol_factory factory,
                                 const std::vector<std::string>& argv, const subprocess_options& options) {
    std::shared_ptr<subprocess_protocol> proto = factory();
    auto t = std::make_shared<subprocess_impl>(loop);
    t->start(argv, options, proto);
    return {std::move(t), std::move(proto)};
}

}  // namespace detail

coroutine<subprocess_pair> event_loop::subprocess_exec(subprocess_protocol_factory factory,
                                                       std::vector<std::string> argv, subprocess_options options) {
    co_return detail::start_subprocess(*this, std::move(factory), argv, options);
}

namespace {
// loop.subprocess_exec/shell's defaults: stdin, stdout, stderr all PIPE.
subprocess_options all_pipes() {
    subprocess_options o;
    o.stdin = o.stdout = o.stderr = subprocess::PIPE;
    return o;
}
}  // namespace

coroutine<subprocess_pair> event_loop::subprocess_exec(subprocess_protocol_factory factory,
                                                       std::vector<std::string> argv) {
    co_return detail::start_subprocess(*this, std::move(factory), argv, all_pipes());
}

coroutine<subprocess_pair> event_loop::subprocess_shell(subprocess_protocol_factory factory, std::string cmd) {
    std::vector<std::string> argv{"/bin/sh", "-c", std::move(cmd)};
    co_return detail::start_subprocess(*this, std::move(factory), argv, all_pipes());
}

coroutine<subprocess_pair> event_loop::subprocess_shell(subprocess_protocol_factory factory, std::string cmd,
                                                        subprocess_options options) {
    std::vector<std::string> argv{"/bin/sh", "-c", std::move(cmd)};
    co_return detail::start_subprocess(*this, std::move(factory), argv, options);
}

}  // namespace pyco
