// Async files (pyco/file.hpp): open_file and async_file, on the backend's
// file operations (io_uring) or on the default executor (epoll), where a
// read is first tried from the page cache on the loop thread (read_cached).
//
// Ownership. The fd belongs to an fd_owner held by shared_ptr: the file's
// state holds one reference until close(), and every operation in flight
// holds another — an executor job on its thread, a backend request until
// its final completion — so an fd is never closed (and its number reused)
// while a thread or the kernel may still use it. A buffer belongs to its
// operation the same way: a read's buffer is the request's (or the job's)
// own string, a write's bytes a shared_ptr<const std::string>. The fast
// path's try is synchronous (RWF_NOWAIT never sleeps), so it needs no
// owner; a refused try hands its buffer to the job.
//
// Cancellation. Each user call (read, write, ...) runs its I/O in an inner
// task and awaits it through shield(): cancelling the caller only stops it
// waiting; the inner task, which owns the operation, runs to its end and
// moves the position by what it did. The inner task holds an op_token:
// while it lives the file counts the operation as in flight (close() waits
// for it) and, for read/write at the position, holds the position lock, so
// the next positional call starts where this one ended. The token is a
// parameter of the inner coroutine, so it goes whenever the frame goes,
// even for a task cancelled before it first ran (at loop shutdown).
//
// A job lets go of its fd_owner before it returns, so before its result is
// posted to the loop: when an operation's completion has run, nothing but
// the file holds the fd, and close() closes it there and then (and can
// raise its error). A backend request still in flight when its loop is
// destroyed is leaked (its self-reference), never freed under the kernel.
//
// Thread rule: file_state is touched on the loop's thread only; jobs get
// the fd_owner, offsets and buffers they own.
#include <pyco/file.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include <pyco/detail/io_backend.hpp>
#include <pyco/event.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/future.hpp>
#include <pyco/lock.hpp>
#include <pyco/net/os_error.hpp>
#include <pyco/shield.hpp>
#include <pyco/task.hpp>
#include <pyco/threads.hpp>

#include "../net/sock_registry.hpp"
#include "file_hooks.hpp"

namespace pyco {

std::exception_ptr make_file_os_error(int err, const std::string& what) { return make_os_error(err, what); }

namespace detail {

file_nowait_hooks& file_nowait_hooks_here() noexcept {
    thread_local file_nowait_hooks h;
    return h;
}

namespace {

// What one syscall may move (Linux caps read/write there anyway).
constexpr std::size_t max_io = 0x7ffff000;
// read(-1) past the size fstat gave (or of something without a size).
constexpr std::size_t read_chunk_size = 64 * 1024;
// The largest chunk tried on the loop thread (see file.hpp): copying more
// would hold the loop longer than the hand-off to a thread costs.
constexpr std::size_t nowait_max = 256 * 1024;

std::string quoted(const char* op, const std::string& path) {
    std::string s(op);
    s += " '";
    s += path;
    s += '\'';
    return s;
}

[[noreturn]] void raise_file_error(int err, const char* op, const std::string& path) {
    std::rethrow_exception(make_file_os_error(err, quoted(op, path)));
}

}  // namespace

struct fd_owner {
    explicit fd_owner(int f) noexcept : fd(f) {}
    fd_owner(const fd_owner&) = delete;
    fd_owner& operator=(const fd_owner&) = delete;
    ~fd_owner() {
        if (fd >= 0) ::close(fd);
    }
    int fd;
};

struct file_state {
    std::shared_ptr<fd_owner> fd;  // null once closed
    open_request req;
    bool seekable = true;
    bool nowait = true;             // RWF_NOWAIT is worth trying (epoll path; see read_cached)
    std::uint64_t pos = 0;
    lock pos_lock;                  // held by the read/write at the position in flight
    std::size_t inflight = 0;       // operations not finished
    std::size_t close_waiters = 0;  // close() calls waiting for them
    event idle;                     // set when inflight drops to 0 while someone waits
    bool closed = false;

    const std::string& path() const noexcept { return req.path; }
    int fileno() const noexcept { return fd ? fd->fd : -1; }

