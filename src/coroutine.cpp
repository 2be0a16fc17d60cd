#include <pyco/coroutine.hpp>

#include <string>
#include <string_view>
#include <utility>

namespace pyco::detail {

namespace {

// The coroutine's name as a reader knows it, from the compiler's
// signature: "pyco::coroutine<int> {anonymous}::ns::f(int) const" -> "ns::f".
// A lambda keeps the compiler's spelling ("main()::<lambda(int)>").
std::string coroutine_name(std::string_view s) {
    // Template arguments spelled out after the signature.
    if (auto with = s.find(" [with "); with != std::string_view::npos) s = s.substr(0, with);
    if (!s.empty() && s.back() == ']') {
        if (auto b = s.rfind(" ["); b != std::string_view::npos) s = s.substr(0, b);
    }
    // Qualifiers after the parameter list.
    for (std::string_view q : {" const", " volatile", " &&", " &", " noexcept"}) {
        while (s.size() > q.size() && s.substr(s.size() - q.size()) == q) s.remove_suffix(q.size());
    }
    // The parameter list: from the last ')' back to its '('.
    if (!s.empty() && s.back() == ')') {
        int depth = 0;
        for (std::size_t i = s.size(); i-- > 0;) {
            if (s[i] == ')') ++depth;
            if (s[i] == '(' && --depth == 0) {
                s = s.substr(0, i);
                break;
            }
        }
    }
    // The return type: up to the last space outside brackets.
    int depth = 0;
    std::size_t start = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (c == '<' || c == '(' || c == '{') ++depth;
        if (c == '>' || c == ')' || c == '}') --depth;
        if (c == ' ' && depth == 0) start = i + 1;
    }
    std::string name(s.substr(start));
    for (std::string_view anon : {"{anonymous}::", "(anonymous namespace)::"}) {
        for (auto at = name.find(anon); at != std::string::npos; at = name.find(anon)) name.erase(at, anon.size());
    }
    return name;
}

}  // namespace

void warn_never_awaited(const std::source_location& where) noexcept {
    try {
        // CPython: RuntimeWarning: coroutine 'f' was never awaited — always;
        // its debug mode adds where the coroutine was created.
        std::string text = "RuntimeWarning: coroutine '" + coroutine_name(where.function_name()) +
                           "' was never awaited";
        if (debug_enabled()) {
            text += "\nCoroutine defined at " + std::string(where.file_name()) + ":" + std::to_string(where.line()) +
                    " (" + where.function_name() + ")";
        }
        log_warning(text);
    } catch (...) {
    }
}

void refuse_await(const coro_frame& c, bool done, const coro_frame* awaiting) {
    // CPython's order: a finished coroutine cannot be reused; one that is
    // inside an await (ours: anywhere in the chain down to the running
    // frame, which CPython calls executing) is being awaited.
    if (done) throw runtime_error("cannot reuse already awaited coroutine");
    if (awaiting != nullptr) {
        for (const coro_frame* f = &c; f != nullptr; f = f->child_) {
            if (f == awaiting) throw value_error("coroutine already executing");
        }
    }
    throw runtime_error("coroutine is being awaited already");
}

void destroy_frame(std::coroutine_handle<> h, coro_frame* f) noexcept {
    // Down the chain of owned frames, turning each child_ link into a link
    // to the parent (the frames are about to go; nothing follows their
    // links again), so that the climb back needs no memory.
    coro_frame* below = f->child_;
    f->child_ = nullptr;
    coro_frame* deepest = nullptr;
    while (below != nullptr && below->owner_ != nullptr) {
        coro_frame* next = below->child_;
        below->child_ = deepest;
        deepest = below;
        below = next;
    }
    // Up again, destroying: each frame finds its child gone and its own
    // coroutine object (in the frame above) already emptied.
    while (deepest != nullptr) {
        coro_frame* above = deepest->child_;
        deepest->child_ = nullptr;
        std::coroutine_handle<> fh = std::exchange(*deepest->owner_, nullptr);
        deepest->owner_ = nullptr;
        fh.destroy();
        deepest = above;
    }
    h.destroy();
}

}  // namespace pyco::detail
