// The io_uring backend: operations submitted to the kernel, one
// io_uring_enter per loop iteration.
//
// Why it is shaped this way (the published io_uring backends that lost to
// epoll made one syscall per operation and re-armed every receive):
//   - submit() only writes an SQE; wait() makes the iteration's single
//     io_uring_enter, which submits everything queued and waits. With a zero
//     timeout, nothing queued and no task work flagged, it makes none.
//   - The ring is SINGLE_ISSUER + DEFER_TASKRUN where the kernel takes them
//     (completion work runs inside that one enter), else COOP_TASKRUN +
//     TASKRUN_FLAG, else plain. TASKRUN_FLAG tells a zero-timeout wait
//     whether entering would find anything.
//   - recv_stream is a multishot receive into the loop's provided-buffer
//     ring (registered by hand: liburing 2.3 has no io_uring_setup_buf_ring);
//     accept is multishot. Both are re-armed, invisibly to the issuer, when a
//     CQE comes without IORING_CQE_F_MORE. A receive that found the ring
//     empty (ENOBUFS) lost nothing: the bytes wait in the socket. The ring
//     grows (up to max_buffers) and the receive is re-armed; the re-arm
//     reaches the kernel with the next enter, after this iteration's
//     callbacks gave their buffers back.
//   - io_flag_try sends answer -EAGAIN without a syscall (batch_try_sends):
//     the transport copies the bytes and submits them, and they leave with
//     the next enter. Tried receives are a direct syscall.
//   - add_reader/add_writer are one-shot polls re-armed after each callback.
//     The kernel's multishot poll reports edges (wake-ups) only, and the seam
//     promises level semantics: a re-armed one-shot poll completes at once,
//     in the same enter, while the fd stays ready.
//
// Invariants:
//   - An op is the backend's from submit() until its final completion is
//     delivered (more == false): the issuer keeps it and its buffers alive.
//     st_kernel marks an SQE of it that the kernel may still complete; the
//     backend never finishes an op while st_kernel is set (the kernel owns
//     its buffer until that SQE's own last CQE, even after a cancel).
//   - Every CQE of an op becomes one `completion`, delivered in order from
//     the loop's ready phase (never inside submit, cancel or wait). A
//     provided buffer goes back to the ring after its callback returned (the
//     seam's view is valid during the callback only), even if it threw.
//   - in_kernel_ counts ops with st_kernel (pending() adds the backlog);
//     in_flight_ counts every SQE whose last CQE is not reaped, the backend's
//     own (the wake-up read, cancels) included, for the destructor's drain.
//
// Cancellation: cancel() submits IORING_OP_ASYNC_CANCEL on the op's current
// user_data; the op finishes at its own last CQE: -ECANCELED if it stopped
// before doing anything, else its result. Bytes a cancelled receive got
// first are delivered (more == true) before that final completion. An op
// not in the kernel (in the backlog, or between a poll's CQE and its
// re-arm) is finished by the backend with -ECANCELED. A cancel SQE targets
// user_data, and an op may be re-submitted after its final completion: SQEs
// are processed in order, so a stale cancel lands before the op's new SQE.
//
// Thread rule: as the seam's. The ring is made disabled and enabled by the
// first io_uring_enter, so SINGLE_ISSUER binds it to the thread that first
// runs the loop (or submits past a full SQ); running it from another thread
// later is refused with a clear error. wakeup() writes an eventfd (async-
// signal-safe) that a read SQE in the ring watches; the read is the
// backend's own, not counted by pending(), so an idle loop sleeps.
//
// Fault injection (detail/faults.hpp): where arm() would write an SQE for a
// transfer or an accept, the loop's injector may answer in the kernel's
// place with the CQE it could have given (EAGAIN, EINTR, or a fatal error), before
// anything was transferred; on_cqe handles it as it would the kernel's.
//
// The destructor cancels everything still in the kernel and waits (bounded)
// for each last CQE, so the kernel writes into nothing after it returns.
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
#include "uring_buffers.hpp"

