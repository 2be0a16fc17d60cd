// Fault injection's configuration and its delaying wrapper backend (see
// include/pyco/detail/faults.hpp for what is injected where, and why).
//
// The wrapper (fault_backend) decorates any backend, and exists only in a
// loop with fk_delay: it stands between the backend and each issuer by
// swapping op.on_complete for its trampoline while the op is the backend's.
// Invariants:
//   - `originals_` maps every op submitted through it and not yet finished
//     to the issuer's callback; the final completion (more == false) gives
//     the callback back to the op before anything else, so the issuer may
//     submit the op again from inside it.
//   - Only final completions are held (a multishot op's earlier ones carry
//     views valid during the callback only, and order must be kept), and
//     only those with no data to look at (res <= 0, or a one-shot result).
//   - A held completion is a ready-ring entry that re-queues itself for a
//     few turns, then calls the issuer's callback: from the ready phase, as
//     the seam promises. The inner backend has finished the op already, so
//     a cancel meanwhile is a no-op there, and the held result is the final
//     completion the seam promises after a cancel.
//   - An inline result of submit() may be turned into a held completion
//     (the seam lets any operation complete later), except io_flag_try's,
//     which must be inline, and connect's (connect() is made in submit by
//     both backends, and its own error is told from a later one).
//   - At loop close, held entries run with run == false and only free
//     themselves: no callback runs on a closing loop (as the backends).
#include <pyco/detail/faults.hpp>

#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <mutex>
#include <string>
#include <unordered_map>

#include <pyco/detail/io_backend.hpp>
#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>

namespace pyco::detail {

std::atomic<bool> g_faults_on{false};
thread_local fault_injector* tls_faults = nullptr;

namespace {
std::mutex totals_mutex;
fault_counts totals;
}  // namespace

fault_counts fault_totals() {
    std::lock_guard<std::mutex> lock(totals_mutex);
    return totals;
}

void add_fault_totals(const fault_counts& c) {
    std::lock_guard<std::mutex> lock(totals_mutex);
    totals.decisions += c.decisions;
    totals.accept_calls += c.accept_calls;
    for (std::size_t i = 0; i < std::size(c.injected); ++i) totals.injected[i] += c.injected[i];
}

namespace {

struct kind_name {
    const char* name;
    std::uint32_t kinds;
};
constexpr kind_name kind_names[] = {
    {"eagain", fk_eagain}, {"eintr", fk_eintr},     {"short", fk_short},     {"delay", fk_delay},
    {"reset", fk_reset},   {"epipe", fk_epipe},     {"enobufs", fk_enobufs}, {"enomem", fk_enomem},
    {"emfile", fk_emfile}, {"benign", fk_benign},   {"fatal", fk_fatal},     {"all", fk_benign | fk_fatal},
};

[[noreturn]] void bad(std::string_view spec, std::string_view why) {
    std::string m = "PYCO_FAULTS: ";
    m += why;
    m += " in '";
    m += spec;
    m += '\'';
    throw value_error(m);
}

}  // namespace

fault_config parse_faults(std::string_view spec) {
    fault_config c;
    bool in_kinds = false;
    std::size_t pos = 0;
    while (pos <= spec.size()) {
        std::size_t comma = spec.find(',', pos);
        if (comma == std::string_view::npos) comma = spec.size();
        std::string_view item = spec.substr(pos, comma - pos);
        pos = comma + 1;
        if (item.empty()) continue;
        const std::size_t eq = item.find('=');
        std::string_view key = eq == std::string_view::npos ? std::string_view{} : item.substr(0, eq);
        std::string_view value = eq == std::string_view::npos ? item : item.substr(eq + 1);
        if (key == "seed") {
            in_kinds = false;
            char* end = nullptr;
            std::string v(value);
            c.seed = std::strtoull(v.c_str(), &end, 10);
            if (v.empty() || *end) bad(spec, "bad seed");
        } else if (key == "rate") {
            in_kinds = false;
            char* end = nullptr;
            std::string v(value);
            c.rate = std::strtod(v.c_str(), &end);
            if (v.empty() || *end || !(c.rate >= 0 && c.rate <= 1)) bad(spec, "rate must be in [0, 1]");
        } else if (key == "kinds" || (key.empty() && in_kinds)) {
            if (key == "kinds") c.kinds = 0;
            in_kinds = true;
            bool found = false;
            for (const auto& k : kind_names) {
                if (value == k.name) {
                    c.kinds |= k.kinds;
                    found = true;
                }
            }
            if (!found) bad(spec, "unknown fault kind");
        } else {
            bad(spec, "unknown field");
        }
    }
    return c;
}

void trace_fault(std::uint32_t kind, std::uint64_t decision) {
    for (const auto& k : kind_names) {
        if (k.kinds == kind) std::fprintf(stderr, "pyco fault #%llu: %s\n", static_cast<unsigned long long>(decision), k.name);
    }
}

std::string describe(const fault_config& c) {
    std::string s = "seed=" + std::to_string(c.seed);
    s += ",rate=";
    s += std::to_string(c.rate);
    s += ",kinds=";
    bool first = true;
    for (const auto& k : kind_names) {
        if (k.kinds & (k.kinds - 1)) continue;  // the single kinds only
        if (!(c.kinds & k.kinds)) continue;
        if (!first) s += ',';
        first = false;
        s += k.name;
    }
    return s;
}

namespace {

class fault_backend final : public io_backend {
public:
    fault_backend(std::unique_ptr<io_backend> inner, ready_ring& ready) : inner_(std::move(inner)), ready_(&ready) {}

