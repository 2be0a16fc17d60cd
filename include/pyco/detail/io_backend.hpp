// pyco/detail/io_backend.hpp — the seam between the loop and the kernel.
//
// A backend performs *operations* on file descriptors — receive, send,
// accept, connect, datagrams, pipe reads/writes, and readiness waits for
// add_reader/add_writer — and reports each one's result. It does not merely
// report readiness: io_uring does the I/O itself, and behind a readiness seam
// it would be reduced to a poller. epoll implements the operations the way
// Asio's reactor, mio and uvloop do (try the syscall first; wait for
// readiness only on EAGAIN); io_uring submits them.
//
// The protocol of one operation (an io_op, owned by its issuer):
//   - submit(op) either completes at once — it returns io_status::done with
//     the result in op.result, and no callback will come — or returns
//     io_status::pending, after which op.on_complete is called from the
//     loop's ready phase (never from inside submit, cancel or wait).
//   - A multishot operation (recv_stream, accept, poll_*) completes many
//     times: each completion but the last has `more` set. A one-shot one
//     completes once, with more == false.
//   - An operation is *finished* at its completion with more == false. Until
//     then the op, and every buffer it names, belongs to the backend: the
//     issuer must keep them alive and unchanged (the kernel may be writing
//     into them: io_uring owns a buffer until the operation's own completion,
//     even after a cancel).
//   - cancel(op) asks a pending operation to stop. It never completes the
//     operation inline: a final completion still comes (res == -ECANCELED if
//     it stopped before doing anything). Completions after a cancel may still
//     carry data the kernel had already received; the issuer must take it, so
//     a cancelled or paused receive loses no byte.
//   - The results: res >= 0 is the syscall's result (bytes, or the accepted
//     fd, which the issuer then owns), res < 0 is -errno.
//
// Receive buffers: recv and recvfrom read into the buffer the op names.
// recv_stream lets the backend choose: epoll asks the issuer's get_buffer
// for room before each read (so a buffered_protocol gets bytes in place);
// io_uring reads into a provided-buffer ring and hands a view of it (valid
// during the callback only). Either way the completion's `data` says where
// the bytes are.
//
// Thread rule: everything here runs on the loop's thread, except wakeup(),
// which any thread and a signal handler may call.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

namespace pyco::detail {

class ready_ring;

enum class io_opcode : std::uint8_t {
    poll_read,    // multishot, level-triggered readiness (add_reader)
    poll_write,   // multishot, level-triggered readiness (add_writer)
    recv,         // one-shot, into buf/len (recv(2), or read(2) with io_flag_pipe)
    recv_stream,  // multishot: every chunk until EOF (res == 0) or an error
    send,         // one-shot, from iov/iovcnt (sendmsg(2), or writev(2) with io_flag_pipe)
    accept,       // multishot: one completion per accepted socket
    connect,      // one-shot, to addr/addrlen
    recvfrom,     // one-shot datagram into buf/len; the sender into addr/addrlen
    sendto,       // one-shot datagram from iov/iovcnt to addr/addrlen
    // Regular files (pyco::open_file). Only a backend whose supports() says
    // so takes them (io_uring); elsewhere the file layer runs them on the
    // default executor, and submit() completes them with -EOPNOTSUPP.
    read_at,      // one-shot pread(2) into buf/len at offset
    write_at,     // one-shot pwritev(2) from iov/iovcnt at offset
    fsync,        // one-shot fsync(2)
};

enum io_flags : std::uint8_t {
    io_flag_pipe = 1,    // a pipe or tty, not a socket: read(2)/writev(2)
    io_flag_stream = 2,  // a byte stream (TCP, Unix stream, pipe): a short read drained it
    // send/sendto/recv/recvfrom: do it now or fail with -EAGAIN; never park.
    // submit() then always returns io_status::done, and the buffers are free
    // again when it returns (a transport's first write tries the caller's
    // bytes in place this way, and copies only what the kernel did not take).
    io_flag_try = 4,
};

enum class io_status : std::uint8_t { pending, done };

struct io_result {
    long res = 0;               // >= 0: bytes or fd; < 0: -errno
    bool more = false;          // a multishot operation goes on
    const std::byte* data = nullptr;  // recv_stream: where the res bytes are
};

struct io_op {
    using callback = void (*)(io_op& op, const io_result& r);

    callback on_complete = nullptr;
    void* user = nullptr;  // the issuer's context
    int fd = -1;
    io_opcode code = io_opcode::recv;
    std::uint8_t flags = 0;

    // Arguments (which ones depends on code).
    std::byte* buf = nullptr;
    std::size_t len = 0;
    const iovec* iov = nullptr;
    int iovcnt = 0;
    sockaddr* addr = nullptr;   // connect/sendto: the peer; recvfrom: filled in
    socklen_t addrlen = 0;      // recvfrom: in = room, out = size
    std::uint64_t offset = 0;   // read_at/write_at
    // recv_stream on a backend that reads into the issuer's memory: where
    // the next bytes go (an empty span pauses the operation until resumed).
    std::span<std::byte> (*get_buffer)(io_op& op) = nullptr;

    // An inline completion's result (submit returned io_status::done).
    long result = 0;

    // Backend-private.
    io_op* next = nullptr;
    std::uint8_t state = 0;
};

class io_backend {
public:
    virtual ~io_backend() = default;
    virtual const char* name() const noexcept = 0;
    // Whether submit() performs this opcode (file operations are optional).
    virtual bool supports(io_opcode code) const noexcept = 0;

    virtual io_status submit(io_op& op) = 0;
    virtual void cancel(io_op& op) noexcept = 0;
    // The issuer is done with fd (its operations are all finished): forget
    // it and close it.
    virtual void close_fd(int fd) noexcept = 0;

    // Wait until something completes, wakeup() is called, or the timeout
    // passes (nullopt: no timeout; zero: just look). Completions are queued
    // on the loop's ready ring (given at construction) and run in its ready
    // phase.
    virtual void wait(std::optional<std::chrono::nanoseconds> timeout) = 0;
    virtual void wakeup() noexcept = 0;
    // Operations pending in the kernel or parked on readiness, besides the
    // backend's own wake-up: with none, a zero-timeout wait can find nothing.
    virtual std::size_t pending() const noexcept = 0;
};

std::unique_ptr<io_backend> make_epoll_backend(ready_ring& ready);

// The io_uring backend's knobs; the defaults are what a loop gets (tests
// shrink the buffer ring to make it run out).
struct uring_config {
    unsigned sq_entries = 1024;
    unsigned buffer_size = 16 * 1024;  // each provided receive buffer
    unsigned buffers = 256;            // provided at first
    unsigned max_buffers = 4096;       // grown to on ENOBUFS (a power of two)
    // io_flag_try sends answer -EAGAIN without a syscall, so that the issuer
    // submits them and they go with the next io_uring_enter.
    bool batch_try_sends = true;
    // ... except a send of at least this many bytes, which is tried at once
    // as on epoll: it is worth its syscall, and a large write left to the
    // next enter sits in the transport's buffer, over its high-water mark,
    // making drain() wait a loop iteration for every such write.
    std::size_t direct_send_min = 64 * 1024;
};

// Throws std::runtime_error, saying why, where io_uring cannot be used
// (io_uring_setup's errno, a missing opcode, or no liburing at build time).
std::unique_ptr<io_backend> make_io_uring_backend(ready_ring& ready, const uring_config& config = {});
// Empty where make_io_uring_backend would work, else why not (probed once).
const std::string& io_uring_unavailable_reason();

}  // namespace pyco::detail
