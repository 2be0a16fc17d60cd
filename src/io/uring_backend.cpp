// The io_uring backend: the ring's life, submission, waiting and
// completions. Why it is shaped this way, its invariants, and its
// cancellation and thread rules: uring_backend_impl.hpp; each operation's
// SQE: uring_prep.cpp.
#include <pyco/detail/io_backend.hpp>

#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>

#if PYCO_HAVE_LIBURING

#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <deque>
#include <system_error>
#include <vector>

#include <pyco/detail/faults.hpp>

#include "try_transfer.hpp"
#include "uring_backend_impl.hpp"

namespace pyco::detail {

namespace uring {

uring_backend::uring_backend(ready_ring& ready, const uring_config& cfg) : ready_(&ready), cfg_(cfg) {
    constexpr unsigned base = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    constexpr unsigned single = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
    // The best the kernel takes; EINVAL means "not that", anything else
    // (EPERM from kernel.io_uring_disabled or seccomp, ENOSYS) means "none".
    const unsigned attempts[] = {
        base | single | IORING_SETUP_TASKRUN_FLAG,
        base | single,
        base | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        base,
        0,
    };
    int err = -EINVAL;
    unsigned flags = 0;
    const unsigned sq = cfg.sq_entries < 8 ? 8 : cfg.sq_entries;
    for (unsigned f : attempts) {
        io_uring_params p{};
        p.flags = f;
        p.cq_entries = sq * 4 < 4096 ? 4096 : sq * 4;
        err = io_uring_queue_init_params(sq, &ring_, &p);
        if (err == 0) {
            flags = f;
            break;
        }
        if (err != -EINVAL) break;
    }
    if (err < 0) unavailable(std::string("io_uring_setup: ") + std::strerror(-err));
    starts_disabled_ = (flags & IORING_SETUP_R_DISABLED) != 0;
    single_issuer_ = (flags & IORING_SETUP_SINGLE_ISSUER) != 0;
    try {
        io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
        if (!probe) unavailable("io_uring_register(REGISTER_PROBE) failed");
        for (const opcode_name& o : needed_opcodes) {
            if (!io_uring_opcode_supported(probe, o.op)) {
                io_uring_free_probe(probe);
                unavailable(std::string("the kernel lacks ") + o.name);
            }
        }
        io_uring_free_probe(probe);
        if (int r = bufs_.setup(ring_, cfg); r < 0) {
            unavailable(std::string("io_uring_register_buf_ring: ") + std::strerror(-r));
        }
        // Blocking on purpose: a read SQE on a non-blocking fd may complete
        // with -EAGAIN instead of waiting.
        wakefd_ = ::eventfd(0, EFD_CLOEXEC);
        if (wakefd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
        arm_wake();
    } catch (...) {
        io_uring_queue_exit(&ring_);
        bufs_.release();
        if (wakefd_ >= 0) ::close(wakefd_);
        throw;
    }
}

uring_backend::~uring_backend() {
    closing_ = true;
    drain();
    io_uring_queue_exit(&ring_);
    // Were an SQE still live, the kernel could write into these buffers:
    // then they are left mapped rather than handed back to the allocator.
    if (in_flight_ == 0 || !enabled_) bufs_.release();
    ::close(wakefd_);
}

void uring_backend::drain() noexcept {
    if (!enabled_ || in_flight_ == 0) return;  // nothing ever reached the kernel
    try {
        if (io_uring_sqe* sqe = get_sqe()) {
            io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
            sqe->user_data = tag_cancel;
            ++in_flight_;
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (in_flight_ > 0 && std::chrono::steady_clock::now() < deadline) {
            __kernel_timespec ts{0, 10'000'000};
            io_uring_cqe* cqe = nullptr;
            int r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
            if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY) return;
            reap();
        }
    } catch (...) {
    }
}

void uring_backend::ensure_enabled() {
    if (enabled_) return;
    if (starts_disabled_ &&
        ::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) < 0) {
        throw std::system_error(errno, std::generic_category(), "io_uring_register(ENABLE_RINGS)");
    }
    enabled_ = true;
    // Saves the kernel a file lookup per enter; registered per thread, so
    // only when one thread is all the ring will ever see.
    if (single_issuer_) ring_registered_ = io_uring_register_ring_fd(&ring_) == 1;
}

io_uring_sqe* uring_backend::get_sqe() {
    if (io_uring_sqe* sqe = io_uring_get_sqe(&ring_)) return sqe;
    // The SQ is full: hand it to the kernel now (rare: it holds sq_entries).
    ensure_enabled();
    if (io_uring_submit(&ring_) < 0) return nullptr;
    return io_uring_get_sqe(&ring_);
}

void uring_backend::arm_wake() {
    io_uring_sqe* sqe = get_sqe();
    if (!sqe) return;  // re-tried by the next wait
    io_uring_prep_read(sqe, wakefd_, &wake_buf_, sizeof wake_buf_, 0);
    sqe->user_data = tag_wake;
    ++in_flight_;
}

namespace {
std::size_t iov_bytes(const io_op& op) noexcept {
    std::size_t n = 0;
    for (int i = 0; i < op.iovcnt; ++i) n += op.iov[i].iov_len;
    return n;
}
}  // namespace

io_status uring_backend::submit(io_op& op) {
    if (op.flags & io_flag_try) {
        op.state = 0;
        op.result = cfg_.batch_try_sends && (op.code == io_opcode::send || op.code == io_opcode::sendto) &&
                            iov_bytes(op) < cfg_.direct_send_min
                        ? -EAGAIN
                        : do_syscall(op);
        return io_status::done;
    }
    // asyncio refuses a bad fd at add_reader time: so do we, not later.
    if (is_poll(op.code) && ::fcntl(op.fd, F_GETFD) < 0) {
        throw std::system_error(errno, std::generic_category(),
                                op.code == io_opcode::poll_read ? "add_reader" : "add_writer");
    }
    op.state = st_active;
    op.next = nullptr;
    if (op.code == io_opcode::connect) {
        // As CPython's sock_connect: connect() at once, so that its own
        // error (a Unix path nobody listens on) is told from a later one;
        // only EINPROGRESS waits, for writability, then SO_ERROR says.
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
        arm_poll(op);
        return io_status::pending;
    }
    arm(op);
    return io_status::pending;
}

void uring_backend::cancel(io_op& op) noexcept {
    if (!(op.state & st_active) || (op.state & st_cancel)) return;
    op.state |= st_cancel;
    // In the backlog, flush_backlog finishes it; with a completion queued
    // (a poll between its CQE and its re-arm), deliver does.
    if ((op.state & st_waiting) || !(op.state & st_kernel)) return;
    queue_cancel(reinterpret_cast<std::uintptr_t>(&op) | ((op.state & st_polling) ? tag_poll : tag_op));
}

void uring_backend::queue_cancel(std::uint64_t user_data) {
    io_uring_sqe* sqe = nullptr;
    try {
        sqe = get_sqe();
    } catch (...) {
    }
    if (!sqe) {
        cancel_backlog_.push_back(user_data);
        return;
    }
    io_uring_prep_cancel64(sqe, user_data, 0);
    sqe->user_data = tag_cancel;
    ++in_flight_;
}

void uring_backend::flush_backlog() {
    while (!backlog_.empty()) {
        io_op& op = *backlog_.front();
        if (op.state & st_cancel) {
            backlog_.pop_front();
            op.state &= static_cast<std::uint8_t>(~(st_waiting | st_polling));
            finish(op, -ECANCELED);
            continue;
        }
        io_uring_sqe* sqe = get_sqe();
        if (!sqe) break;
        backlog_.pop_front();
        op.state &= static_cast<std::uint8_t>(~st_waiting);
        if (op.state & st_polling) {
            prep_poll(op, sqe);
        } else {
            prep(op, sqe);
        }
    }
    while (!cancel_backlog_.empty()) {
        io_uring_sqe* sqe = get_sqe();
        if (!sqe) break;
        io_uring_prep_cancel64(sqe, cancel_backlog_.back(), 0);
        sqe->user_data = tag_cancel;
        ++in_flight_;
        cancel_backlog_.pop_back();
    }
}

void uring_backend::wait(std::optional<std::chrono::nanoseconds> timeout) {
    // Tried receives' injected EAGAINs owe nothing here: a poll follows.
    if (fault_injector* f = active_faults()) f->owed_edges.clear();
    if (!backlog_.empty() || !cancel_backlog_.empty()) flush_backlog();
    const unsigned kflags = __atomic_load_n(ring_.sq.kflags, __ATOMIC_RELAXED);
    const bool now = io_uring_cq_ready(&ring_) > 0 || (timeout && timeout->count() <= 0);
    int r = 0;
    if (now) {
        // Enter only if it would do something: submit, or run the
        // completion work the kernel flagged.
        if (io_uring_sq_ready(&ring_) > 0 || (kflags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW))) {
            ensure_enabled();
            r = io_uring_submit_and_get_events(&ring_);
        }
    } else {
        ensure_enabled();
        io_uring_cqe* cqe = nullptr;
        if (timeout) {
            // The loop's deadlines are saturated; a day is plenty per wait.
            constexpr long long day = 86400LL * 1'000'000'000LL;
            const long long ns = timeout->count() > day ? day : timeout->count();
            __kernel_timespec ts{ns / 1'000'000'000LL, ns % 1'000'000'000LL};
            r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
        } else {
            r = io_uring_submit_and_wait(&ring_, 1);
        }
    }
    // From another thread: SINGLE_ISSUER says EEXIST, and the ring fd,
    // registered for the owner thread only, EBADF.
    if (r == -EEXIST || (r == -EBADF && ring_registered_)) {
        throw runtime_error(
            "io_uring: this loop's ring belongs to the thread that first ran it (SINGLE_ISSUER); "
            "run the loop on that thread, or choose the epoll backend");
    }
    if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
        throw std::system_error(-r, std::generic_category(), "io_uring_enter");
    }
    reap();
}

