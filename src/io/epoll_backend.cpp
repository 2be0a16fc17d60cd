// The epoll backend: operations done the reactor's way.
//
// Sockets used by operations are registered once, edge-triggered, for both
// directions (mio's and Tokio's design): no epoll_ctl per operation. Each fd
// keeps a "may be ready" bit per direction, set optimistically at
// registration and by every edge, cleared by EAGAIN (and, on a stream socket
// or pipe, by a short read: the kernel's queue was drained then, and new data
// makes a new edge). An operation is tried at once when its direction may be
// ready; otherwise it is parked on its fd until an edge queues it.
//
// add_reader/add_writer fds are level-triggered instead, as asyncio users
// expect (the callback runs every iteration while the fd stays readable);
// one fd is in one mode, as asyncio refuses add_reader on a transport's fd.
//
// Invariants:
//   - an active op is in at most one of: parked on its fd's list, queued in
//     the ready ring (st_queued), or inside its own callback;
//   - a queued op's perform step runs in the ready phase; it alone does the
//     syscall and calls on_complete, so completions never run inside submit,
//     cancel or wait;
//   - cancel of a parked op unparks it and queues it; of a queued op it only
//     marks it: either way the perform step finishes it with -ECANCELED.
// The eventfd used by wakeup() is registered like any fd; its reads never
// reach the loop.
//
// Fault injection (detail/faults.hpp): accept and epoll_wait consult the
// loop's injector here, transfers in try_transfer. An injected EAGAIN owes
// its fd an edge, played at the next wait (which then does not block).
#include <pyco/detail/faults.hpp>
#include <pyco/detail/io_backend.hpp>
#include <pyco/detail/saturate.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>
#include <vector>

#include <pyco/event_loop.hpp>

#include "try_transfer.hpp"

namespace pyco::detail {

namespace {

[[noreturn]] void throw_errno(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
}

enum op_state : std::uint8_t {
    st_active = 1,      // submitted, not yet finished
    st_parked = 2,      // on its fd's list, waiting for readiness
    st_queued = 4,      // a perform entry is in the ready ring
    st_cancel = 8,      // cancel() was called
    st_connecting = 16, // connect() said EINPROGRESS: check SO_ERROR when writable
};

bool is_write(io_opcode c) noexcept {
    return c == io_opcode::send || c == io_opcode::sendto || c == io_opcode::connect ||
           c == io_opcode::poll_write;
}

bool is_file(io_opcode c) noexcept {
    return c == io_opcode::read_at || c == io_opcode::write_at || c == io_opcode::fsync;
}

bool is_poll(io_opcode c) noexcept { return c == io_opcode::poll_read || c == io_opcode::poll_write; }

// How many connections one accept perform takes before letting others run
// (asyncio accepts up to `backlog` per ready event; 64 keeps a storm fair).
constexpr int accepts_per_turn = 64;

struct fd_state {
    io_op* readers = nullptr;  // parked, FIFO
    io_op* writers = nullptr;
    std::uint32_t registered = 0;  // the events epoll has for this fd; 0: none
    bool level = false;
    bool rd_ready = false;
    bool wr_ready = false;
    // The peer's EOF (or an error) was reported: it makes no further edge,
    // so a short read no longer proves the queue drained.
    bool rd_hup = false;
};

class epoll_backend final : public io_backend {
public:
    explicit epoll_backend(ready_ring& ready) : ready_(&ready) {
        epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (epfd_ < 0) throw_errno("epoll_create1");
        wakefd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (wakefd_ < 0) {
            int e = errno;
            ::close(epfd_);
            throw std::system_error(e, std::generic_category(), "eventfd");
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = wakefd_;
        if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) < 0) {
            int e = errno;
            ::close(wakefd_);
            ::close(epfd_);
            throw std::system_error(e, std::generic_category(), "epoll_ctl(wakeup fd)");
        }
    }
    ~epoll_backend() override {
        ::close(wakefd_);
        ::close(epfd_);
    }

