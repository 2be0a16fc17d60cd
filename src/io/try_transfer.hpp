// src/io/try_transfer.hpp — one non-blocking attempt at the transfer an
// io_op describes (recv/recv_stream, send, sendto, recvfrom), shared by the
// backends: epoll performs every transfer this way, io_uring only the ones
// flagged io_flag_try. Returns the bytes, or -errno (EWOULDBLOCK as
// -EAGAIN); EINTR is retried. Sends never raise SIGPIPE (MSG_NOSIGNAL).
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

#include <pyco/detail/io_backend.hpp>

namespace pyco::detail {

inline bool is_transfer(io_opcode c) noexcept {
    return c == io_opcode::recv || c == io_opcode::recv_stream || c == io_opcode::send ||
           c == io_opcode::sendto || c == io_opcode::recvfrom;
}

inline long try_transfer(io_op& op) noexcept {
    const bool pipe = (op.flags & io_flag_pipe) != 0;
    for (;;) {
        ssize_t n = -1;
        switch (op.code) {
        case io_opcode::recv:
        case io_opcode::recv_stream:
            n = pipe ? ::read(op.fd, op.buf, op.len) : ::recv(op.fd, op.buf, op.len, 0);
            break;
        case io_opcode::send:
        case io_opcode::sendto:
            if (pipe) {
                n = ::writev(op.fd, op.iov, op.iovcnt);
            } else {
                msghdr m{};
                if (op.code == io_opcode::sendto && op.addr) {
                    m.msg_name = op.addr;
                    m.msg_namelen = op.addrlen;
                }
                m.msg_iov = const_cast<iovec*>(op.iov);
                m.msg_iovlen = static_cast<std::size_t>(op.iovcnt);
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
