// Fuzz target: stream_reader's framing against a model of CPython's.
//
// The input decodes to a limit, a list of chunks and a list of reads
// (readline, readuntil with one or several separators, readexactly,
// read(n), read(-1)). The chunks are fed to a real pyco::stream_reader on a
// real loop, one chunk each time the reading task is blocked waiting for
// data, then EOF; the reads run in a task. The model (below) is CPython
// 3.13's StreamReader algorithm written plainly over a std::string, fed the
// same way: a chunk whenever a read cannot finish. After every read both
// sides must agree on the result or the error (type, message, consumed,
// partial, expected) and on the bytes left in the buffer. Any difference
// aborts with both traces.
//
// Why "one chunk while blocked" is exact: a read that can finish never
// waits, so the chunks a read sees are decided by the reads before it, in
// both implementations alike; the limit errors depend on that (a separator
// beyond the limit is "found, but chunk is longer than limit" when it
// arrives in the same chunk, "not found, and chunk exceed the limit" when
// the buffer outgrows the limit first).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <algorithm>
#include <utility>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/net/stream_reader.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>

#include "fuzz_input.hpp"

namespace {

enum class op_kind { readline, readuntil, readuntil_many, readexactly, read };

struct op {
    op_kind kind;
    std::vector<std::string> seps;  // readuntil, readuntil_many
    std::ptrdiff_t n = 0;           // readexactly, read
};

struct fuzz_case {
    std::size_t limit;
    std::deque<std::string> chunks;
    std::vector<op> ops;
};

const std::string alphabet = "ab\n\rx";

fuzz_case decode(const std::uint8_t* data, std::size_t size) {
    pyco_fuzz::input in(data, size);
    fuzz_case c;
    c.limit = 1 + in.below(24);
    const std::size_t nops = 1 + in.below(16);
    for (std::size_t i = 0; i < nops; ++i) {
        op o{static_cast<op_kind>(in.below(5)), {}, 0};
        if (o.kind == op_kind::readuntil) o.seps.push_back(in.text(1 + in.below(3), alphabet));
        if (o.kind == op_kind::readuntil_many) {
            const std::size_t k = 1 + in.below(3);
            for (std::size_t j = 0; j < k; ++j) o.seps.push_back(in.text(1 + in.below(3), alphabet));
        }
        if (o.kind == op_kind::readexactly) o.n = static_cast<std::ptrdiff_t>(in.below(40));
        if (o.kind == op_kind::read) o.n = static_cast<std::ptrdiff_t>(in.below(40)) - 4;  // < 0: read(-1)
        c.ops.push_back(std::move(o));
    }
    // The rest of the input is the stream, cut into chunks: each chunk's
    // length is one byte, then that many bytes (through the alphabet).
    while (!in.empty()) c.chunks.push_back(in.text(in.below(32), alphabet));
    return c;
}

// ---- the model: CPython's StreamReader, plainly --------------------------

struct model {
    std::string buf;
    bool eof = false;
    std::size_t limit;
    std::deque<std::string> chunks;

    // _wait_for_data: the next non-empty chunk, or EOF after the last.
    void wait_for_data() {
        while (!chunks.empty()) {
            std::string c = std::move(chunks.front());
            chunks.pop_front();
            if (!c.empty()) {
                buf += c;
                return;
            }
        }
        eof = true;
    }

    // readuntil for one separator (3.12) and for several (3.13): the
    // shortest chunk ending in a separator; on a tie the shorter separator.
    std::string readuntil(std::vector<std::string> seps) {
        // sorted(separator, key=len): stable, by length. (An insertion sort:
        // std::stable_sort's temporary buffer is deprecated in libstdc++ 12,
        // which clang warns about.)
        for (std::size_t i = 1; i < seps.size(); ++i) {
            for (std::size_t j = i; j > 0 && seps[j].size() < seps[j - 1].size(); --j) std::swap(seps[j], seps[j - 1]);
        }
        const std::size_t min_len = seps.front().size(), max_len = seps.back().size();
        std::size_t offset = 0, match_start = 0, match_end = 0;
        for (;;) {
            if (buf.size() >= offset + min_len) {
                bool found = false;
                for (const std::string& s : seps) {
                    const std::size_t at = buf.find(s, offset);
                    if (at != std::string::npos && (!found || at + s.size() < match_end)) {
                        found = true;
                        match_start = at;
                        match_end = at + s.size();
                    }
                }
                if (found) break;
                offset = buf.size() + 1 > max_len ? buf.size() + 1 - max_len : 0;
                if (offset > limit) throw pyco::limit_overrun_error("Separator is not found, and chunk exceed the limit", offset);
            }
            if (eof) {
                std::string partial = std::move(buf);
                buf.clear();
                throw pyco::incomplete_read_error(partial, std::nullopt);
            }
            wait_for_data();
        }
        if (match_start > limit) throw pyco::limit_overrun_error("Separator is found, but chunk is longer than limit", match_start);
        std::string chunk = buf.substr(0, match_end);
        buf.erase(0, match_end);
        return chunk;
    }

    std::string readline() {
        try {
            std::vector<std::string> nl{"\n"};
            return readuntil(nl);
        } catch (const pyco::incomplete_read_error& e) {
            return e.partial();
        } catch (const pyco::limit_overrun_error& e) {
            if (e.consumed() < buf.size() && buf[e.consumed()] == '\n') {  // buffer.startswith(sep, consumed)
                buf.erase(0, e.consumed() + 1);
            } else {
                buf.clear();
            }
            throw pyco::value_error(e.what());
        }
    }

