// Private to src/: the name pyco prints for a coroutine, from what
// std::source_location::function_name() gives.
//
// CPython names a coroutine by its qualified name ("handle_request",
// "Server.serve"); the compiler gives a whole signature, spelled differently
// by GCC and clang. Both are reduced to the same short form, so that task
// reprs, print_stack and get_stack read alike whichever compiler built them:
//   GCC   "pyco::coroutine<void> {anonymous}::ns::f(int) const" -> "ns::f"
//   clang "pyco::coroutine<void> (anonymous namespace)::ns::f(int)" -> "ns::f"
//   GCC   "ns::g()::<lambda(int)>"                    -> "ns::g()::<lambda>"
//   clang "auto ns::g()::(anonymous class)::operator()(int) const"
//                                                     -> "ns::g()::<lambda>"
// Anonymous namespaces say nothing to a reader and are dropped; template
// argument lists ("[with T = int]") and the return type are dropped.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pyco::detail {

inline std::string short_function_name(std::string_view full) {
    std::string s(full);
    auto erase_all = [&s](std::string_view what, std::string_view with) {
        for (std::size_t at = s.find(what); at != std::string::npos; at = s.find(what, at)) {
            s.replace(at, what.size(), with);
            at += with.size();
        }
    };
    erase_all("{anonymous}::", "");
    erase_all("(anonymous namespace)::", "");
    erase_all("::(anonymous class)::operator()", "::<lambda>");  // clang's lambda
    // Template arguments, appended after the signature: " [with T = int]".
    if (!s.empty() && s.back() == ']') {
        if (std::size_t at = s.rfind(" ["); at != std::string::npos) s.erase(at);
    }
    // GCC's lambda: "<lambda(int)>" ends the name and has no parameter list.
    if (std::size_t at = s.rfind("::<lambda("); at != std::string::npos && s.back() == '>') {
        s.replace(at + 2, std::string::npos, "<lambda>");
    }
    // The parameter list: the last ')' followed only by qualifiers.
    if (std::size_t close = s.rfind(')'); close != std::string::npos &&
                                          s.find_first_not_of(" constvolatilexp&", close + 1) == std::string::npos) {
        int depth = 0;
        for (std::size_t i = close + 1; i-- > 0;) {
            if (s[i] == ')') ++depth;
            else if (s[i] == '(' && --depth == 0) {
                s.erase(i);
                break;
            }
        }
    }
    // The return type, if any: up to the last space outside <> and ().
    int depth = 0;
    for (std::size_t i = s.size(); i-- > 0;) {
        const char c = s[i];
        if (c == '>' || c == ')') ++depth;
        else if (c == '<' || c == '(') --depth;
        else if (c == ' ' && depth == 0) return s.substr(i + 1);
    }
    return s;
}

}  // namespace pyco::detail