    const char* name() const noexcept override { return "epoll"; }
    // Regular files are always "ready" to epoll: it cannot make their I/O
    // asynchronous, so the file layer uses the default executor instead.
    bool supports(io_opcode code) const noexcept override { return !is_file(code); }
    std::size_t pending() const noexcept override { return parked_; }

    io_status submit(io_op& op) override;
    void cancel(io_op& op) noexcept override;
    void close_fd(int fd) noexcept override;
    void wait(std::optional<std::chrono::nanoseconds> timeout) override;

    void wakeup() noexcept override {
        std::uint64_t one = 1;
        [[maybe_unused]] auto r = ::write(wakefd_, &one, sizeof one);
    }

private:
    // The table is indexed by fd; it grows only for an fd that is open, so
    // a bogus number cannot make it huge.
    fd_state* state_of(int fd) noexcept {
        if (fd < 0) return nullptr;
        if (static_cast<std::size_t>(fd) >= fds_.size()) {
            if (::fcntl(fd, F_GETFD) < 0) return nullptr;
            fds_.resize(static_cast<std::size_t>(fd) + 64);
        }
        return &fds_[static_cast<std::size_t>(fd)];
    }
    int register_edge(int fd, fd_state& s) noexcept;
    void update_level(int fd, fd_state& s);
    void park(io_op& op, fd_state& s) noexcept;
    bool unpark(io_op& op, fd_state& s) noexcept;
    void queue(io_op& op) {
        op.state |= st_queued;
        ready_->push({&perform_entry, &op, this});
    }
    void release(io_op*& head) {
        while (io_op* p = head) {
            head = p->next;
            p->next = nullptr;
            p->state &= static_cast<std::uint8_t>(~st_parked);
            --parked_;
            queue(*p);
        }
    }
    void play_owed_edges(fault_injector& f);
    static void perform_entry(void* a, void* b, bool run);
    void perform(io_op& op);
    void finish(io_op& op, long res) {
        op.state = 0;
        io_result r;
        r.res = res;
        op.on_complete(op, r);
    }
    // One syscall for op; -errno on failure.
    static long do_syscall(io_op& op) noexcept;

    int epfd_ = -1;
    int wakefd_ = -1;
    std::vector<fd_state> fds_;
    std::size_t parked_ = 0;
    ready_ring* ready_;  // the loop's
    std::vector<epoll_event> events_ = std::vector<epoll_event>(256);
};

int epoll_backend::register_edge(int fd, fd_state& s) noexcept {
    if (s.registered) return 0;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0) return -errno;
    s.registered = ev.events;
    s.level = false;
    // Optimistic: the first operation tries its syscall, as a reactor does.
    s.rd_ready = s.wr_ready = true;
    return 0;
}

void epoll_backend::update_level(int fd, fd_state& s) {
    std::uint32_t want = 0;
    for (io_op* p = s.readers; p; p = p->next) want |= EPOLLIN;
    for (io_op* p = s.writers; p; p = p->next) want |= EPOLLOUT;
    if (want == s.registered) return;
    epoll_event ev{};
    ev.events = want;
    ev.data.fd = fd;
    const int op = s.registered == 0 ? EPOLL_CTL_ADD : want == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    if (::epoll_ctl(epfd_, op, fd, &ev) < 0) {
        // A closed fd leaves epoll by itself; removing it is not an error.
        if (!(op == EPOLL_CTL_DEL && (errno == EBADF || errno == ENOENT))) {
            throw_errno(op == EPOLL_CTL_ADD ? "epoll_ctl(ADD)" : op == EPOLL_CTL_MOD ? "epoll_ctl(MOD)"
                                                                                   : "epoll_ctl(DEL)");
        }
    }
    s.registered = want;
    s.level = want != 0;
}

void epoll_backend::park(io_op& op, fd_state& s) noexcept {
    io_op** head = is_write(op.code) ? &s.writers : &s.readers;
    op.next = nullptr;
    while (*head) head = &(*head)->next;
    *head = &op;
    op.state |= st_parked;
    ++parked_;
}

