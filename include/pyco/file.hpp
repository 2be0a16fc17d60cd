// pyco/file.hpp — async files (beyond asyncio, which has none: its users
// reach for to_thread or aiofiles).
//
//   pyco::async_file f = co_await pyco::open_file("data.bin", "rb");
//   std::string all = co_await f.read();          // to EOF
//   co_await f.close();
//
//   auto body = [](pyco::async_file& f) -> pyco::coroutine<void> {
//       co_await f.write("hello\n");
//   };
//   co_await pyco::async_with(pyco::open_file("out.bin", "wb"), body);  // closed at the end
//
// Modes are Python's open() modes, in binary: "r", "w", "a", "x", each with
// an optional "+" and an optional "b" ("rb", "r+b", "wb+", ...). Bytes go in
// and out as std::string; there is no text decoding, so "r" means "rb" and a
// "t" in the mode is refused (decode the bytes yourself). A bad mode raises
// value_error with CPython's message ("invalid mode: 'q'") when open_file is
// called, as open() does.
//
// Where the work happens. When the running loop's backend performs file
// operations (io_uring: backend().supports(io_opcode::read_at)), reads,
// writes and fsync are submitted to it; otherwise (epoll) they run on the
// loop's default executor, as aiofiles does with its thread pool. Results
// and errors are the same either way. Opening (open(2), fstat) runs on the
// default executor on both. A file that cannot seek (a FIFO, a tty) is read
// and written at its own position with read(2)/write(2), on the executor.
//
// The page-cache fast path (epoll). Handing a read to a thread and back
// costs far more than copying 4 KiB from the page cache, so on the executor
// path each read of a seekable file (each chunk of at most 256 KiB; larger
// ones would hold the loop too long) is first tried on the loop thread with
// preadv2(RWF_NOWAIT), which copies what is cached and never waits for the
// disk. What it returns is taken as pread's result: bytes (a short read is
// only a part: the rest is asked for again, the same way), or EOF when it
// returns 0 and fstat puts the offset at or past the end. When it finds the
// data not cached (EAGAIN) or fails, that chunk is pread on the executor as
// before; when the kernel or filesystem has no RWF_NOWAIT (EOPNOTSUPP,
// EINVAL) the file stops trying. Either way the bytes, the position and the
// errors are what the executor alone gives; only the thread differs. Writes
// and fsync always go to the executor (RWF_NOWAIT does not keep a buffered
// write from blocking).
//
// The position. read() and write() work at the file's current position,
// which pyco keeps (pread/pwrite at it), and advance it by what was really
// done: a read or write that fails half-way leaves it after the bytes that
// made it. They are done one after another, in call order (they wait for
// each other). read_at, write_at and fsync do not use or move the position
// and may run concurrently. In append mode ("a", "a+") every write goes to
// the end of the file (O_APPEND) and then the position is the file's end;
// write_at also appends there, as os.pwrite does on such a file.
//
// Cancellation (what aiofiles users get, made exact). Cancelling a task
// waiting in read/read_at/write/write_at/fsync raises cancelled_error in it
// at once — but an operation that has started runs to its end: a thread or
// the kernel is already doing it (or, for the fast path above, the loop
// thread, with nothing to wait for). Its buffer is owned jointly by the
// operation and the caller, so it lives until the operation really
// finishes, even after the caller is gone. A cancelled read's bytes are
// dropped (as when an aiofiles read is cancelled: the thread read them, the
// position moved past them); a cancelled write still writes everything.
// The position moves by what the operation really did, and the next read or
// write waits for it, so it starts where the cancelled one ended. An
// operation still waiting for an earlier read or write to finish has not
// started: cancelling it does nothing to the file.
//
// Closing. close() (idempotent) stops new operations ("I/O operation on
// closed file"), waits for those in flight, then closes the fd; a close
// error is raised. async_with closes at the end of the body, even when the
// body throws. A file dropped without close() is closed when its last
// handle and last operation are gone. Files are opened close-on-exec.
//
// Errors: the contract's std::system_error with errno, as a named subclass
// where Python has one (file_not_found_error, file_exists_error,
// permission_error, is_a_directory_error, not_a_directory_error: see
// <pyco/net/os_error.hpp>), what() "<op> '<path>': <strerror>". Opening a
// directory raises is_a_directory_error, as Python's open() does. Reading a
// file not open for reading (or writing one not open for writing) raises
// unsupported_operation ("File not open for reading"), a value_error — in
// Python io.UnsupportedOperation is both an OSError and a ValueError; in
// C++ a type cannot be both without making `catch (std::exception&)`
// ambiguous, so it is a value_error only.
//
// Thread rule: an async_file is used on one loop's thread (copies of the
// handle included). The default executor's threads see only the fd and
// buffers they own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>