    const char* name() const noexcept override { return inner_->name(); }
    bool supports(io_opcode code) const noexcept override { return inner_->supports(code); }
    void cancel(io_op& op) noexcept override { inner_->cancel(op); }
    void close_fd(int fd) noexcept override { inner_->close_fd(fd); }
    void wait(std::optional<std::chrono::nanoseconds> timeout) override { inner_->wait(timeout); }
    void wakeup() noexcept override { inner_->wakeup(); }
    std::size_t pending() const noexcept override { return inner_->pending(); }

    io_status submit(io_op& op) override {
        if (op.flags & io_flag_try) return inner_->submit(op);
        const io_op::callback cb = op.on_complete;
        originals_[&op] = cb;
        op.on_complete = &trampoline;
        io_status s;
        try {
            s = inner_->submit(op);
        } catch (...) {
            op.on_complete = cb;
            originals_.erase(&op);
            throw;
        }
        if (s == io_status::pending) return s;
        op.on_complete = cb;
        originals_.erase(&op);
        fault_injector* f = tls_faults;
        // Not connect's: both backends call connect() inside submit, and
        // its own error is told from a later one by that (sock_connect's
        // message, as CPython's).
        if (f && op.code != io_opcode::connect && f->pick(fk_delay)) {
            hold(op, cb, op.result);
            return io_status::pending;
        }
        return s;
    }

private:
    struct held {
        fault_backend* self;
        io_op* op;
        io_op::callback cb;
        long res;
        int turns;
    };

    void hold(io_op& op, io_op::callback cb, long res) {
        fault_injector* f = tls_faults;
        auto* h = new held{this, &op, cb, res, 1 + static_cast<int>(f ? f->below(4) : 0)};
        ready_->push({&held_entry, h, nullptr});
    }

    static void held_entry(void* a, void*, bool run) {
        auto* h = static_cast<held*>(a);
        if (run && --h->turns > 0) {
            h->self->ready_->push({&held_entry, h, nullptr});
            return;
        }
        std::unique_ptr<held> own(h);
        if (!run) return;  // the loop is closing: its issuers go with it
        io_result r;
        r.res = h->res;
        h->cb(*h->op, r);
    }

    static void trampoline(io_op& op, const io_result& r) {
        fault_injector* f = tls_faults;
        auto* self = static_cast<fault_backend*>(f->wrapper);  // run_forever set tls_faults
        auto it = self->originals_.find(&op);
        const io_op::callback cb = it->second;
        if (!r.more) {
            self->originals_.erase(it);
            op.on_complete = cb;
            // Views into a receive buffer are valid during this call only.
            const bool viewless = r.data == nullptr || r.res <= 0;
            if (viewless && f->pick(fk_delay)) {
                self->hold(op, cb, r.res);
                return;
            }
        }
        cb(op, r);
    }

    std::unique_ptr<io_backend> inner_;
    ready_ring* ready_;
    std::unordered_map<io_op*, io_op::callback> originals_;
};

}  // namespace

std::unique_ptr<io_backend> make_fault_backend(std::unique_ptr<io_backend> inner, ready_ring& ready) {
    return std::make_unique<fault_backend>(std::move(inner), ready);
}

}  // namespace pyco::detail
