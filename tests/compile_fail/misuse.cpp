// Misuses the compiler must refuse. Compiled without PYCO_MISUSE, the file
// must build; with it, every line marked "CASE <name>" must draw its own
// diagnostic (check.cmake). Each is a forgotten co_await, a thrown-away
// awaitable or guard, or (GCC 12) a lambda GCC would destroy twice.
#include <pyco/pyco.hpp>

#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

pyco::coroutine<int> child() { co_return 1; }
pyco::async_generator<int> numbers() { co_yield 1; }

pyco::coroutine<void> misuse() {
    pyco::lock lk;
    pyco::semaphore sem;
    pyco::bounded_semaphore bsem;
    pyco::condition cv;
    pyco::event ev;
    pyco::queue<int> q;
    pyco::barrier bar(1);
    pyco::task_group tg;
    auto ag = numbers();
    auto tk = pyco::create_task(child());
    std::vector<pyco::task<int>> tasks{tk};
    auto named_body = [](pyco::task_group&) -> pyco::coroutine<void> { co_return; };
    (void)named_body;
#if defined(PYCO_MISUSE)
    child();                                         // CASE coroutine
    pyco::sleep(1s);                                 // CASE sleep
    pyco::gather(child(), child());                  // CASE gather
    pyco::gather(tasks);                             // CASE gather_range
    pyco::wait(tasks);                               // CASE wait
    pyco::wait_for(child(), 1s);                     // CASE wait_for
    pyco::shield(tk);                                // CASE shield
    pyco::as_completed(tasks);                       // CASE as_completed
    pyco::timeout(1s);                               // CASE timeout_temporary
    pyco::timeout_at(std::nullopt);                  // CASE timeout_at
    tg.exit();                                       // CASE task_group_exit
    tg.aexit(nullptr);                               // CASE task_group_aexit
    pyco::async_with(tg, named_body);                // CASE async_with
    lk.acquire();                                    // CASE lock_acquire
    lk.scoped();                                     // CASE lock_scoped
    sem.acquire();                                   // CASE semaphore_acquire
    bsem.scoped();                                   // CASE bounded_semaphore_scoped
    cv.wait();                                       // CASE condition_wait
    ev.wait();                                       // CASE event_wait
    q.get();                                         // CASE queue_get
    q.put(1);                                        // CASE queue_put
    q.join();                                        // CASE queue_join
    bar.wait();                                      // CASE barrier_wait
    ag.anext();                                      // CASE anext
    ag.aclose();                                     // CASE aclose
    pyco::to_thread([] { return 1; });               // CASE to_thread
    pyco::get_running_loop().create_future<int>();   // CASE create_future
#if defined(__clang__)  // GCC does not warn about a discarded co_await result
    co_await lk.scoped();                            // CASE guard_dropped
#endif
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ <= 12
    // GCC 12 would destroy these closures twice (their std::string capture:
    // a double free); async_with and wait_for refuse them.
    std::string tag = "x";
    co_await pyco::async_with(tg, [tag](pyco::task_group&) -> pyco::coroutine<void> { co_return; });  // CASE async_with_inline_lambda
    co_await cv.wait_for([tag] { return !tag.empty(); });  // CASE wait_for_inline_lambda
#endif
#endif
    co_await tk;
}

}  // namespace

int main() { pyco::run(misuse()); }
