#include <pyco/sleep.hpp>

namespace pyco {

void sleep_awaiter::await_suspend(std::coroutine_handle<> h) {
    task_ = detail::task_base::current();
    if (task_ == nullptr) throw runtime_error("sleep() can only be awaited inside a task");
    if (d_ <= event_loop::duration::zero()) {
        task_->yield_once(h);
        return;
    }
    event_loop& loop = task_->get_loop();
    fut_ = detail::intrusive_ptr<state>::adopt(new state(loop));
    timer_ = loop.call_later(d_, [f = fut_] {
        if (!f->done()) f->set_result();
    });
    task_->wait_on(*fut_, h);
}

void sleep_awaiter::await_resume() {
    timer_.cancel();
    if (task_) task_->raise_throw_in();
    if (fut_) fut_->result();  // cancelled_error if the sleep was cancelled
}

}  // namespace pyco
