// pyco/net/stream_reader.hpp — asyncio.StreamReader: pyco::stream_reader.
//
//   std::string line = co_await reader.readline();        // "" at EOF
//   std::string rec  = co_await reader.readexactly(16);   // incomplete_read_error at EOF
//   std::string head = co_await reader.readuntil("\r\n\r\n");
//   std::string any  = co_await reader.read(4096);        // as soon as 1 byte is there
//   std::string all  = co_await reader.read();            // until EOF
//   while (auto line = co_await reader.anext()) use(*line);  // async for line in reader
//   co_await pyco::async_for(reader, [](std::string line) { ... });
//
// Bytes are std::string. Fed by its protocol (feed_data / get_buffer +
// buffer_updated, feed_eof, set_exception), read by one task at a time.
//
// The buffer: one contiguous block with a read offset. Reads advance the
// offset; the unread bytes are moved to the front only when the block is
// full and at least half of it is already read, so feeding is amortised
// O(1) a byte and reading many lines is O(total), never O(n^2). The
// separator search resumes where the previous one stopped, also across
// calls (the last search's separators and position are remembered: bytes
// are only ever appended, so "no separator starts before X" stays true),
// so a long line arriving in tiny chunks, or a readline() cancelled and
// retried many times, is scanned once.
//
// Cancel safety — the rule for every read method: bytes leave the buffer
// only when a call returns them (or raises incomplete_read_error with them,
// or readline() drops an over-long line as CPython does). A call cancelled
// while it waits loses no byte: what arrived stays buffered for the next
// call. This holds for read(-1) too, which CPython breaks (its read(-1)
// gathers blocks in the coroutine and loses them when cancelled); pyco's
// read(-1) leaves everything in the buffer until EOF.
//
// One waiter: as in CPython, only one task may wait for data at a time; a
// second one raises runtime_error("<method>() called while another coroutine
// is already waiting for incoming data"). A read that needs no wait never
// conflicts.
//
// Flow control (CPython's StreamReader): feed_data pauses the transport
// (reading_control::pause_reading) when the buffer exceeds 2 x limit; a read
// that consumes resumes it when the buffer falls to <= limit; a read about
// to wait resumes a paused transport (waiting while paused would deadlock).
// One difference, to spare two syscalls per chunk: while read(-1) or
// readexactly(n) waits (they need more bytes, so CPython would resume the
// transport at their next wait anyway), feeding does not pause; when such a
// read ends, the pause CPython would have left in place is applied then.
// resume_reading() may feed the reader synchronously; a read notices.
//
// Thread rule: loop thread only. The reader must outlive the reads awaiting
// it; a task abandoned while it waits (its loop closed) may outlive it.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <pyco/coroutine.hpp>
#include <pyco/detail/wait_queue.hpp>
#include <pyco/errors.hpp>

namespace pyco {

namespace detail {

// What the reader needs of its transport: flow control of the receive side.
// The transport implements it; neither call may re-enter the reader except
// that resume_reading() may feed it.
struct reading_control {
    virtual void pause_reading() = 0;
    virtual void resume_reading() = 0;
    virtual ~reading_control() = default;
};

// A contiguous byte buffer with a read offset. Invariant: begin_ <= end_ <=
// cap_; [begin_, end_) are the unread bytes; an emptied buffer restarts at
// the front. Unread bytes move only in make_room, when at least as many read
// bytes precede them (so each move is paid for by the reads before it).
class byte_buffer {
public:
    byte_buffer() = default;
    byte_buffer(const byte_buffer&) = delete;
    byte_buffer& operator=(const byte_buffer&) = delete;

    std::string_view view() const noexcept { return {data_.get() + begin_, end_ - begin_}; }
    std::size_t size() const noexcept { return end_ - begin_; }
    bool empty() const noexcept { return begin_ == end_; }
    std::size_t capacity() const noexcept { return cap_; }
    // How many bytes were ever consumed: the stream position of view()[0].
    std::uint64_t start() const noexcept { return consumed_; }