namespace pyco::detail {

namespace {

// user_data: an io_op's address (8-aligned) and a tag in the low bits.
enum : std::uint64_t { tag_op = 0, tag_poll = 1, tag_cancel = 2, tag_wake = 3, tag_mask = 7 };

enum op_state : std::uint8_t {
    st_active = 1,   // submitted; its final completion not yet delivered
    st_cancel = 2,   // cancel() was called
    st_kernel = 4,   // an SQE of it is queued or in the kernel
    st_waiting = 8,  // in the backlog, waiting for room in the SQ
    st_polling = 16, // its SQE is a readiness poll (the kernel said EAGAIN)
    st_slot = 32,    // op.next holds its msghdr slot
};

using namespace uring;  // the FIFO, the buffer ring, completion_flags

// A msghdr that lives as long as the op that names it (sendmsg of several
// buffers, datagrams).
struct msg_slot {
    msghdr m;
    iovec iov;
};

bool is_poll(io_opcode c) noexcept { return c == io_opcode::poll_read || c == io_opcode::poll_write; }
bool is_write(io_opcode c) noexcept {
    return c == io_opcode::send || c == io_opcode::sendto || c == io_opcode::connect ||
           c == io_opcode::poll_write || c == io_opcode::write_at;
}
unsigned clamp_len(std::size_t n) noexcept { return n > INT_MAX ? INT_MAX : static_cast<unsigned>(n); }

struct opcode_name {
    int op;
    const char* name;
};
// Every opcode used, and what each is for. SEND_ZC is not used: it came
// with Linux 6.0 as multishot receive did, and the probe has no bit for a
// flag, so it stands for that.
constexpr opcode_name needed_opcodes[] = {
    {IORING_OP_POLL_ADD, "IORING_OP_POLL_ADD"},     {IORING_OP_ASYNC_CANCEL, "IORING_OP_ASYNC_CANCEL"},
    {IORING_OP_READ, "IORING_OP_READ"},             {IORING_OP_WRITEV, "IORING_OP_WRITEV"},
    {IORING_OP_RECV, "IORING_OP_RECV"},             {IORING_OP_SEND, "IORING_OP_SEND"},
    {IORING_OP_SENDMSG, "IORING_OP_SENDMSG"},       {IORING_OP_RECVMSG, "IORING_OP_RECVMSG"},
    {IORING_OP_ACCEPT, "IORING_OP_ACCEPT"},         {IORING_OP_CONNECT, "IORING_OP_CONNECT"},
    {IORING_OP_FSYNC, "IORING_OP_FSYNC"},
    {IORING_OP_SEND_ZC, "IORING_OP_SEND_ZC (Linux 6.0, as multishot receive)"},
};

[[noreturn]] void unavailable(const std::string& why) { throw runtime_error("io_uring is unavailable: " + why); }

class uring_backend final : public io_backend {
public:
    uring_backend(ready_ring& ready, const uring_config& cfg);
    ~uring_backend() override;

    const char* name() const noexcept override { return "io_uring"; }
    bool supports(io_opcode) const noexcept override { return true; }
    std::size_t pending() const noexcept override { return in_kernel_ + backlog_.size(); }

    io_status submit(io_op& op) override;
    void cancel(io_op& op) noexcept override;
    void close_fd(int fd) noexcept override {
        if (fd >= 0) ::close(fd);
    }
    void wait(std::optional<std::chrono::nanoseconds> timeout) override;
    void wakeup() noexcept override {
        std::uint64_t one = 1;
        [[maybe_unused]] auto r = ::write(wakefd_, &one, sizeof one);
    }

private:
    io_uring_sqe* get_sqe();
    void ensure_enabled();
    void arm(io_op& op);
    void shorten_sqe(io_op& op, io_uring_sqe* sqe) noexcept;
    void arm_poll(io_op& op);
    void prep(io_op& op, io_uring_sqe* sqe);
    void prep_poll(io_op& op, io_uring_sqe* sqe) noexcept;
    void arm_wake();
    void queue_cancel(std::uint64_t user_data);
    void flush_backlog();
    void reap();
    void handle(std::uint64_t ud, int res, unsigned flags);
    void on_cqe(io_op& op, int res, unsigned flags, bool last);
    void continue_multishot(io_op& op);
    void finish(io_op& op, long res);
    void push(const completion& c) {
        done_.push(c);
        ready_->push({&deliver_entry, this, nullptr});
    }
    static void deliver_entry(void* self, void*, bool run) { static_cast<uring_backend*>(self)->deliver(run); }
    void deliver(bool run);
    void after_poll(io_op& op);
    msghdr* msg_for(io_op& op);
    void release_slot(io_op& op) noexcept;
    static msg_slot* slot_of(io_op& op) noexcept { return reinterpret_cast<msg_slot*>(op.next); }
    static long do_syscall(io_op& op) noexcept;
    void drain() noexcept;

