#include <pyco/pyco.hpp>

#include <cstdio>

namespace {
pyco::generator<int, void, int> squares(int n) {
    int sum = 0;
    for (int i = 1; i <= n; ++i) {
        sum += i * i;
        co_yield i * i;
    }
    co_return sum;
}
pyco::generator<int> all() {
    int sum = co_yield pyco::from(squares(4));
    co_yield sum;
}
}  // namespace

int main() {
    int total = 0;
    for (int x : all()) total += x;
    std::printf("consumer: %d\n", total);
    return total == 60 ? 0 : 1;  // 1+4+9+16, then their sum again
}