    // The size of the file if it is a regular one (for read(-1)), else 0.
    std::uint64_t regular_size() const noexcept {
        struct stat sb {};
        if (!fd || ::fstat(fd->fd, &sb) != 0 || !S_ISREG(sb.st_mode)) return 0;
        return static_cast<std::uint64_t>(sb.st_size);
    }
};

namespace {

// An operation in flight; see the top of the file.
class op_token {
public:
    op_token(std::shared_ptr<file_state> st, bool locked) noexcept : st_(std::move(st)), locked_(locked) {
        ++st_->inflight;
    }
    op_token(op_token&& o) noexcept : st_(std::move(o.st_)), locked_(o.locked_) {}
    op_token(const op_token&) = delete;
    op_token& operator=(const op_token&) = delete;
    op_token& operator=(op_token&&) = delete;
    ~op_token() {
        if (!st_) return;
        try {
            if (locked_) st_->pos_lock.release();
            if (--st_->inflight == 0) {
                if (st_->close_waiters > 0) {
                    st_->idle.set();
                } else if (st_->closed) {
                    st_->fd.reset();  // close() was cancelled, or never waited
                }
            }
        } catch (...) {
            // (the loop is closing: nobody waits any more)
        }
    }

private:
    std::shared_ptr<file_state> st_;
    bool locked_;
};

void check_open(const file_state* st) {
    if (st == nullptr || st->closed) throw value_error("I/O operation on closed file");
}
void check_readable(const file_state& st) {
    if (!st.req.readable) throw unsupported_operation("File not open for reading");
}
void check_writable(const file_state& st) {
    if (!st.req.writable) throw unsupported_operation("File not open for writing");
}

// --- The backend's path: one io_op, owned until its final completion ------
//
// A request keeps itself alive (self) until its op's final completion. A
// cancelled request's op may still be in the kernel when the loop closes
// (an fsync in io-wq cannot be stopped): then no completion will come, and
// the loop's registry hands the self-reference back instead (loop_owned,
// the ownership rule in sock_registry.hpp).

struct ring_req final : loop_owned {
    io_op op;
    iovec iov{};
    std::shared_ptr<fd_owner> fd;
    std::string buf;                           // a read's destination
    std::shared_ptr<const std::string> data;   // a write's source
    std::shared_ptr<ring_req> self;            // the backend's reference
    event_loop* loop = nullptr;
    future<long> done;

    std::shared_ptr<void> loop_closed() noexcept override { return std::move(self); }
};

void ring_complete(io_op& o, const io_result& r) {
    auto* q = static_cast<ring_req*>(o.user);
    if (r.more) return;  // (file operations are one-shot)
    disown_by_loop(*q->loop, *q);
    std::shared_ptr<ring_req> keep = std::move(q->self);
    if (!q->done.done()) q->done.set_result(r.res);  // else: its task was cancelled
}

// Submits q's op; its result (>= 0, or -errno).
coroutine<long> ring_submit(event_loop& loop, std::shared_ptr<ring_req> q) {
    q->op.on_complete = &ring_complete;
    q->op.user = q.get();
    q->op.fd = q->fd->fd;
    if (loop.backend().submit(q->op) == io_status::done) co_return q->op.result;
    q->done = loop.create_future<long>();
    q->loop = &loop;
    q->self = q;
    own_by_loop(loop, *q);
    future<long> f = q->done;
    co_return co_await f;
}

bool on_ring(event_loop& loop, const file_state& st, io_opcode code) {
    return st.seekable && loop.backend().supports(code);
}

// --- One syscall's worth, on either path ---------------------------------

struct chunk_result {
    long res = 0;
    std::string data;
};

// The page-cache fast path of the executor path (see file.hpp): reads
// buf.size() bytes at off on the loop thread with RWF_NOWAIT, which copies
// only what is cached and never waits for the disk. True: buf holds the
// chunk (as pread would have given it). False: nothing taken, pread it on
// the executor. A short read is a chunk like any other: read_some asks
// again for the rest (with RWF_NOWAIT: EAGAIN if it is not cached), so only
// an empty result ends a read, and an empty result is taken as EOF only
// when fstat agrees (RWF_NOWAIT's 0 is not promised to mean EOF everywhere).
bool read_cached(file_state& st, std::uint64_t off, std::string& buf) {
    file_nowait_hooks& h = file_nowait_hooks_here();
    if (!h.enabled) return false;
    if (off >= h.cached_below) {  // (a test's "not cached")
        ++h.refused;
        return false;
    }
    iovec iov{buf.data(), static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), h.cached_below - off))};
    ssize_t r;
    do {
        r = ::preadv2(st.fd->fd, &iov, 1, static_cast<off_t>(off), RWF_NOWAIT);
    } while (r < 0 && errno == EINTR);
    if (r > 0) {
        buf.resize(static_cast<std::size_t>(r));
        ++h.taken;
        return true;
    }
    if (r == 0) {
        struct stat sb {};
        if (::fstat(st.fd->fd, &sb) == 0 && off >= static_cast<std::uint64_t>(sb.st_size)) {
            buf.clear();
            ++h.taken;
            return true;
        }
    } else if (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS) {
        st.nowait = false;  // no RWF_NOWAIT here (kernel or filesystem): stop trying
        return false;
    }
    ++h.refused;  // EAGAIN (not cached), or an error pread will give again
    return false;
}