    std::string readexactly(std::size_t n) {
        while (buf.size() < n) {
            if (eof) {
                std::string partial = std::move(buf);
                buf.clear();
                throw pyco::incomplete_read_error(partial, n);
            }
            wait_for_data();
        }
        std::string data = buf.substr(0, n);
        buf.erase(0, n);
        return data;
    }

    std::string read(std::ptrdiff_t n) {
        if (n == 0) return "";
        if (n < 0) {
            while (!eof) wait_for_data();
            std::string all = std::move(buf);
            buf.clear();
            return all;
        }
        if (buf.empty() && !eof) wait_for_data();
        std::string data = buf.substr(0, static_cast<std::size_t>(n));
        buf.erase(0, data.size());
        return data;
    }
};

std::string show(const std::string& s) {
    std::string out = "\"";
    for (char ch : s) {
        if (ch == '\n') out += "\\n";
        else if (ch == '\r') out += "\\r";
        else out += ch;
    }
    return out + "\"";
}

// A read's error as text: compared whole, with everything it carries.
std::string describe(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const pyco::incomplete_read_error& x) {
        return "incomplete partial=" + show(x.partial()) +
               " expected=" + (x.expected() ? std::to_string(*x.expected()) : std::string("None"));
    } catch (const pyco::limit_overrun_error& x) {
        return std::string("overrun '") + x.what() + "' consumed=" + std::to_string(x.consumed());
    } catch (const pyco::value_error& x) {
        return std::string("value_error '") + x.what() + "'";
    }
    // Anything else escapes: a crash the fuzzer reports.
}

std::vector<std::string> run_model(const fuzz_case& c) {
    model m{{}, false, c.limit, c.chunks};
    std::vector<std::string> trace;
    for (const op& o : c.ops) {
        std::string r;
        try {
            switch (o.kind) {
                case op_kind::readline: r = "ok " + show(m.readline()); break;
                case op_kind::readuntil:
                case op_kind::readuntil_many: r = "ok " + show(m.readuntil(o.seps)); break;
                case op_kind::readexactly: r = "ok " + show(m.readexactly(static_cast<std::size_t>(o.n))); break;
                case op_kind::read: r = "ok " + show(m.read(o.n)); break;
            }
        } catch (...) {
            r = describe(std::current_exception());
        }
        trace.push_back(r + " buffer=" + show(m.buf));
    }
    return trace;
}

// ---- the real reader ----------------------------------------------------------

// One read, awaited; its outcome as text (the same shape as the model's).
pyco::coroutine<std::string> real_op(pyco::stream_reader& r, const op& o) {
    try {
        std::string data;
        switch (o.kind) {
            case op_kind::readline: data = co_await r.readline(); break;
            case op_kind::readuntil: data = co_await r.readuntil(o.seps.front()); break;
            case op_kind::readuntil_many: {
                std::vector<std::string> seps = o.seps;
                data = co_await r.readuntil(std::move(seps));
                break;
            }
            case op_kind::readexactly: data = co_await r.readexactly(o.n); break;
            case op_kind::read: data = co_await r.read(o.n); break;
        }
        co_return "ok " + show(data);
    } catch (...) {
        co_return describe(std::current_exception());
    }
}

pyco::coroutine<void> reads(pyco::stream_reader& r, const fuzz_case& c, std::vector<std::string>& trace,
                            bool& done) {
    for (const op& o : c.ops) {
        std::string out = co_await real_op(r, o);
        trace.push_back(out + " buffer=" + show(std::string(r.buffer())));
    }
    done = true;
}

// Feeds a chunk only while the reads are blocked waiting for data.
pyco::coroutine<void> feeder(pyco::stream_reader& r, std::deque<std::string> chunks, const bool& done) {
    for (;;) {
        while (!done && !r.waiting()) co_await pyco::sleep(std::chrono::seconds(0));
        if (done) co_return;
        // Empty chunks do not wake a read (nothing was fed): skip them, as
        // the model does.
        while (!chunks.empty() && chunks.front().empty()) chunks.pop_front();
        if (chunks.empty()) {
            r.feed_eof();
            co_return;
        }
        r.feed_data(chunks.front());
        chunks.pop_front();
    }
}

std::vector<std::string> run_real(const fuzz_case& c) {
    pyco::event_loop loop;
    pyco::stream_reader r(static_cast<std::ptrdiff_t>(c.limit));
    std::vector<std::string> trace;
    bool done = false;
    auto fed = loop.create_task(feeder(r, c.chunks, done));
    loop.run_until_complete(reads(r, c, trace, done));
    loop.run_until_complete(std::move(fed));
    return trace;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const fuzz_case c = decode(data, size);
    const std::vector<std::string> expected = run_model(c);
    const std::vector<std::string> got = run_real(c);
    if (expected != got) {
        std::fprintf(stderr, "stream_reader differs from the model (limit %zu)\n", c.limit);
        for (std::size_t i = 0; i < std::max(expected.size(), got.size()); ++i) {
            std::fprintf(stderr, "  op %zu\n    model: %s\n    pyco:  %s\n", i,
                         i < expected.size() ? expected[i].c_str() : "-", i < got.size() ? got[i].c_str() : "-");
        }
        std::abort();
    }
    return 0;
}