    io_uring ring_{};
    ready_ring* ready_;
    uring_config cfg_;
    buffer_ring bufs_;
    completion_fifo done_;
    std::deque<io_op*> backlog_;            // ops waiting for room in the SQ
    std::vector<std::uint64_t> cancel_backlog_;
    std::vector<std::unique_ptr<msg_slot>> slots_;
    std::vector<msg_slot*> free_slots_;
    std::size_t in_kernel_ = 0;
    std::size_t in_flight_ = 0;
    std::uint64_t wake_buf_ = 0;
    int wakefd_ = -1;
    bool enabled_ = false;
    bool starts_disabled_ = false;
    bool single_issuer_ = false;
    bool ring_registered_ = false;
    bool closing_ = false;
};

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

io_status uring_backend::submit(io_op& op) {
    if (op.flags & io_flag_try) {
        op.state = 0;
        op.result = cfg_.batch_try_sends && (op.code == io_opcode::send || op.code == io_opcode::sendto)
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

// The CQE the injector gives instead of arming op (0: none).
int uring_fault(io_op& op, fault_injector& f) noexcept {
    std::uint32_t allowed = 0;
    switch (op.code) {
    case io_opcode::recv:
    case io_opcode::recv_stream:
        allowed = fk_eagain | fk_eintr | fk_enomem;
        if (!(op.flags & io_flag_pipe)) allowed |= fk_reset;
        break;
    case io_opcode::send:
        allowed = fk_eagain | fk_eintr | fk_enomem | fk_enobufs | fk_epipe;
        if (may_send_short(op)) allowed |= fk_short;
        if (!(op.flags & io_flag_pipe)) allowed |= fk_reset;
        break;
    case io_opcode::recvfrom:
        allowed = fk_eagain | fk_eintr | fk_enomem;
        break;
    case io_opcode::sendto:
        allowed = fk_eagain | fk_eintr | fk_enomem | fk_enobufs;
        break;
    case io_opcode::accept:
        allowed = fk_eagain | fk_eintr | fk_emfile | fk_enobufs | fk_enomem;
        ++f.counts().accept_calls;
        break;
    default:
        return 0;
    }
    const std::uint32_t kind = f.pick(allowed);
    if (kind && f.trace) std::fprintf(stderr, "  on io_uring op %d fd %d\n", static_cast<int>(op.code), op.fd);
    switch (kind) {
    case fk_eagain: return -EAGAIN;
    case fk_eintr: return -EINTR;
    case fk_short: return 1;  // arm() shortens the SQE
    case fk_reset: return -ECONNRESET;
    case fk_epipe: return -EPIPE;
    case fk_enobufs: return -ENOBUFS;
    case fk_enomem: return -ENOMEM;
    case fk_emfile: return -EMFILE;
    default: return 0;
    }
}

void uring_backend::arm(io_op& op) {
    bool shorten = false;
    if (fault_injector* f = active_faults()) {
        const int res = uring_fault(op, *f);
        if (res < 0) {
            on_cqe(op, res, 0, true);
            return;
        }
        shorten = res == 1;
    }
    io_uring_sqe* sqe = get_sqe();
    if (!sqe) {
        backlog_.push_back(&op);
        op.state |= st_waiting;
        return;
    }
    prep(op, sqe);
    if (shorten) shorten_sqe(op, sqe);
}

// An injected short send, as the kernel makes one: a prefix (part of the
// only iovec, or the first of several). Receives are not shortened here:
// the transport's go into provided buffers, and a one-shot receive of one
// small message gets it whole from Linux (see try_transfer.hpp).
void uring_backend::shorten_sqe(io_op& op, io_uring_sqe* sqe) noexcept {
    fault_injector* f = active_faults();
    if (!f) return;
    const bool pipe = (op.flags & io_flag_pipe) != 0;
    if (op.code == io_opcode::send && !pipe && op.iovcnt == 1) {
        if (sqe->len > 1) sqe->len = static_cast<unsigned>(1 + f->below(sqe->len - 1));
    } else if (op.code == io_opcode::send && op.iovcnt > 1) {
        if (pipe) {
            sqe->len = 1;  // writev's vector count
        } else {
            slot_of(op)->m.msg_iovlen = 1;
        }
    }
}

void uring_backend::arm_poll(io_op& op) {
    op.state |= st_polling;
    io_uring_sqe* sqe = get_sqe();
    if (!sqe) {
        backlog_.push_back(&op);
        op.state |= st_waiting;
        return;
    }
    prep_poll(op, sqe);
}

void uring_backend::prep_poll(io_op& op, io_uring_sqe* sqe) noexcept {
    io_uring_prep_poll_add(sqe, op.fd, is_write(op.code) ? POLLOUT : POLLIN);
    sqe->user_data = reinterpret_cast<std::uintptr_t>(&op) | tag_poll;
    op.state |= st_kernel | st_polling;
    ++in_kernel_;
    ++in_flight_;
}

void uring_backend::prep(io_op& op, io_uring_sqe* sqe) {
    const bool pipe = (op.flags & io_flag_pipe) != 0;
    constexpr auto here = static_cast<std::uint64_t>(-1);  // a pipe's "current position"
    switch (op.code) {
    case io_opcode::poll_read:
        io_uring_prep_poll_add(sqe, op.fd, POLLIN);
        break;
    case io_opcode::poll_write:
        io_uring_prep_poll_add(sqe, op.fd, POLLOUT);
        break;
    case io_opcode::recv:
        if (pipe) {
            io_uring_prep_read(sqe, op.fd, op.buf, clamp_len(op.len), here);
        } else {
            io_uring_prep_recv(sqe, op.fd, op.buf, clamp_len(op.len), 0);
        }
        break;
    case io_opcode::recv_stream:
        // A pipe has no multishot read on 6.1-era kernels: one read at a
        // time, re-armed after each (continue_multishot) like a multishot
        // receive that ended.
        if (pipe) {
            io_uring_prep_read(sqe, op.fd, nullptr, bufs_.buffer_size(), here);
        } else {
            io_uring_prep_recv_multishot(sqe, op.fd, nullptr, 0, 0);
        }
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = 0;
        break;
    case io_opcode::send:
        if (pipe) {
            io_uring_prep_writev(sqe, op.fd, op.iov, static_cast<unsigned>(op.iovcnt), here);
        } else if (op.iovcnt == 1) {
            io_uring_prep_send(sqe, op.fd, op.iov[0].iov_base, clamp_len(op.iov[0].iov_len), MSG_NOSIGNAL);
        } else {
            io_uring_prep_sendmsg(sqe, op.fd, msg_for(op), MSG_NOSIGNAL);
        }
        break;
    case io_opcode::accept:
        io_uring_prep_multishot_accept(sqe, op.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        break;
    case io_opcode::connect:
        io_uring_prep_connect(sqe, op.fd, op.addr, op.addrlen);
        break;
    case io_opcode::recvfrom:
        io_uring_prep_recvmsg(sqe, op.fd, msg_for(op), 0);
        break;
    case io_opcode::sendto:
        io_uring_prep_sendmsg(sqe, op.fd, msg_for(op), MSG_NOSIGNAL);
        break;
    case io_opcode::read_at:
        io_uring_prep_read(sqe, op.fd, op.buf, clamp_len(op.len), op.offset);
        break;
    case io_opcode::write_at:
        io_uring_prep_writev(sqe, op.fd, op.iov, static_cast<unsigned>(op.iovcnt), op.offset);
        break;
    case io_opcode::fsync:
        io_uring_prep_fsync(sqe, op.fd, 0);
        break;
    }
    sqe->user_data = reinterpret_cast<std::uintptr_t>(&op) | tag_op;
    op.state |= st_kernel;
    op.state &= static_cast<std::uint8_t>(~st_polling);
    ++in_kernel_;
    ++in_flight_;
}

msghdr* uring_backend::msg_for(io_op& op) {
    msg_slot* s;
    if (op.state & st_slot) {
        s = slot_of(op);
    } else {
        if (free_slots_.empty()) {
            slots_.push_back(std::make_unique<msg_slot>());
            free_slots_.reserve(slots_.size());  // release_slot never allocates
            free_slots_.push_back(slots_.back().get());
        }
        s = free_slots_.back();
        free_slots_.pop_back();
        op.next = reinterpret_cast<io_op*>(s);
        op.state |= st_slot;
    }
    s->m = msghdr{};
    s->m.msg_name = op.addr;
    s->m.msg_namelen = op.addr ? op.addrlen : 0;
    if (op.code == io_opcode::recvfrom) {
        s->iov = {op.buf, op.len};
        s->m.msg_iov = &s->iov;
        s->m.msg_iovlen = 1;
    } else {
        s->m.msg_iov = const_cast<iovec*>(op.iov);
        s->m.msg_iovlen = static_cast<std::size_t>(op.iovcnt);
    }
    return &s->m;
}

void uring_backend::release_slot(io_op& op) noexcept {
    if (!(op.state & st_slot)) return;
    free_slots_.push_back(slot_of(op));  // within the reserve
    op.next = nullptr;
    op.state &= static_cast<std::uint8_t>(~st_slot);
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

}  // namespace

std::unique_ptr<io_backend> make_io_uring_backend(ready_ring& ready, const uring_config& config) {
    return std::make_unique<uring_backend>(ready, config);
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