bool epoll_backend::unpark(io_op& op, fd_state& s) noexcept {
    if (!(op.state & st_parked)) return false;
    for (io_op** p = is_write(op.code) ? &s.writers : &s.readers; *p; p = &(*p)->next) {
        if (*p == &op) {
            *p = op.next;
            op.next = nullptr;
            op.state &= static_cast<std::uint8_t>(~st_parked);
            --parked_;
            return true;
        }
    }
    return false;
}

io_status epoll_backend::submit(io_op& op) {
    if (is_file(op.code)) {
        op.state = 0;
        op.result = -EOPNOTSUPP;
        return io_status::done;
    }
    fd_state* sp = state_of(op.fd);
    if (!sp) {
        if (is_poll(op.code)) throw std::system_error(EBADF, std::generic_category(), "epoll_ctl(ADD)");
        op.state = 0;
        op.result = -EBADF;
        return io_status::done;
    }
    fd_state& s = *sp;
    op.state = st_active;
    if (is_poll(op.code)) {
        if (s.registered && !s.level) {
            op.state = 0;
            throw std::system_error(EEXIST, std::generic_category(),
                                    "add_reader/add_writer on an fd used by a transport");
        }
        park(op, s);
        try {
            update_level(op.fd, s);
        } catch (...) {
            unpark(op, s);
            op.state = 0;
            throw;
        }
        return io_status::pending;
    }
    if (s.level) {
        op.state = 0;
        op.result = -EEXIST;  // the fd is watched by add_reader/add_writer
        return io_status::done;
    }
    if (int e = register_edge(op.fd, s); e < 0) {
        op.state = 0;
        op.result = e;
        return io_status::done;
    }
    const bool write = is_write(op.code);
    bool& ready = write ? s.wr_ready : s.rd_ready;
    switch (op.code) {
    case io_opcode::recv_stream:
    case io_opcode::accept:
        // Multishot: never completes inline (the issuer is mid-setup).
        if (ready) {
            queue(op);
        } else {
            park(op, s);
        }
        return io_status::pending;
    case io_opcode::connect: {
        if (::connect(op.fd, op.addr, op.addrlen) == 0) {
            op.state = 0;
            op.result = 0;
            return io_status::done;
        }
        const int e = errno;
        if (e != EINPROGRESS && e != EAGAIN && e != EINTR) {
            op.state = 0;
            op.result = -e;
            return io_status::done;
        }
        op.state |= st_connecting;
        s.wr_ready = false;
        park(op, s);
        return io_status::pending;
    }
    default:
        break;
    }
    if (ready) {
        long r = do_syscall(op);
        if (r != -EAGAIN) {
            if (r >= 0 && op.code == io_opcode::recv && (op.flags & io_flag_stream) && !s.rd_hup &&
                static_cast<std::size_t>(r) < op.len && r > 0) {
                ready = false;  // drained: the next bytes make a new edge
            }
            op.state = 0;
            op.result = r;
            return io_status::done;
        }
        ready = false;
    }
    if (op.flags & io_flag_try) {
        op.state = 0;
        op.result = -EAGAIN;
        return io_status::done;
    }
    park(op, s);
    return io_status::pending;
}