// Up to n bytes at off (or at the fd's own position when it cannot seek).
coroutine<std::string> read_chunk(std::shared_ptr<file_state> st, std::uint64_t off, std::size_t n) {
    event_loop& loop = get_running_loop();
    if (on_ring(loop, *st, io_opcode::read_at)) {
        auto q = std::make_shared<ring_req>();
        q->fd = st->fd;
        q->buf.resize(n);
        q->op.code = io_opcode::read_at;
        q->op.buf = reinterpret_cast<std::byte*>(q->buf.data());
        q->op.len = n;
        q->op.offset = off;
        const long r = co_await ring_submit(loop, q);
        if (r < 0) raise_file_error(static_cast<int>(-r), "read", st->path());
        q->buf.resize(static_cast<std::size_t>(r));
        co_return std::move(q->buf);
    }
    std::string buf;
    if (st->seekable && st->nowait && n <= nowait_max) {
        buf.resize(n);
        if (read_cached(*st, off, buf)) co_return std::move(buf);
    }
    ++file_nowait_hooks_here().executor;
    auto job = [fd = st->fd, positional = st->seekable, off, n, buf = std::move(buf)]() mutable {
        const std::shared_ptr<fd_owner> keep = std::move(fd);  // let go before the result is posted
        chunk_result c;
        c.data = std::move(buf);
        c.data.resize(n);
        ssize_t r;
        do {
            r = positional ? ::pread(keep->fd, c.data.data(), n, static_cast<off_t>(off))
                           : ::read(keep->fd, c.data.data(), n);
        } while (r < 0 && errno == EINTR);
        c.res = r < 0 ? -errno : r;
        c.data.resize(r < 0 ? 0 : static_cast<std::size_t>(r));
        return c;
    };
    chunk_result c = co_await loop.run_in_executor(std::move(job));
    if (c.res < 0) raise_file_error(static_cast<int>(-c.res), "read", st->path());
    co_return std::move(c.data);
}

// data[from, from + n) at off: how much was written (> 0).
coroutine<std::size_t> write_chunk(std::shared_ptr<file_state> st, std::uint64_t off,
                                   std::shared_ptr<const std::string> data, std::size_t from, std::size_t n) {
    event_loop& loop = get_running_loop();
    long r;
    if (on_ring(loop, *st, io_opcode::write_at)) {
        auto q = std::make_shared<ring_req>();
        q->fd = st->fd;
        q->data = data;
        q->iov.iov_base = const_cast<char*>(data->data() + from);
        q->iov.iov_len = n;
        q->op.code = io_opcode::write_at;
        q->op.iov = &q->iov;
        q->op.iovcnt = 1;
        q->op.offset = off;
        r = co_await ring_submit(loop, q);
    } else {
        auto job = [fd = st->fd, positional = st->seekable, off, data, from, n]() mutable -> long {
            const std::shared_ptr<fd_owner> keep = std::move(fd);
            ssize_t w;
            do {
                w = positional ? ::pwrite(keep->fd, data->data() + from, n, static_cast<off_t>(off))
                               : ::write(keep->fd, data->data() + from, n);
            } while (w < 0 && errno == EINTR);
            return w < 0 ? -errno : w;
        };
        r = co_await loop.run_in_executor(std::move(job));
    }
    if (r < 0) raise_file_error(static_cast<int>(-r), "write", st->path());
    if (r == 0) raise_file_error(EIO, "write", st->path());  // never for a file: do not spin
    co_return static_cast<std::size_t>(r);
}

