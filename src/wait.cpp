#include <pyco/wait.hpp>

#include <algorithm>
#include <memory>

namespace pyco::detail {

namespace {

// CPython's _release_waiter.
void release_waiter(future<void>& w) {
    if (!w.done()) w.set_result();
}

// _wait's closure: what _on_completion sees. Each registered callback
// holds one reference; the futures are held by wait_impl's frame.
struct wait_ctx final : refcounted {
    wait_ctx(event_loop& loop, std::size_t n, return_when w) : waiter(loop), counter(n), when(w) {}
    future<void> waiter;
    handle timer;
    std::size_t counter;
    return_when when;
};

void wait_completion_cb(void* ctx, void* fut, bool run) {
    auto c = intrusive_ptr<wait_ctx>::adopt(static_cast<wait_ctx*>(ctx));
    if (fut == nullptr) return;
    auto f = intrusive_ptr<future_base>::adopt(static_cast<future_base*>(fut));
    if (!run) return;
    if (c->counter > 0) --c->counter;
    // exception() marks it retrieved, as f.exception() does in CPython.
    if (c->counter == 0 || c->when == return_when::first_completed ||
        (c->when == return_when::first_exception && !f->cancelled() && f->exception())) {
        c->timer.cancel();
        release_waiter(c->waiter);
    }
}

// Removes wait_core's callbacks however it ends (returned, cancelled, or
// its frame destroyed with an abandoned task).
class wait_cleanup {
public:
    wait_cleanup(wait_ctx& c, const std::vector<future_base*>& fs) : c_(c), fs_(fs) { ids_.reserve(fs.size()); }
    wait_cleanup(const wait_cleanup&) = delete;
    wait_cleanup& operator=(const wait_cleanup&) = delete;
    ~wait_cleanup() {
        c_.timer.cancel();
        for (std::size_t i = 0; i < ids_.size(); ++i) fs_[i]->remove_callback(ids_[i]);
    }
    void added(std::uint32_t id) { ids_.push_back(id); }

private:
    wait_ctx& c_;
    const std::vector<future_base*>& fs_;
    std::vector<std::uint32_t> ids_;
};

void release_waiter_cb(void* ctx, void* fut, bool run) {
    std::unique_ptr<future<void>> w(static_cast<future<void>*>(ctx));
    if (fut == nullptr) return;
    auto f = intrusive_ptr<future_base>::adopt(static_cast<future_base*>(fut));
    if (run) release_waiter(*w);
}

class callback_remover {
public:
    callback_remover(future_base& f, std::uint32_t id) noexcept : f_(f), id_(id) {}
    callback_remover(const callback_remover&) = delete;
    callback_remover& operator=(const callback_remover&) = delete;
    ~callback_remover() { f_.remove_callback(id_); }

private:
    future_base& f_;
    std::uint32_t id_;
};

}  // namespace

coroutine<void> wait_core(std::vector<future_base*> fs, opt_duration timeout, return_when when) {
    event_loop& loop = get_running_loop();
    auto ctx = intrusive_ptr<wait_ctx>::adopt(new wait_ctx(loop, fs.size(), when));
    if (timeout) {
        future<void> w = ctx->waiter;
        auto fire = [w]() mutable { release_waiter(w); };
        ctx->timer = loop.call_later(*timeout, std::move(fire));
    }
    wait_cleanup cleanup(*ctx, fs);
    for (future_base* f : fs) {
        ctx->add_ref();  // the callback's
        std::uint32_t id = 0;
        try {
            id = f->add_callback(&wait_completion_cb, ctx.get());
        } catch (...) {
            ctx->release();
            throw;
        }
        cleanup.added(id);
    }
    future<void> waiter = ctx->waiter;
    co_await waiter;
}

coroutine<void> cancel_and_wait(intrusive_ptr<future_base> fut) {
    future<void> waiter(fut->get_loop());
    auto ctx = std::make_unique<future<void>>(waiter);
    const std::uint32_t id = fut->add_callback(&release_waiter_cb, ctx.get());
    ctx.release();
    callback_remover remover(*fut, id);
    fut->cancel();
    co_await waiter;
}

// ---------------------------------------------------------------- as_completed

as_completed_state::as_completed_state(event_loop& loop, std::vector<future_base*> todo, opt_duration timeout)
    : loop_(loop), size_(todo.size()) {
    todo_.reserve(todo.size());  // exact: the entries never move
    try {
        for (future_base* f : todo) {
            entry& e = todo_.emplace_back(entry{intrusive_ptr<future_base>(f), this, 0});
            ++remaining_;
            add_ref();  // the callback's
            try {
                e.id = f->add_callback(&completion_cb, &e);
            } catch (...) {
                release();
                e.fut = {};
                --remaining_;
                throw;
            }
        }
    } catch (...) {
        detach();
        throw;
    }
    if (!todo_.empty() && timeout) {
        auto fire = [this] { on_timeout(); };
        timer_ = loop.call_later(*timeout, std::move(fire));
    }
}

as_completed_state::~as_completed_state() { timer_.cancel(); }

void as_completed_state::completion_cb(void* ctx, void* fut, bool run) {
    auto& e = *static_cast<entry*>(ctx);
    auto s = intrusive_ptr<as_completed_state>::adopt(e.state);
    if (fut == nullptr) return;
    auto f = intrusive_ptr<future_base>::adopt(static_cast<future_base*>(fut));
    if (run) s->on_completion(e);
}

void as_completed_state::on_completion(entry& e) {
    if (remaining_ == 0) return;  // the timeout was here first
    if (!e.fut) return;
    intrusive_ptr<future_base> done = std::move(e.fut);
    e.fut = {};
    --remaining_;
    put(std::move(done));
    if (remaining_ == 0) timer_.cancel();
}

void as_completed_state::on_timeout() {
    remaining_ = 0;
    for (entry& e : todo_) {
        if (!e.fut) continue;
        intrusive_ptr<future_base> f = std::move(e.fut);
        e.fut = {};
        f->remove_callback(e.id);
        put({});  // one timeout for each coroutine still to come
    }
}

void as_completed_state::put(intrusive_ptr<future_base> f) {
    done_.push_back(std::move(f));
    wakeup_next();
}

void as_completed_state::wakeup_next() {
    while (!getters_.empty()) {
        future<void> g = std::move(getters_.front());
        getters_.pop_front();
        if (!g.done()) {
            g.set_result();
            break;
        }
    }
}

coroutine<intrusive_ptr<future_base>> as_completed_state::get() {
    intrusive_ptr<as_completed_state> keep(this);
    while (done_.empty()) {
        future<void> getter(loop_);
        getters_.push_back(getter);
        std::exception_ptr error;
        try {
            co_await getter;
        } catch (...) {
            error = std::current_exception();
        }
        if (error) {
            // Queue.get's cleanup: a wake-up this getter took but cannot use
            // goes to the next getter.
            getter.cancel();
            auto it = std::find(getters_.begin(), getters_.end(), getter);
            if (it != getters_.end()) getters_.erase(it);
            if (!done_.empty() && !getter.cancelled()) wakeup_next();
            std::rethrow_exception(error);
        }
    }
    intrusive_ptr<future_base> f = std::move(done_.front());
    done_.pop_front();
    co_return std::move(f);
}

void as_completed_state::drop_owner() noexcept {
    if (--owners_ == 0) detach();
}

void as_completed_state::detach() noexcept {
    timer_.cancel();
    remaining_ = 0;
    for (entry& e : todo_) {
        if (!e.fut) continue;
        intrusive_ptr<future_base> f = std::move(e.fut);
        e.fut = {};
        f->remove_callback(e.id);
    }
    done_.clear();
}

}  // namespace pyco::detail