void uring_backend::reap() {
    unsigned head;
    unsigned n = 0;
    io_uring_cqe* cqe;
    struct advance {
        io_uring* ring;
        unsigned& n;
        ~advance() { io_uring_cq_advance(ring, n); }
    } guard{&ring_, n};
    io_uring_for_each_cqe(&ring_, head, cqe) {
        ++n;
        handle(cqe->user_data, cqe->res, cqe->flags);
    }
}

void uring_backend::handle(std::uint64_t ud, int res, unsigned flags) {
    if (ud == LIBURING_UDATA_TIMEOUT) return;  // liburing's own, without EXT_ARG
    const bool last = !(flags & IORING_CQE_F_MORE);
    if (last) --in_flight_;
    const std::uint64_t tag = ud & tag_mask;
    if (tag == tag_cancel) return;
    if (tag == tag_wake) {
        if (!closing_ && res >= 0) arm_wake();
        return;
    }
    if (closing_) return;  // the drain: the ops may be gone, only count
    io_op& op = *reinterpret_cast<io_op*>(ud & ~tag_mask);
    if (last) {
        op.state &= static_cast<std::uint8_t>(~st_kernel);
        --in_kernel_;
    }
    if (tag == tag_poll) {
        // The readiness the kernel wanted before retrying: retry now (a
        // connect in progress: its outcome).
        op.state &= static_cast<std::uint8_t>(~st_polling);
        if (op.state & st_cancel) {
            finish(op, -ECANCELED);
        } else if (op.code == io_opcode::connect) {
            int err = 0;
            socklen_t len = sizeof err;
            if (::getsockopt(op.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
            finish(op, res < 0 ? res : -err);
        } else {
            arm(op);
        }
        return;
    }
    on_cqe(op, res, flags, last);
}

void uring_backend::on_cqe(io_op& op, int res, unsigned flags, bool last) {
    const bool has_buf = (flags & IORING_CQE_F_BUFFER) != 0;
    const auto bid = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    const bool cancelled = (op.state & st_cancel) != 0;
    switch (op.code) {
    case io_opcode::poll_read:
    case io_opcode::poll_write:
        if (res >= 0 && !cancelled) {
            push({&op, 0, 0, static_cast<std::uint8_t>(c_more | c_poll)});
        } else {
            finish(op, res >= 0 ? -ECANCELED : res);
        }
        return;
    case io_opcode::recv_stream:
    case io_opcode::accept:
        if (res > 0 || (res == 0 && op.code == io_opcode::accept)) {
            push({&op, res, bid, static_cast<std::uint8_t>(c_more | (has_buf ? c_buffer : 0))});
            if (last) continue_multishot(op);
            return;
        }
        if (has_buf) bufs_.recycle(bid);
        if (res == -ENOBUFS && op.code == io_opcode::recv_stream) {
            bufs_.grow();  // at the cap, recycling alone will do
            if (last) continue_multishot(op);
            return;
        }
        if (res == -EINTR || (op.code == io_opcode::accept && (res == -ECONNABORTED || res == -EPROTO))) {
            // Interrupted (nothing was transferred), or the peer gave up:
            // go on, as asyncio retries InterruptedError.
            if (last) continue_multishot(op);
            return;
        }
        if (res == -EAGAIN && last && !cancelled) {
            arm_poll(op);
            return;
        }
        if (!last) {
            push({&op, res, 0, c_more});  // an error the operation goes on after
            return;
        }
        // EOF, an error, or -ECANCELED (also for an error that beat the
        // cancel: a server's close shuts its socket down, then cancels).
        finish(op, cancelled && res < 0 ? -ECANCELED : res);
        return;
    default:
        break;
    }
    if (res == -EAGAIN && !cancelled) {
        arm_poll(op);
        return;
    }
    if (res == -EINTR && !cancelled) {
        // io_uring/net.c turns an interrupted attempt (-ERESTARTSYS) into
        // -EINTR, having transferred nothing: submit it again, as asyncio
        // retries InterruptedError (it is not the transport's error).
        arm(op);
        return;
    }
    if (op.code == io_opcode::recvfrom && res >= 0 && (op.state & st_slot)) {
        op.addrlen = slot_of(op)->m.msg_namelen;
    }
    finish(op, cancelled && res < 0 ? -ECANCELED : res);
}

// A multishot operation's SQE ended while it still goes on for the issuer.
void uring_backend::continue_multishot(io_op& op) {
    if (op.state & st_cancel) {
        finish(op, -ECANCELED);
    } else {
        arm(op);
    }
}

void uring_backend::finish(io_op& op, long res) {
    release_slot(op);
    push({&op, static_cast<std::int32_t>(res), 0, 0});
}

void uring_backend::deliver(bool run) {
    const completion c = done_.pop();
    io_op& op = *c.op;
    struct give_back {
        buffer_ring* bufs;
        const completion& c;
        ~give_back() {
            if (c.flags & c_buffer) bufs->recycle(c.bid);
        }
    } guard{&bufs_, c};
    io_result r;
    r.res = c.res;
    r.more = (c.flags & c_more) != 0;
    if (c.flags & c_buffer) r.data = bufs_.addr(c.bid);
    // A receive paused (cancelled) after the kernel read the peer's EOF:
    // bytes delivered after the cancel are held by the issuer, and the EOF
    // must not overtake them. It is not lost: a stream's EOF is read again
    // by the next receive.
    if (!r.more && r.res == 0 && op.code == io_opcode::recv_stream && (op.state & st_cancel)) r.res = -ECANCELED;
    if (!r.more) op.state = 0;  // finished: the issuer's again
    if (!run) return;
    if (c.flags & c_poll) {
        if (op.state & st_cancel) {
            after_poll(op);
            return;
        }
        try {
            op.on_complete(op, r);
        } catch (...) {
            after_poll(op);
            throw;
        }
        after_poll(op);
        return;
    }
    op.on_complete(op, r);
}

// A readiness poll's callback ran: poll again (it completes at once while
// the fd stays ready: level semantics), or finish if cancelled.
void uring_backend::after_poll(io_op& op) {
    if (!(op.state & st_active)) return;
    if (op.state & st_cancel) {
        finish(op, -ECANCELED);
    } else {
        arm(op);
    }
}

long uring_backend::do_syscall(io_op& op) noexcept {
    // io_flag_try is for one-shot sends and receives only.
    return op.code == io_opcode::recv_stream ? -EINVAL : try_transfer(op);
}
}  // namespace uring

std::unique_ptr<io_backend> make_io_uring_backend(ready_ring& ready, const uring_config& config) {
    return std::make_unique<uring::uring_backend>(ready, config);
}

}  // namespace pyco::detail

#else  // !PYCO_HAVE_LIBURING

namespace pyco::detail {

std::unique_ptr<io_backend> make_io_uring_backend(ready_ring&, const uring_config&) {
    throw runtime_error("io_uring is unavailable: pyco was built without liburing (Debian: liburing-dev)");
}

}  // namespace pyco::detail

#endif

namespace pyco::detail {

const std::string& io_uring_unavailable_reason() {
    static const std::string reason = [] {
        try {
            ready_ring ready;
            uring_config small;
            small.sq_entries = 8;
            small.buffers = 1;
            small.max_buffers = 1;
            small.buffer_size = 4096;
            (void)make_io_uring_backend(ready, small);
            return std::string();
        } catch (const std::exception& e) {
            return std::string(e.what());
        }
    }();
    return reason;
}

}  // namespace pyco::detail