long epoll_backend::do_syscall(io_op& op) noexcept {
    if (is_transfer(op.code)) return try_transfer(op);
    switch (op.code) {
    case io_opcode::accept:
        for (;;) {
            if (fault_injector* f = active_faults()) {
                ++f->counts().accept_calls;
                switch (f->pick(fk_eagain | fk_eintr | fk_emfile | fk_enobufs | fk_enomem)) {
                case fk_eagain:
                    f->owed_edges.push_back(op.fd);
                    return -EAGAIN;
                case fk_eintr:
                    continue;
                case fk_emfile:
                    return -EMFILE;
                case fk_enobufs:
                    return -ENOBUFS;
                case fk_enomem:
                    return -ENOMEM;
                default:
                    break;
                }
            }
            const int fd = ::accept4(op.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0) return fd;
            if (errno == EINTR) continue;
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
    case io_opcode::connect: {
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(op.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
        return err == 0 ? 0 : -err;
    }
    case io_opcode::poll_read:
    case io_opcode::poll_write:
        return 0;
    default:
        return -EOPNOTSUPP;  // files: refused by submit()
    }
}

void epoll_backend::perform_entry(void* a, void* b, bool run) {
    auto& op = *static_cast<io_op*>(a);
    op.state &= static_cast<std::uint8_t>(~st_queued);
    if (!run) return;  // the loop is closing: its issuers go with it
    static_cast<epoll_backend*>(b)->perform(op);
}

void epoll_backend::perform(io_op& op) {
    if (!(op.state & st_active)) return;
    fd_state& s = fds_[static_cast<std::size_t>(op.fd)];
    if (op.state & st_cancel) {
        unpark(op, s);
        if (s.level) update_level(op.fd, s);
        finish(op, -ECANCELED);
        return;
    }
    const bool write = is_write(op.code);
    bool& ready = write ? s.wr_ready : s.rd_ready;
    switch (op.code) {
    case io_opcode::poll_read:
    case io_opcode::poll_write: {
        // Level-triggered and multishot: it stays parked.
        io_result r;
        r.more = true;
        op.on_complete(op, r);
        return;
    }
    case io_opcode::recv_stream: {
        std::span<std::byte> room = op.get_buffer ? op.get_buffer(op) : std::span<std::byte>(op.buf, op.len);
        op.buf = room.data();
        op.len = room.size();
        long n = do_syscall(op);
        if (n == -EAGAIN) {
            ready = false;
            park(op, s);
            return;
        }
        io_result r;
        r.res = n;
        r.data = op.buf;
        r.more = n > 0;
        if (!r.more) op.state = 0;
        // A full buffer may have left more behind; a short read drained the
        // queue (the next bytes make a new edge).
        const bool again = n > 0 && static_cast<std::size_t>(n) == op.len;
        if (n > 0 && !again && (op.flags & io_flag_stream) && !s.rd_hup) ready = false;
        op.on_complete(op, r);
        if (!r.more || !(op.state & st_active)) return;
        // The callback may have grown fds_: look the state up again.
        fd_state& now = fds_[static_cast<std::size_t>(op.fd)];
        const bool still = write ? now.wr_ready : now.rd_ready;
        if ((op.state & st_cancel) || still) {
            queue(op);  // next iteration: one read per connection per turn
        } else {
            park(op, now);
        }
        return;
    }
    case io_opcode::accept: {
        for (int i = 0; i < accepts_per_turn; ++i) {
            long fd = do_syscall(op);
            if (fd == -EAGAIN) {
                // The callbacks may have grown fds_: look the state up again.
                fd_state& now = fds_[static_cast<std::size_t>(op.fd)];
                now.rd_ready = false;
                park(op, now);
                return;
            }
            if (fd == -ECONNABORTED || fd == -EPROTO) continue;  // the peer gave up: next
            io_result r;
            r.res = fd;
            r.more = fd >= 0;
            if (!r.more) op.state = 0;
            op.on_complete(op, r);
            if (!r.more || !(op.state & st_active)) return;
            if (op.state & st_cancel) {
                queue(op);
                return;
            }
        }
        queue(op);  // more may wait: let the others run first
        return;
    }
    default:
        break;
    }
    long r = do_syscall(op);
    if (r == -EAGAIN) {
        ready = false;
        park(op, s);
        return;
    }
    finish(op, r);
}

void epoll_backend::cancel(io_op& op) noexcept {
    if (!(op.state & st_active) || (op.state & st_cancel)) return;
    op.state |= st_cancel;
    if (op.state & st_queued) return;  // its perform step will finish it
    if (op.state & st_parked) {
        unpark(op, fds_[static_cast<std::size_t>(op.fd)]);
        queue(op);
    }
    // Otherwise it is inside its own callback: perform queues it after.
}

void epoll_backend::close_fd(int fd) noexcept {
    if (fd < 0) return;
    if (static_cast<std::size_t>(fd) < fds_.size()) {
        fd_state& s = fds_[static_cast<std::size_t>(fd)];
        // A dup of fd would keep the registration (and its events, under
        // this fd's number) alive past close: remove it explicitly.
        if (s.registered) {
            epoll_event ev{};
            ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &ev);
        }
        s = fd_state{};
    }
    ::close(fd);
}

void epoll_backend::wait(std::optional<std::chrono::nanoseconds> timeout) {
    int ms = -1;
    if (timeout) {
        // Round up, as CPython does: waking early only spins the loop.
        // Longer waits are cut at epoll's limit (about 24.8 days); the loop
        // then waits again.
        auto t = saturating_ceil<std::chrono::milliseconds>(*timeout).count();
        ms = t <= 0 ? 0 : t > 0x7fffffff ? 0x7fffffff : static_cast<int>(t);
    }
    fault_injector* faults = active_faults();
    if (faults) {
        if (faults->pick(fk_eintr)) return;  // epoll_wait's EINTR: nothing happened
        if (!faults->owed_edges.empty()) ms = 0;
    }
    int n = ::epoll_wait(epfd_, events_.data(), static_cast<int>(events_.size()), ms);
    if (n < 0) {
        if (errno == EINTR) return;
        throw_errno("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
        const epoll_event& e = events_[static_cast<std::size_t>(i)];
        const int fd = e.data.fd;
        if (fd == wakefd_) {
            std::uint64_t drain;
            [[maybe_unused]] auto r = ::read(wakefd_, &drain, sizeof drain);
            continue;
        }
        if (static_cast<std::size_t>(fd) >= fds_.size()) continue;
        fd_state& s = fds_[static_cast<std::size_t>(fd)];
        const bool err = (e.events & (EPOLLERR | EPOLLHUP)) != 0;
        const bool rd = err || (e.events & (EPOLLIN | EPOLLPRI | EPOLLRDHUP));
        const bool wr = err || (e.events & EPOLLOUT);
        if (s.level) {
            // Every parked poll op of a ready direction runs once this turn.
            if (rd) {
                for (io_op* p = s.readers; p; p = p->next) {
                    if (!(p->state & st_queued)) queue(*p);
                }
            }
            if (wr) {
                for (io_op* p = s.writers; p; p = p->next) {
                    if (!(p->state & st_queued)) queue(*p);
                }
            }
            continue;
        }
        // Edge: remember readiness, and run whatever waited for it.
        if (rd) {
            s.rd_ready = true;
            if (e.events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s.rd_hup = true;
            release(s.readers);
        }
        if (wr) {
            s.wr_ready = true;
            release(s.writers);
        }
    }
    if (static_cast<std::size_t>(n) == events_.size()) events_.resize(events_.size() * 2);
    if (faults && !faults->owed_edges.empty()) play_owed_edges(*faults);
}

// The edges injected EAGAINs owe: both directions, as new data or room
// would make. A spurious one (the fd closed, or nothing there) only makes
// an operation try its syscall and park again.
void epoll_backend::play_owed_edges(fault_injector& f) {
    std::vector<int> owed;
    owed.swap(f.owed_edges);
    for (int fd : owed) {
        if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) continue;
        fd_state& s = fds_[static_cast<std::size_t>(fd)];
        if (!s.registered || s.level) continue;
        s.rd_ready = s.wr_ready = true;
        release(s.readers);
        release(s.writers);
    }
}

}  // namespace

std::unique_ptr<io_backend> make_epoll_backend(ready_ring& ready) { return std::make_unique<epoll_backend>(ready); }

}  // namespace pyco::detail
