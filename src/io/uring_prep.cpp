// The io_uring backend's SQEs (uring_backend_impl.hpp): what each
// operation asks of the kernel, the msghdr slots of sendmsg/recvmsg, and
// fault injection where an SQE would be written (detail/faults.hpp).
#include <pyco/detail/io_backend.hpp>

#if PYCO_HAVE_LIBURING

#include <fcntl.h>
#include <liburing.h>
#include <poll.h>

#include <cerrno>

#include <pyco/detail/faults.hpp>

#include "try_transfer.hpp"
#include "uring_backend_impl.hpp"

namespace pyco::detail::uring {

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

}  // namespace pyco::detail::uring

#endif  // PYCO_HAVE_LIBURING