    void append(const void* p, std::size_t n);
    // Writable space after the unread bytes: at least n bytes.
    std::span<std::byte> prepare(std::size_t n) {
        if (cap_ - end_ < n) make_room(n);
        return {reinterpret_cast<std::byte*>(data_.get()) + end_, cap_ - end_};
    }
    // The first n bytes of the last prepare() become unread data.
    void commit(std::size_t n) noexcept { end_ += n; }
    std::size_t writable() const noexcept { return cap_ - end_; }

    // The first n unread bytes, consumed.
    std::string take(std::size_t n) {
        std::string s(data_.get() + begin_, n);
        consume(n);
        return s;
    }
    void consume(std::size_t n) noexcept {
        begin_ += n;
        consumed_ += n;
        if (begin_ == end_) begin_ = end_ = 0;
    }
    // Gives the block back when empty and bigger than `keep` (after a burst).
    // It goes to a small per-thread pool that the next growing buffer takes
    // from (stream_reader.cpp), so a busy stream does not free and
    // re-allocate a large block per message.
    void release_if_empty(std::size_t keep) noexcept {
        if (empty() && cap_ > keep) release_block();
    }

private:
    void release_block() noexcept;
    void make_room(std::size_t n);

    std::unique_ptr<char[]> data_;
    std::size_t cap_ = 0;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
    std::uint64_t consumed_ = 0;
};

}  // namespace detail

class stream_reader {
public:
    // asyncio's _DEFAULT_LIMIT (2 ** 16).
    static constexpr std::size_t default_limit = 64 * 1024;

    // value_error("Limit cannot be <= 0") for limit <= 0.
    explicit stream_reader(std::ptrdiff_t limit = static_cast<std::ptrdiff_t>(default_limit));
    stream_reader(const stream_reader&) = delete;
    stream_reader& operator=(const stream_reader&) = delete;
    ~stream_reader();

    // ---- the protocol's side ----

    // Appends bytes and wakes the waiting read. Empty data does nothing.
    // runtime_error("feed_data after feed_eof") after feed_eof() (CPython:
    // an assertion).
    void feed_data(std::span<const std::byte> data);
    void feed_data(std::string_view data);
    // The zero-copy feed (for a buffered_protocol): space to receive into
    // at the end of the buffer, at least size_hint bytes (0: 64 KiB); then
    // buffer_updated(n) feeds the first n of them (value_error if n is more
    // than the span held). The span is valid until the next call on the
    // reader.
    std::span<std::byte> get_buffer(std::size_t size_hint = 0);
    void buffer_updated(std::size_t nbytes);
    // End of stream: the waiting read wakes; reads then drain the buffer.
    void feed_eof();
    // Every later read raises e, and so does a waiting one at once or a read
    // about to wait (CPython's readexactly/readuntil would wait forever if
    // the error came after the wake-up; pyco's raise). Buffered bytes stay.
    void set_exception(std::exception_ptr e);
    // The transport to pause and resume. runtime_error("Transport already
    // set") if one is set; nullptr detaches it (do so before it dies).
    void set_transport(detail::reading_control* transport);

    // ---- the reader's side ----

    std::exception_ptr exception() const noexcept { return exception_; }
    // EOF was fed and the buffer is empty.
    bool at_eof() const noexcept { return eof_ && buf_.empty(); }
    std::size_t limit() const noexcept { return limit_; }
    // The unread bytes (CPython's _buffer), valid until the next feed or read.
    std::string_view buffer() const noexcept { return buf_.view(); }
    // A read is waiting for data (CPython's `_waiter is not None`).
    bool waiting() const noexcept { return !waiters_.empty(); }

    // read(n): n > 0: at most n bytes, as soon as one is buffered ("" at
    // EOF); n == 0: "" at once; n < 0: everything until EOF. Not bounded by
    // limit. Cancel safe: cancelled while waiting it takes nothing; read(-1)
    // consumes only at EOF, so a cancelled read(-1) leaves every byte that
    // arrived in the buffer (unlike CPython).
    coroutine<std::string> read(std::ptrdiff_t n = -1);