// --- The inner tasks: each owns its operation to the end ------------------

coroutine<std::string> read_some(std::shared_ptr<file_state> st, op_token tok, bool at_pos, std::uint64_t off,
                                 std::ptrdiff_t n) {
    (void)tok;
    std::string out;
    // read(-1): ask for what fstat says is left, plus one byte to see EOF;
    // a large read(n) asks for no more than that either.
    const bool sized = n < 0 || static_cast<std::size_t>(n) > read_chunk_size;
    const std::uint64_t size = sized ? st->regular_size() : 0;
    for (;;) {
        const std::uint64_t where = at_pos ? st->pos : off + out.size();
        std::size_t want;
        if (n >= 0) {
            want = std::min(static_cast<std::size_t>(n) - out.size(), max_io);
            if (want == 0) break;
            if (size > where) {
                want = static_cast<std::size_t>(std::min<std::uint64_t>(want, size - where + 1));
            } else if (sized) {  // no size to go by (a FIFO, or at EOF): grow as it comes
                want = std::min(want, std::max(read_chunk_size, out.size()));
            }
        } else if (size > where) {
            want = static_cast<std::size_t>(std::min<std::uint64_t>(size - where + 1, max_io));
        } else {
            want = std::max(read_chunk_size, std::min(out.size(), max_io));
        }
        std::string c = co_await read_chunk(st, where, want);
        if (c.empty()) break;  // EOF
        if (at_pos) st->pos += c.size();
        if (out.empty()) {
            out = std::move(c);
        } else {
            out += c;
        }
    }
    co_return out;
}

coroutine<std::size_t> write_all(std::shared_ptr<file_state> st, op_token tok, bool at_pos, std::uint64_t off,
                                 std::shared_ptr<const std::string> data) {
    (void)tok;
    const std::size_t size = data->size();
    std::size_t done = 0;
    while (done < size) {
        const std::uint64_t where = at_pos ? st->pos : off + done;
        const std::size_t w = co_await write_chunk(st, where, data, done, std::min(size - done, max_io));
        done += w;
        if (at_pos && !st->req.append) st->pos += w;
    }
    // O_APPEND put the bytes at the end, wherever that was.
    if (at_pos && st->req.append && st->seekable) st->pos = std::max(st->pos, st->regular_size());
    co_return size;
}

coroutine<void> fsync_inner(std::shared_ptr<file_state> st, op_token tok) {
    (void)tok;
    event_loop& loop = get_running_loop();
    long r;
    if (on_ring(loop, *st, io_opcode::fsync)) {
        auto q = std::make_shared<ring_req>();
        q->fd = st->fd;
        q->op.code = io_opcode::fsync;
        r = co_await ring_submit(loop, q);
    } else {
        auto job = [fd = st->fd]() mutable -> long {
            const std::shared_ptr<fd_owner> keep = std::move(fd);
            return ::fsync(keep->fd) == 0 ? 0 : -errno;
        };
        r = co_await loop.run_in_executor(std::move(job));
    }
    if (r < 0) raise_file_error(static_cast<int>(-r), "fsync", st->path());
}

struct open_result {
    std::shared_ptr<fd_owner> fd;  // dropped, it closes the fd: a cancelled open leaks nothing
    bool seekable = true;
    bool nowait = true;             // RWF_NOWAIT is worth trying (epoll path; see read_cached)
    std::uint64_t pos = 0;
};