#include <pyco/coroutine.hpp>
#include <pyco/errors.hpp>

namespace pyco {

// io.UnsupportedOperation (see above: a value_error only).
class unsupported_operation : public value_error {
public:
    using value_error::value_error;
};

namespace detail {
struct file_state;
struct open_request {
    std::string path;
    int flags = 0;     // open(2) flags
    bool readable = false;
    bool writable = false;
    bool append = false;
    bool created = false;  // "x"
};
// Python's open() mode rules; raises value_error as CPython does.
open_request parse_file_mode(std::string path, std::string_view mode);

}  // namespace detail

// An open file: a handle; copies share the same file (as Python names do).
class async_file {
public:
    async_file() = default;  // no file: every operation raises "I/O operation on closed file"

    // Up to n bytes from the position (n < 0: everything to EOF); fewer only
    // at EOF, empty at EOF.
    coroutine<std::string> read(std::ptrdiff_t n = -1);
    // Up to n bytes at offset, fewer only at EOF; empty past EOF (os.pread).
    coroutine<std::string> read_at(std::uint64_t offset, std::size_t n);
    // Writes all of bytes at the position; returns its size.
    coroutine<std::size_t> write(std::string bytes);
    // Writes all of bytes at offset (appends in append mode); returns its size.
    coroutine<std::size_t> write_at(std::uint64_t offset, std::string bytes);
    // fsync(2): the file's data and metadata reach the device.
    coroutine<void> fsync();
    // seek(offset, whence) with SEEK_SET (0), SEEK_CUR (1), SEEK_END (2):
    // the new position. Waits for reads and writes before it.
    coroutine<std::uint64_t> seek(std::int64_t offset, int whence = 0);
    // The position after the reads and writes that have finished.
    std::uint64_t tell() const;
    coroutine<void> close();

    bool closed() const noexcept;
    bool readable() const noexcept;
    bool writable() const noexcept;
    const std::string& name() const noexcept;  // the path it was opened with
    std::string mode() const;                  // as Python's FileIO.mode: "rb", "rb+", "wb", "ab+", "xb", ...
    int fileno() const;

    // async with: aenter gives the file itself, aexit closes it.
    async_file& aenter() noexcept { return *this; }
    coroutine<void> aexit(std::exception_ptr) { return close(); }

private:
    friend struct detail::file_state;
    friend class file_opener;
    explicit async_file(std::shared_ptr<detail::file_state> s) noexcept : state_(std::move(s)) {}
    std::shared_ptr<detail::file_state> state_;
};

// What open_file gives: await it for the file, or use it with async_with
// (as aiofiles.open's result is both awaitable and an async context manager).
class [[nodiscard("open_file does nothing until awaited or used with async_with")]] file_opener {
public:
    using pyco_awaitable_tag = void;  // awaited as pyco's own coroutines are
    explicit file_opener(detail::open_request req) : req_(std::move(req)) {}

    // co_await open_file(...): the file.
    auto operator co_await() {
        coro_ = open();
        return coro_.operator co_await();
    }
    // async with open_file(...) as f: the file; aexit closes it.
    coroutine<async_file> aenter();
    coroutine<void> aexit(std::exception_ptr);

private:
    coroutine<async_file> open() const;
    detail::open_request req_;
    coroutine<async_file> coro_;
    async_file file_;
};

// open(path, mode) for coroutines; see the top of this file.
file_opener open_file(std::string path, std::string_view mode = "r");

}  // namespace pyco
