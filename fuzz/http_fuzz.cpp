// Fuzz target: the HTTP example's request parsing (examples/http,
// http_example::http_protocol) over an in-memory transport.
//
// The input decodes to a chunking and a byte stream (see decode()). The
// stream is fed twice, to two fresh protocols: whole, in one data_received,
// and cut into the chunks; feeding stops once the protocol closes its
// transport (a real transport stops reading then). Checked:
//   - what is written is a sequence of whole responses the example defines
//     (200 with body, 200 for HEAD, 405, 400), nothing else, nothing cut;
//   - nothing after a 400, and close() after a 400;
//   - nothing written after close() (fake_transport checks);
//   - the protocol closes only after a 400 or a request that asks for it
//     (some "close" in the stream, or HTTP/1.0);
//   - at most one response per complete request head ("\r\n\r\n");
//   - the chunked feed gives the same responses and the same close as the
//     whole one: how TCP cuts the stream must not change the answer.
// Any difference aborts with both outputs.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "../examples/http/http_protocol.hpp"
#include "fake_transport.hpp"
#include "fuzz_input.hpp"

namespace {

struct fuzz_case {
    std::vector<std::size_t> cuts;  // chunk lengths, cycled
    bool eof = false;
    std::string stream;
};

// Byte 0: how many chunk lengths follow (0..15) and whether EOF ends the
// stream; then the lengths (1..256); the rest is the stream, where 0xFF c x
// stands for (c % 80 + 1) * 256 copies of x, so that small inputs reach the
// 16 KiB head limit.
fuzz_case decode(const std::uint8_t* data, std::size_t size) {
    pyco_fuzz::input in(data, size);
    fuzz_case c;
    const std::uint8_t b = in.byte();
    c.eof = (b & 0x10) != 0;
    const std::size_t n = b & 0x0f;
    for (std::size_t i = 0; i < n; ++i) c.cuts.push_back(1 + static_cast<std::size_t>(in.byte()));
    if (c.cuts.empty()) c.cuts.push_back(7);
    const std::string raw = in.rest();
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (static_cast<unsigned char>(raw[i]) == 0xFF && i + 2 < raw.size()) {
            const std::size_t count = (static_cast<std::size_t>(static_cast<unsigned char>(raw[i + 1])) % 80 + 1) * 256;
            c.stream.append(count, raw[i + 2]);
            i += 2;
        } else {
            c.stream.push_back(raw[i]);
        }
    }
    return c;
}

struct run_result {
    std::string written;
    bool closed = false;
};

void feed(http_example::http_protocol& p, std::string_view bytes) {
    p.data_received(std::as_bytes(std::span<const char>(bytes.data(), bytes.size())));
}

run_result run(const fuzz_case& c, bool chunked) {
    auto t = std::make_shared<pyco_fuzz::fake_transport>();
    auto p = std::make_shared<http_example::http_protocol>();
    t->set_protocol(p);
    p->connection_made(*t);
    if (!chunked) {
        if (!c.stream.empty()) feed(*p, c.stream);
    } else {
        std::size_t pos = 0;
        std::size_t k = 0;
        while (pos < c.stream.size() && !t->closed) {
            const std::size_t len = std::min(c.cuts[k++ % c.cuts.size()], c.stream.size() - pos);
            feed(*p, std::string_view(c.stream).substr(pos, len));
            pos += len;
        }
    }
    const bool closed = t->closed;  // by the protocol, not by the EOF below
    if (c.eof && !t->closed) {
        if (!p->eof_received()) t->close();
    }
    p->connection_lost(nullptr);
    return {t->written, closed};
}

[[noreturn]] void report(const char* what, const fuzz_case& c, const run_result& whole, const run_result& chunked) {
    std::fprintf(stderr, "http fuzz: %s\nstream (%zu bytes): %.400s\nwhole (closed=%d): %.600s\nchunked (closed=%d): %.600s\n",
                 what, c.stream.size(), c.stream.c_str(), whole.closed, whole.written.c_str(), chunked.closed,
                 chunked.written.c_str());
    std::abort();
}

// Splits the output into the known responses; false when something else
// is there. Sets saw_400 when the last one is a 400 (and checks none
// follows it).
bool split(std::string_view out, std::size_t& n, bool& saw_400) {
    using namespace http_example;
    n = 0;
    saw_400 = false;
    while (!out.empty()) {
        if (saw_400) return false;
        std::string_view r;
        for (std::string_view known : {ok_response, ok_head, not_allowed, bad_request}) {
            // ok_head is a prefix of ok_response: try the longer first.
            if (out.substr(0, known.size()) == known) {
                r = known;
                break;
            }
        }
        if (r.empty()) return false;
        if (r == bad_request) saw_400 = true;
        out.remove_prefix(r.size());
        ++n;
    }
    return true;
}

std::size_t count(std::string_view s, std::string_view what) {
    std::size_t n = 0;
    for (std::size_t p = s.find(what); p != std::string_view::npos; p = s.find(what, p + 1)) ++n;
    return n;
}

bool mentions_close(std::string_view s) {
    std::string lower(s);
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return lower.find("close") != std::string::npos || s.find("HTTP/1.0") != std::string_view::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const fuzz_case c = decode(data, size);
    const run_result whole = run(c, false);
    const run_result chunked = run(c, true);
    for (const run_result* r : {&whole, &chunked}) {
        std::size_t n = 0;
        bool saw_400 = false;
        if (!split(r->written, n, saw_400)) report("output is not a sequence of whole responses", c, whole, chunked);
        if (saw_400 && !r->closed) report("400 without close()", c, whole, chunked);
        if (r->closed && !saw_400 && !mentions_close(c.stream)) {
            report("closed without a 400 nor a request asking for it", c, whole, chunked);
        }
        if (n > count(c.stream, "\r\n\r\n") + (saw_400 ? 1 : 0)) {
            report("more responses than request heads", c, whole, chunked);
        }
    }
    if (whole.written != chunked.written || whole.closed != chunked.closed) {
        report("chunked feed differs from the whole feed", c, whole, chunked);
    }
    return 0;
}
