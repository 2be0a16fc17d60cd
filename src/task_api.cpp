#include <pyco/task.hpp>

namespace pyco {

namespace {

void stop_loop_cb(void* loop, void* fut, bool run) {
    auto f = detail::intrusive_ptr<detail::future_base>::adopt(static_cast<detail::future_base*>(fut));
    if (run && fut) static_cast<event_loop*>(loop)->stop();
}

}  // namespace

namespace detail {

void check_can_run(event_loop& loop) {
    if (loop.is_closed()) throw runtime_error("Event loop is closed");
    if (loop.is_running()) throw runtime_error("This event loop is already running");
    if (running_loop() != nullptr) throw runtime_error("Cannot run the event loop while another loop is running");
}

void run_until_done(event_loop& loop, future_base& f) {
    if (f.loop_if_alive() != &loop) throw value_error("The future belongs to a different loop than the one specified");
    intrusive_ptr<future_base> keep(&f);
    const std::uint32_t id = f.add_callback(&stop_loop_cb, &loop);
    try {
        loop.run_forever();
    } catch (...) {
        f.remove_callback(id);
        throw;
    }
    f.remove_callback(id);
    if (!f.done()) throw runtime_error("Event loop stopped before Future completed.");
}

}  // namespace detail

void any_task::print_stack(std::FILE* out) const {
    std::string text = "Stack for " + describe() + " (most recent call last):\n";
    const auto frames = get_stack();
    if (frames.empty()) text += "No stack for " + describe() + "\n";
    for (const frame_info& f : frames) {
        text += "  File \"" + f.file + "\", line " + std::to_string(f.line) + ", in " + f.function + "\n";
    }
    std::fputs(text.c_str(), out);
}

any_task current_task() { return any_task(detail::task_base::current()); }

std::vector<any_task> all_tasks(event_loop& loop) {
    std::vector<any_task> out;
    detail::list_link& head = loop.live_tasks();
    for (detail::list_link* l = head.next; l != &head; l = l->next) {
        detail::task_base* t = detail::task_base::from_link(l);
        if (!t->done()) out.emplace_back(t);
    }
    return out;
}

std::vector<any_task> all_tasks() { return all_tasks(get_running_loop()); }

}  // namespace pyco