    // readline(): up to and including b"\n"; at EOF the incomplete last line
    // without it, "" when nothing is left. A line longer than limit (not
    // counting "\n") raises value_error with limit_overrun_error's message,
    // after dropping that line (through its "\n" if buffered, else the whole
    // buffer), as CPython does. Cancel safe: cancelled while waiting it takes
    // nothing, and the search done so far is kept for the next call.
    coroutine<std::string> readline();

    // readuntil(sep): up to and including sep. With several separators
    // (Python 3.13's tuple), the shortest chunk ending in any of them; on a
    // tie the shorter separator counts as the match. Errors: value_error
    // "Separator should be at least one-byte string" / "Separator should
    // contain at least one element"; limit_overrun_error "Separator is not
    // found, and chunk exceed the limit" or "Separator is found, but chunk is
    // longer than limit" (the buffer is left as it was, consumed() says how
    // much to discard); incomplete_read_error at EOF with the whole buffer as
    // partial() and no expected(). Cancel safe, as readline().
    // (GCC 12: build the vector before the co_await, not in it.)
    coroutine<std::string> readuntil(std::string separator = "\n");
    coroutine<std::string> readuntil(std::vector<std::string> separators);

    // readexactly(n): exactly n bytes; at EOF incomplete_read_error with the
    // whole buffer as partial() and n as expected(). value_error("readexactly
    // size can not be less than zero") for n < 0. Not bounded by limit.
    // Cancel safe: the bytes stay in the buffer until all n are there.
    coroutine<std::string> readexactly(std::ptrdiff_t n);

    // `async for line in reader` (__anext__): the next readline(), or empty
    // once readline() gives "". Cancel safe, as readline(). Also usable with
    // pyco::async_for(reader, fn).
    coroutine<std::optional<std::string>> anext();

private:
    class data_waiter;

    void after_feed();
    void pause_if_over();
    void catch_up_pause(std::size_t before);
    void maybe_resume();
    void wake(const std::exception_ptr& e);
    std::optional<std::string> try_until(std::span<const std::string> seps, bool line);
    [[noreturn]] void overrun(const char* msg, std::size_t consumed, const std::string& sep, bool line);
    std::size_t resume_offset(std::span<const std::string> seps) const noexcept;
    void save_offset(std::span<const std::string> seps, std::size_t offset);

    detail::byte_buffer buf_;
    detail::wait_queue waiters_;
    std::exception_ptr exception_;
    detail::reading_control* transport_ = nullptr;
    // The waiting read(-1)/readexactly, while it waits: feeding does not pause.
    data_waiter* accumulating_ = nullptr;
    std::size_t limit_;
    // The last unsuccessful search: no separator of scan_seps_ starts before
    // stream position scan_mark_.
    std::vector<std::string> scan_seps_;
    std::uint64_t scan_mark_ = 0;
    // Counted so a wait notices a feed made by resume_reading() itself.
    std::uint32_t feeds_ = 0;
    std::uint32_t failures_ = 0;
    bool eof_ = false;
    bool paused_ = false;
};

class stream_reader::data_waiter {
public:
    using pyco_awaitable_tag = void;
    // accumulate: the read needs more bytes before it can take any.
    data_waiter(stream_reader& r, const char* func, bool accumulate) noexcept
        : r_(&r), func_(func), accumulate_(accumulate) {}
    // GCC 12 moves the awaiter before awaiting it; never while it waits.
    data_waiter(data_waiter&& o) noexcept : r_(o.r_), func_(o.func_), accumulate_(o.accumulate_) {}
    data_waiter& operator=(const data_waiter&) = delete;
    ~data_waiter();

    bool await_ready();
    void await_suspend(std::coroutine_handle<> h);
    void await_resume();

private:
    friend class stream_reader;
    void unregister() noexcept;

    stream_reader* r_;
    const char* func_;
    bool accumulate_;
    // Invariant: registered_ == (r_->accumulating_ == this). The reader
    // clears it when it dies first, so a frame destroyed later (its loop
    // closed) does not touch it.
    bool registered_ = false;
    std::uint32_t feeds_ = 0;
    std::uint32_t failures_ = 0;
    detail::parking p_;
};

}  // namespace pyco