open_result open_blocking(const open_request& req) {
    int fd;
    do {
        fd = ::open(req.path.c_str(), req.flags | O_CLOEXEC, 0666);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) raise_file_error(errno, "open", req.path);
    open_result r;
    r.fd = std::make_shared<fd_owner>(fd);
    struct stat sb {};
    if (::fstat(fd, &sb) != 0) raise_file_error(errno, "open", req.path);
    // open(2) lets a directory be opened for reading; Python's open() refuses.
    if (S_ISDIR(sb.st_mode)) raise_file_error(EISDIR, "open", req.path);
    const off_t p = ::lseek(fd, 0, req.append ? SEEK_END : SEEK_CUR);
    r.seekable = p >= 0;
    r.pos = p >= 0 ? static_cast<std::uint64_t>(p) : 0;
    return r;
}

}  // namespace

open_request parse_file_mode(std::string path, std::string_view mode) {
    open_request r;
    r.path = std::move(path);
    bool reading = false, writing = false, appending = false, updating = false, text = false, binary = false;
    auto invalid = [&] {
        std::string m("invalid mode: '");
        m += mode;
        m += '\'';
        return value_error(m);
    };
    for (std::size_t i = 0; i < mode.size(); ++i) {
        const char c = mode[i];
        switch (c) {
        case 'x': r.created = true; break;
        case 'r': reading = true; break;
        case 'w': writing = true; break;
        case 'a': appending = true; break;
        case '+': updating = true; break;
        case 't': text = true; break;
        case 'b': binary = true; break;
        default: throw invalid();
        }
        if (mode.find(c, i + 1) != std::string_view::npos) throw invalid();
    }
    if (text && binary) throw value_error("can't have text and binary mode at once");
    const int kinds = int(r.created) + int(reading) + int(writing) + int(appending);
    if (kinds > 1) throw value_error("must have exactly one of create/read/write/append mode");
    if (kinds == 0) throw value_error("Must have exactly one of create/read/write/append mode and at most one plus");
    if (text) {
        std::string m("pyco::open_file is binary only (bytes in and out): mode '");
        m += mode;
        m += "' asks for text";
        throw value_error(m);
    }
    r.readable = reading || updating;
    r.writable = !reading || updating;
    r.append = appending;
    r.flags = r.readable && r.writable ? O_RDWR : r.readable ? O_RDONLY : O_WRONLY;
    if (r.created) r.flags |= O_CREAT | O_EXCL;
    if (writing) r.flags |= O_CREAT | O_TRUNC;
    if (appending) r.flags |= O_CREAT | O_APPEND;
    return r;
}

}  // namespace detail

using detail::op_token;

file_opener open_file(std::string path, std::string_view mode) {
    return file_opener(detail::parse_file_mode(std::move(path), mode));
}

coroutine<async_file> file_opener::open() const {
    auto req = req_;
    auto job = [req]() { return detail::open_blocking(req); };
    detail::open_result r = co_await get_running_loop().run_in_executor(std::move(job));
    auto st = std::make_shared<detail::file_state>();
    st->fd = std::move(r.fd);
    st->req = std::move(req);
    st->seekable = r.seekable;
    st->pos = r.pos;
    co_return async_file(std::move(st));
}

coroutine<async_file> file_opener::aenter() {
    file_ = co_await open();
    co_return file_;
}

coroutine<void> file_opener::aexit(std::exception_ptr) {
    if (file_.state_) co_await file_.close();
}

coroutine<std::string> async_file::read(std::ptrdiff_t n) {
    auto st = state_;
    detail::check_open(st.get());
    detail::check_readable(*st);
    if (n == 0) co_return std::string();
    co_await st->pos_lock.acquire();
    op_token tok(st, true);
    detail::check_open(st.get());  // closed while it waited its turn
    auto t = create_task(detail::read_some(st, std::move(tok), true, 0, n));
    co_return co_await shield(t);
}

coroutine<std::string> async_file::read_at(std::uint64_t offset, std::size_t n) {
    auto st = state_;
    detail::check_open(st.get());
    detail::check_readable(*st);
    if (!st->seekable) detail::raise_file_error(ESPIPE, "read", st->path());
    if (n == 0) co_return std::string();
    op_token tok(st, false);
    auto t = create_task(detail::read_some(st, std::move(tok), false, offset, static_cast<std::ptrdiff_t>(n)));
    co_return co_await shield(t);
}

