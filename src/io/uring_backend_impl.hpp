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
//     the next enter. A send of direct_send_min bytes or more (64 KiB) is
//     tried at once instead, as on epoll: left for the next enter it would
//     sit over the transport's high-water mark and make drain() wait.
//     Tried receives are a direct syscall.
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
//
// Private to src/io: the backend's class, shared by uring_backend.cpp (the
// ring's life, submission, completions) and uring_prep.cpp (each
// operation's SQE, and the fault hooks where SQEs are written).
#pragma once

#include <liburing.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <pyco/detail/io_backend.hpp>
#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>

#include "uring_buffers.hpp"

namespace pyco::detail::uring {

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

// A msghdr that lives as long as the op that names it (sendmsg of several
// buffers, datagrams).
struct msg_slot {
    msghdr m;
    iovec iov;
};

inline bool is_poll(io_opcode c) noexcept { return c == io_opcode::poll_read || c == io_opcode::poll_write; }
inline bool is_write(io_opcode c) noexcept {
    return c == io_opcode::send || c == io_opcode::sendto || c == io_opcode::connect ||
           c == io_opcode::poll_write || c == io_opcode::write_at;
}
inline unsigned clamp_len(std::size_t n) noexcept { return n > INT_MAX ? INT_MAX : static_cast<unsigned>(n); }

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

[[noreturn]] inline void unavailable(const std::string& why) { throw runtime_error("io_uring is unavailable: " + why); }

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

}  // namespace pyco::detail::uring
