#include <pyco/net/stream_reader.hpp>

#include "buffer_pool.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

namespace pyco {

namespace detail {

void byte_buffer::release_block() noexcept {
    buffer_pool<char>::here().give(std::move(data_), cap_);
    data_.reset();
    cap_ = 0;
    begin_ = end_ = 0;
}

void byte_buffer::append(const void* p, std::size_t n) {
    if (n == 0) return;
    std::memcpy(prepare(n).data(), p, n);
    commit(n);
}

void byte_buffer::make_room(std::size_t n) {
    const std::size_t live = size();
    // Move the unread bytes to the front only when as many read bytes
    // precede them: the move then costs no more than the reads that freed
    // the room, which keeps a long run of small reads and feeds linear.
    if (begin_ >= live && cap_ - live >= n) {
        std::memmove(data_.get(), data_.get() + begin_, live);
        begin_ = 0;
        end_ = live;
        return;
    }
    constexpr std::size_t max = std::numeric_limits<std::size_t>::max();
    if (n > max - live) throw std::bad_alloc();
    const std::size_t need = live + n;
    const std::size_t grown = cap_ <= max / 2 ? cap_ * 2 : max;
    const std::size_t cap = std::max({need, grown, std::size_t{256}});
    std::size_t got = 0;
    std::unique_ptr<char[]> block = buffer_pool<char>::here().take(cap, got);
    if (live != 0) std::memcpy(block.get(), data_.get() + begin_, live);
    buffer_pool<char>::here().give(std::move(data_), cap_);
    data_ = std::move(block);
    cap_ = got;
    begin_ = 0;
    end_ = live;
}

}  // namespace detail

namespace {

// The largest block an emptied reader keeps (maybe_resume): the size of an
// io_uring provided receive buffer (detail::uring_config), so the usual feed
// fits it.
constexpr std::size_t kept_block = 16 * 1024;

const std::string& newline() {
    static const std::string nl("\n");
    return nl;
}

[[noreturn]] void busy(const char* func) {
    throw runtime_error(std::string(func) +
                        "() called while another coroutine is already waiting for incoming data");
}

}  // namespace

stream_reader::stream_reader(std::ptrdiff_t limit) : limit_(static_cast<std::size_t>(limit)) {
    if (limit <= 0) throw value_error("Limit cannot be <= 0");
}

stream_reader::~stream_reader() {
    // A waiting task's frame may be destroyed after us (its loop closed).
    if (accumulating_ != nullptr) accumulating_->registered_ = false;
}

// ---- feeding ----

void stream_reader::feed_data(std::span<const std::byte> data) {
    if (eof_) throw runtime_error("feed_data after feed_eof");
    if (data.empty()) return;
    buf_.append(data.data(), data.size());
    after_feed();
}

void stream_reader::feed_data(std::string_view data) {
    feed_data(std::as_bytes(std::span<const char>(data.data(), data.size())));
}

std::span<std::byte> stream_reader::get_buffer(std::size_t size_hint) {
    if (eof_) throw runtime_error("feed_data after feed_eof");
    return buf_.prepare(size_hint != 0 ? size_hint : 64 * 1024);
}

void stream_reader::buffer_updated(std::size_t nbytes) {
    if (eof_) throw runtime_error("feed_data after feed_eof");
    if (nbytes > buf_.writable()) throw value_error("buffer_updated() beyond the buffer get_buffer() gave");
    if (nbytes == 0) return;
    buf_.commit(nbytes);
    after_feed();
}

// CPython's feed_data after the extend: wake the reader, then pause the
// transport if the buffer went over 2 x limit.
void stream_reader::after_feed() {
    ++feeds_;
    wake(nullptr);
    if (accumulating_ == nullptr) pause_if_over();
}

void stream_reader::feed_eof() {
    eof_ = true;
    ++feeds_;
    wake(nullptr);
}

void stream_reader::set_exception(std::exception_ptr e) {
    exception_ = std::move(e);
    ++failures_;
    wake(exception_);
}

void stream_reader::set_transport(detail::reading_control* transport) {
    if (transport != nullptr && transport_ != nullptr) throw runtime_error("Transport already set");
    transport_ = transport;
    if (transport == nullptr) paused_ = false;
}

// _wakeup_waiter / set_exception: the waiter leaves at once (so another
// read may wait before the woken task runs); a cancelled one is not woken.
void stream_reader::wake(const std::exception_ptr& e) {
    detail::waiter* w = waiters_.front();
    if (w == nullptr) return;
    waiters_.remove(*w);
    if (w->done()) return;
    if (e) {
        w->set_exception(e);
    } else {
        w->set_result();
    }
}

// ---- flow control ----

void stream_reader::pause_if_over() {
    if (transport_ != nullptr && !paused_ && buf_.size() > 2 * limit_) {
        transport_->pause_reading();
        paused_ = true;
    }
}

// A read(-1)/readexactly that waited ends: the transport is left paused if
// CPython would have left it so (its last feed went over 2 x limit and the
// read did not bring the buffer back to <= limit).
void stream_reader::catch_up_pause(std::size_t before) {
    if (transport_ != nullptr && !paused_ && before > 2 * limit_ && buf_.size() > limit_) {
        transport_->pause_reading();
        paused_ = true;
    }
}

void stream_reader::maybe_resume() {
    if (paused_ && buf_.size() <= limit_) {
        paused_ = false;
        transport_->resume_reading();
    }
    // Emptied, give a large block back: a reader idles most of its life, and
    // 10,000 idle readers each keeping the block of their largest burst
    // (up to 1 MiB before) is what tests/soak found. Blocks up to the size
    // of an io_uring receive buffer are kept, so that steady small
    // messages do not allocate (CPython's bytearray shrinks to the data).
    buf_.release_if_empty(kept_block);
}

// ---- waiting ----

stream_reader::data_waiter::~data_waiter() { unregister(); }

void stream_reader::data_waiter::unregister() noexcept {
    if (registered_) {
        registered_ = false;
        r_->accumulating_ = nullptr;
    }
}

// _wait_for_data up to the await: one waiter at a time; a paused transport
// is resumed first (waiting while paused would deadlock: readexactly(n) for
// n > limit). If resuming fed the reader, there is no need to wait. A
// stored exception is raised rather than waited on.
bool stream_reader::data_waiter::await_ready() {
    if (!r_->waiters_.empty()) busy(func_);
    if (r_->exception_) {
        if (accumulate_) r_->catch_up_pause(r_->buf_.size());
        std::rethrow_exception(r_->exception_);
    }
    feeds_ = r_->feeds_;
    failures_ = r_->failures_;
    if (r_->paused_) {
        r_->paused_ = false;
        r_->transport_->resume_reading();
    }
    return r_->feeds_ != feeds_ || r_->failures_ != failures_;
}

void stream_reader::data_waiter::await_suspend(std::coroutine_handle<> h) {
    p_.suspend(r_->waiters_, h, "StreamReader");
    if (accumulate_) {
        // A woken accumulating read that has not run yet gives way.
        if (r_->accumulating_ != nullptr) r_->accumulating_->registered_ = false;
        r_->accumulating_ = this;
        registered_ = true;
    }
}

void stream_reader::data_waiter::await_resume() {
    if (!p_.parked()) {
        // Fed (or failed) by resume_reading(), without a wait.
        if (r_->failures_ != failures_ && r_->exception_) std::rethrow_exception(r_->exception_);
        return;
    }
    unregister();
    detail::wait_outcome o = p_.resume();
    std::exception_ptr e;
    // Retrieve set_exception()'s error even when a cancellation wins, so the
    // waiter does not report it as never retrieved.
    if (p_.get().woken()) e = p_.get().exception();
    if (o.error) e = std::move(o.error);
    if (e) {
        if (accumulate_) r_->catch_up_pause(r_->buf_.size());
        std::rethrow_exception(e);
    }
}

// ---- the search of readuntil / readline ----

std::size_t stream_reader::resume_offset(std::span<const std::string> seps) const noexcept {
    if (scan_mark_ <= buf_.start()) return 0;
    if (!std::equal(seps.begin(), seps.end(), scan_seps_.begin(), scan_seps_.end())) return 0;
    return std::min<std::uint64_t>(scan_mark_ - buf_.start(), buf_.size());
}

void stream_reader::save_offset(std::span<const std::string> seps, std::size_t offset) {
    if (!std::equal(seps.begin(), seps.end(), scan_seps_.begin(), scan_seps_.end())) {
        scan_seps_.assign(seps.begin(), seps.end());
    }
    scan_mark_ = buf_.start() + offset;
}

// A limit overrun. readuntil leaves the buffer; readline drops the line
// (through the separator at `consumed` if there is one, else everything)
// and raises ValueError with the same message.
void stream_reader::overrun(const char* msg, std::size_t consumed, const std::string& sep, bool line) {
    if (!line) throw limit_overrun_error(msg, consumed);
    if (buf_.view().substr(consumed).starts_with(sep)) {
        buf_.consume(consumed + sep.size());
    } else {
        buf_.consume(buf_.size());
    }
    maybe_resume();
    throw value_error(msg);
}

// One look at the buffer for readuntil (CPython 3.13's loop body): the
// chunk, an error, or nothing (wait for data). `seps` is sorted by length.
// `offset`: no separator starts before it, so the search resumes there and
// every byte is searched about once however the data is chunked.
std::optional<std::string> stream_reader::try_until(std::span<const std::string> seps, bool line) {
    const std::string_view buf = buf_.view();
    const std::size_t buflen = buf.size();
    const std::size_t min_len = seps.front().size();
    const std::size_t max_len = seps.back().size();
    std::size_t offset = resume_offset(seps);
    if (buflen - offset >= min_len) {
        std::size_t match_start = std::string_view::npos;
        std::size_t match_end = std::string_view::npos;
        const std::string* matched = nullptr;
        for (const std::string& sep : seps) {
            const std::size_t at = buf.find(sep, offset);
            if (at == std::string_view::npos) continue;
            // The earliest end wins; on a tie, the shorter separator (first).
            if (match_end == std::string_view::npos || at + sep.size() < match_end) {
                match_start = at;
                match_end = at + sep.size();
                matched = &sep;
            }
        }
        if (matched != nullptr) {
            if (match_start > limit_) {
                overrun("Separator is found, but chunk is longer than limit", match_start, *matched, line);
            }
            std::string chunk = buf_.take(match_end);
            maybe_resume();
            return chunk;
        }
        offset = buflen + 1 > max_len ? buflen + 1 - max_len : 0;
        save_offset(seps, offset);
    }
    // (A resumed offset was checked when it was found; checking it again
    // gives what a fresh search of the same bytes would.)
    if (offset > limit_) {
        overrun("Separator is not found, and chunk exceed the limit", offset, seps.front(), line);
    }
    // A complete separator may have come with EOF, so EOF is checked last.
    if (eof_) {
        std::string chunk = buf_.take(buflen);
        if (line) return chunk;
        throw incomplete_read_error(std::move(chunk), std::nullopt);
    }
    return std::nullopt;
}

// ---- the read methods ----

coroutine<std::string> stream_reader::read(std::ptrdiff_t n) {
    if (exception_) std::rethrow_exception(exception_);
    if (n == 0) co_return std::string();
    if (n < 0) {
        // Everything stays buffered until EOF: nothing to lose if cancelled.
        // (CPython reads blocks of `limit`, each raising a stored exception
        // first: so does each round here.)
        while (!eof_) co_await data_waiter(*this, "read", true);
        if (exception_) {
            catch_up_pause(buf_.size());
            std::rethrow_exception(exception_);
        }
        std::string all = buf_.take(buf_.size());
        maybe_resume();
        co_return all;
    }
    if (buf_.empty() && !eof_) co_await data_waiter(*this, "read", false);
    std::string data = buf_.take(std::min(static_cast<std::size_t>(n), buf_.size()));
    maybe_resume();
    co_return data;
}

coroutine<std::string> stream_reader::readline() {
    if (exception_) std::rethrow_exception(exception_);
    const std::span<const std::string> seps(&newline(), 1);
    for (;;) {
        if (auto line = try_until(seps, true)) co_return std::move(*line);
        co_await data_waiter(*this, "readuntil", false);
    }
}

coroutine<std::optional<std::string>> stream_reader::anext() {
    if (exception_) std::rethrow_exception(exception_);
    const std::span<const std::string> seps(&newline(), 1);
    for (;;) {
        if (auto line = try_until(seps, true)) {
            if (line->empty()) co_return std::nullopt;
            co_return std::move(line);
        }
        co_await data_waiter(*this, "readuntil", false);
    }
}

coroutine<std::string> stream_reader::readuntil(std::string separator) {
    if (separator.empty()) throw value_error("Separator should be at least one-byte string");
    if (exception_) std::rethrow_exception(exception_);
    const std::span<const std::string> seps(&separator, 1);
    for (;;) {
        if (auto chunk = try_until(seps, false)) co_return std::move(*chunk);
        co_await data_waiter(*this, "readuntil", false);
    }
}

coroutine<std::string> stream_reader::readuntil(std::vector<std::string> separators) {
    // The shortest separator first, so it wins a tie (CPython's stable sort
    // by len; an insertion sort here: there are few, and clang 19 rejects
    // libstdc++ 12's std::stable_sort as deprecated).
    for (std::size_t i = 1; i < separators.size(); ++i) {
        for (std::size_t j = i; j > 0 && separators[j - 1].size() > separators[j].size(); --j) {
            std::swap(separators[j - 1], separators[j]);
        }
    }
    if (separators.empty()) throw value_error("Separator should contain at least one element");
    if (separators.front().empty()) throw value_error("Separator should be at least one-byte string");
    if (exception_) std::rethrow_exception(exception_);
    const std::span<const std::string> seps(separators);
    for (;;) {
        if (auto chunk = try_until(seps, false)) co_return std::move(*chunk);
        co_await data_waiter(*this, "readuntil", false);
    }
}

coroutine<std::string> stream_reader::readexactly(std::ptrdiff_t n) {
    if (n < 0) throw value_error("readexactly size can not be less than zero");
    if (exception_) std::rethrow_exception(exception_);
    if (n == 0) co_return std::string();
    const auto want = static_cast<std::size_t>(n);
    bool waited = false;
    // The bytes stay buffered until all n are there: nothing to lose if cancelled.
    while (buf_.size() < want) {
        if (eof_) {
            std::string partial = buf_.take(buf_.size());
            throw incomplete_read_error(std::move(partial), want);
        }
        co_await data_waiter(*this, "readexactly", true);
        waited = true;
    }
    const std::size_t before = buf_.size();
    std::string data = buf_.take(want);
    if (waited) catch_up_pause(before);
    maybe_resume();
    co_return data;
}

}  // namespace pyco
