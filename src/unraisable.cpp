#include <pyco/unraisable.hpp>

#include <cstdio>
#include <string>
#include <system_error>
#include <typeinfo>

#include <pyco/errors.hpp>

#if __has_include(<cxxabi.h>)
#include <cxxabi.h>
#include <cstdlib>
#include <memory>
#define PYCO_HAVE_CXXABI 1
#endif

namespace pyco {

std::atomic<unraisable_hook_fn> unraisable_hook{&default_unraisable_hook};

namespace {

std::string demangle(const std::type_info& t) {
#ifdef PYCO_HAVE_CXXABI
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> name(
        abi::__cxa_demangle(t.name(), nullptr, nullptr, &status), &std::free);
    if (status == 0 && name) return name.get();
#endif
    return t.name();
}

}  // namespace

std::string describe_exception(const std::exception_ptr& e) {
    if (!e) return "(no exception)";
    try {
        std::rethrow_exception(e);
    } catch (const base_exception& x) {
        return demangle(typeid(x)) + ": " + x.what();
    } catch (const std::exception& x) {
        return demangle(typeid(x)) + ": " + x.what();
    } catch (...) {
#ifdef PYCO_HAVE_CXXABI
        if (const std::type_info* t = abi::__cxa_current_exception_type()) {
            return demangle(*t);
        }
#endif
        return "unknown exception";
    }
}

void default_unraisable_hook(const unraisable& u) noexcept {
    try {
        std::string text = std::string(u.err_msg) + ": " + std::string(u.object) + "\n" +
                           describe_exception(u.exception) + "\n";
        std::fputs(text.c_str(), stderr);
    } catch (...) {
        std::fputs("Exception ignored in unraisable hook\n", stderr);
    }
}

void report_unraisable(std::exception_ptr e, std::string_view object,
                       std::string_view err_msg) noexcept {
    unraisable u{std::move(e), err_msg, object};
    try {
        unraisable_hook.load(std::memory_order_acquire)(u);
    } catch (...) {
        std::fputs("Exception ignored in sys.unraisablehook\n", stderr);
    }
}

}  // namespace pyco
