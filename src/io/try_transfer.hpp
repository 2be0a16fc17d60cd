// src/io/try_transfer.hpp — one non-blocking attempt at the transfer an
// io_op describes (recv/recv_stream, send, sendto, recvfrom), shared by the
// backends: epoll performs every transfer this way, io_uring only the ones
// flagged io_flag_try. Returns the bytes, or -errno (EWOULDBLOCK as
// -EAGAIN); EINTR is retried. Sends never raise SIGPIPE (MSG_NOSIGNAL).
//
// Fault injection (detail/faults.hpp) happens here, where the syscall is
// made: one branch on g_faults_on when it is off.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

#include <pyco/detail/faults.hpp>
#include <pyco/detail/io_backend.hpp>

namespace pyco::detail {

inline bool is_transfer(io_opcode c) noexcept {
    return c == io_opcode::recv || c == io_opcode::recv_stream || c == io_opcode::send ||
           c == io_opcode::sendto || c == io_opcode::recvfrom;
}

// Whether Linux could take only part of this send: not of a small one (it
// fits the smallest send buffer a fresh TCP socket starts with, tcp_wmem's
// 16 KiB), which programs rely on being taken whole (or not at all).
inline bool may_send_short(const io_op& op) noexcept {
    std::size_t total = 0;
    for (int i = 0; i < op.iovcnt; ++i) total += op.iov[i].iov_len;
    return total > 16 * 1024;
}

// The fault a transfer gets instead of its syscall: 0 (none: do it), a
// -errno to return, or 1 to retry as after EINTR. A short transfer shrinks
// op.len (reads) or *send_max (writes).
inline long transfer_fault(io_op& op, fault_injector& f, std::size_t* send_max) noexcept {
    const bool datagram = op.code == io_opcode::sendto || op.code == io_opcode::recvfrom;
    const bool send = op.code == io_opcode::send || op.code == io_opcode::sendto;
    std::uint32_t allowed = fk_eagain | fk_eintr | fk_enomem;
    if (!datagram) allowed |= fk_reset;
    // Short: a transport's receive (its protocol takes any chunking, as
    // asyncio's) and sends. Not a one-shot receive: a program may rely on
    // one small send arriving whole, as Linux delivers it (one skb).
    if (op.code == io_opcode::recv_stream || (op.code == io_opcode::send && may_send_short(op))) allowed |= fk_short;
    if (send) allowed |= fk_enobufs;
    if (send && !datagram) allowed |= fk_epipe;
    if (op.flags & io_flag_pipe) allowed &= ~static_cast<std::uint32_t>(fk_reset);
    switch (f.pick(allowed)) {
    case fk_eagain:
        f.owed_edges.push_back(op.fd);
        return -EAGAIN;
    case fk_eintr:
        return 1;
    case fk_short:
        if (send) {
            if (op.iovcnt > 0 && op.iov[0].iov_len > 1) *send_max = 1 + f.below(op.iov[0].iov_len - 1);
        } else if (op.len > 1) {
            op.len = 1 + f.below(op.len - 1);
        }
        return 0;
    case fk_reset:
        return -ECONNRESET;
    case fk_epipe:
        return -EPIPE;
    case fk_enobufs:
        return -ENOBUFS;
    case fk_enomem:
        return -ENOMEM;
    default:
        return 0;
    }
}

inline long try_transfer(io_op& op) noexcept {
    const bool pipe = (op.flags & io_flag_pipe) != 0;
    for (;;) {
        std::size_t send_max = 0;  // a short write: the bytes of iov[0] to send
        if (fault_injector* f = active_faults()) {
            const long e = transfer_fault(op, *f, &send_max);
            if (e == 1) continue;
            if (e < 0) return e;
        }
        iovec one{};  // the short write's prefix
        const iovec* iov = op.iov;
        int iovcnt = op.iovcnt;
        if (send_max) {
            one.iov_base = op.iov[0].iov_base;
            one.iov_len = send_max;
            iov = &one;
            iovcnt = 1;
        }
        ssize_t n = -1;
        switch (op.code) {
        case io_opcode::recv:
        case io_opcode::recv_stream:
            n = pipe ? ::read(op.fd, op.buf, op.len) : ::recv(op.fd, op.buf, op.len, 0);
            break;
        case io_opcode::send:
        case io_opcode::sendto:
            if (pipe) {
                n = ::writev(op.fd, iov, iovcnt);
            } else {
                msghdr m{};
                if (op.code == io_opcode::sendto && op.addr) {
                    m.msg_name = op.addr;
                    m.msg_namelen = op.addrlen;
                }
                m.msg_iov = const_cast<iovec*>(iov);
                m.msg_iovlen = static_cast<std::size_t>(iovcnt);
                n = ::sendmsg(op.fd, &m, MSG_NOSIGNAL);
            }
            break;
        case io_opcode::recvfrom: {
            socklen_t len = op.addrlen;
            n = ::recvfrom(op.fd, op.buf, op.len, 0, op.addr, op.addr ? &len : nullptr);
            if (n >= 0) op.addrlen = len;
            break;
        }
        default:
            return -EINVAL;  // not a transfer
        }
        if (n >= 0) return static_cast<long>(n);
        if (errno == EINTR) continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

}  // namespace pyco::detail