coroutine<std::size_t> async_file::write(std::string bytes) {
    auto st = state_;
    detail::check_open(st.get());
    detail::check_writable(*st);
    if (bytes.empty()) co_return 0;
    auto data = std::make_shared<const std::string>(std::move(bytes));
    co_await st->pos_lock.acquire();
    op_token tok(st, true);
    detail::check_open(st.get());
    auto t = create_task(detail::write_all(st, std::move(tok), true, 0, std::move(data)));
    co_return co_await shield(t);
}

coroutine<std::size_t> async_file::write_at(std::uint64_t offset, std::string bytes) {
    auto st = state_;
    detail::check_open(st.get());
    detail::check_writable(*st);
    if (!st->seekable) detail::raise_file_error(ESPIPE, "write", st->path());
    if (bytes.empty()) co_return 0;
    auto data = std::make_shared<const std::string>(std::move(bytes));
    op_token tok(st, false);
    auto t = create_task(detail::write_all(st, std::move(tok), false, offset, std::move(data)));
    co_return co_await shield(t);
}

coroutine<void> async_file::fsync() {
    auto st = state_;
    detail::check_open(st.get());
    op_token tok(st, false);
    auto t = create_task(detail::fsync_inner(st, std::move(tok)));
    co_await shield(t);
}

coroutine<std::uint64_t> async_file::seek(std::int64_t offset, int whence) {
    auto st = state_;
    detail::check_open(st.get());
    if (whence < 0 || whence > 2) throw value_error("whence value " + std::to_string(whence) + " unsupported");
    if (!st->seekable) detail::raise_file_error(ESPIPE, "seek", st->path());
    co_await st->pos_lock.acquire();
    op_token tok(st, true);
    detail::check_open(st.get());
    const std::int64_t base = whence == SEEK_SET   ? 0
                              : whence == SEEK_CUR ? static_cast<std::int64_t>(st->pos)
                                                   : static_cast<std::int64_t>(st->regular_size());
    if ((offset < 0 && base + offset < 0)) detail::raise_file_error(EINVAL, "seek", st->path());
    st->pos = static_cast<std::uint64_t>(base + offset);
    co_return st->pos;
}

std::uint64_t async_file::tell() const {
    detail::check_open(state_.get());
    if (!state_->seekable) detail::raise_file_error(ESPIPE, "tell", state_->path());
    return state_->pos;
}

coroutine<void> async_file::close() {
    auto st = state_;
    if (!st || st->closed) co_return;
    st->closed = true;
    if (st->inflight > 0) {
        st->idle.clear();
        ++st->close_waiters;
        std::exception_ptr cancelled;
        try {
            while (st->inflight > 0) co_await st->idle.wait();
        } catch (...) {
            cancelled = std::current_exception();
        }
        --st->close_waiters;
        if (cancelled) {
            if (st->inflight == 0) st->fd.reset();  // else the last operation closes it
            std::rethrow_exception(cancelled);
        }
    }
    std::shared_ptr<detail::fd_owner> owner = std::move(st->fd);
    // Nothing else holds the fd (a job of a task cancelled at loop shutdown
    // might): close it here, so that its error can be raised.
    if (owner && owner.use_count() == 1) {
        const int fd = std::exchange(owner->fd, -1);
        // (EINTR: Linux has closed the fd anyway; retrying could close another.)
        if (::close(fd) != 0 && errno != EINTR) detail::raise_file_error(errno, "close", st->path());
    }
}

bool async_file::closed() const noexcept { return !state_ || state_->closed; }
bool async_file::readable() const noexcept { return state_ && state_->req.readable; }
bool async_file::writable() const noexcept { return state_ && state_->req.writable; }

const std::string& async_file::name() const noexcept {
    static const std::string none;
    return state_ ? state_->path() : none;
}

std::string async_file::mode() const {
    if (!state_) return {};
    const auto& r = state_->req;
    // CPython's FileIO.mode: w+ reads back as "rb+".
    if (r.created) return r.readable ? "xb+" : "xb";
    if (r.append) return r.readable ? "ab+" : "ab";
    if (r.readable) return r.writable ? "rb+" : "rb";
    return "wb";
}

int async_file::fileno() const {
    detail::check_open(state_.get());
    return state_->fileno();
}

}  // namespace pyco
