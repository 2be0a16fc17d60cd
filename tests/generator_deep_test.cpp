// Deep delegation: a chain 100,000 generators deep must iterate, take a
// throw_, close and be destroyed without growing the stack. Each level is a
// heap frame; control moves between levels by symmetric transfer (a tail
// call on clang, and on GCC with -foptimize-sibling-calls; see toolchain.md).
#include <pyco/generator.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <numeric>
#include <vector>

namespace {

using pyco::generator;

constexpr int deep = 100'000;

// A degenerate tree (a list): each level yields its number, then delegates
// to the next level, then yields its number again on the way out.
generator<int, void, long> walk(int level, int depth) {
    co_yield level;
    long below = 0;
    if (level + 1 < depth) below = co_yield pyco::from(walk(level + 1, depth));
    co_yield -level;
    co_return below + level;
}

TEST(GeneratorDeep, HundredThousandLevelsIterateInOrder) {
    auto g = walk(0, deep);
    long sum = 0;
    long count = 0;
    int expect_down = 0;
    for (int x : g) {
        if (count < deep) {
            EXPECT_EQ(x, expect_down++);
            if (x != expect_down - 1) break;
        }
        sum += x;
        ++count;
    }
    EXPECT_EQ(count, 2L * deep);
    EXPECT_EQ(sum, 0);
    EXPECT_EQ(g.return_value(), static_cast<long>(deep) * (deep - 1) / 2);
}

struct node {
    int value;
    std::unique_ptr<node> left, right;
};

std::unique_ptr<node> build(int lo, int hi) {  // a balanced tree over [lo, hi)
    if (lo >= hi) return nullptr;
    int mid = lo + (hi - lo) / 2;
    auto n = std::make_unique<node>();
    n->value = mid;
    n->left = build(lo, mid);
    n->right = build(mid + 1, hi);
    return n;
}

generator<int> inorder(const node* n) {
    if (n == nullptr) co_return;
    co_yield pyco::from(inorder(n->left.get()));
    co_yield n->value;
    co_yield pyco::from(inorder(n->right.get()));
}

TEST(GeneratorDeep, RecursiveInorderTreeWalk) {
    auto tree = build(0, 5000);
    std::vector<int> got;
    for (int x : inorder(tree.get())) got.push_back(x);
    std::vector<int> want(5000);
    std::iota(want.begin(), want.end(), 0);
    EXPECT_EQ(got, want);
}

// A left-leaning chain as deep as the test: the recursive walk of a
// pathological tree, which a recursive C++ function could not do on 8 MiB.
TEST(GeneratorDeep, RecursiveWalkOfAHundredThousandDeepTree) {
    std::unique_ptr<node> root;
    for (int i = deep - 1; i >= 0; --i) {
        auto n = std::make_unique<node>();
        n->value = i;
        n->left = std::move(root);
        root = std::move(n);
    }
    long count = 0;
    int last = deep;
    for (int x : inorder(root.get())) {
        EXPECT_EQ(x, last - 1);  // the deepest node comes first
        last = x;
        ++count;
    }
    EXPECT_EQ(count, deep);
    // Free the list iteratively; its recursive destructor would overflow.
    while (root) root = std::move(root->left);
}

generator<int> catcher(int level, int depth, int& caught_at) {
    if (level + 1 < depth) {
        co_yield pyco::from(catcher(level + 1, depth, caught_at));
        co_yield level;  // resumes here after the inner ones end
        co_return;
    }
    bool caught = false;
    try {
        co_yield -1;
    } catch (const pyco::value_error&) {
        caught = true;
        caught_at = level;
    }
    if (caught) co_yield 12345;
}

TEST(GeneratorDeep, ThrowReachesTheInnermostOfAHundredThousand) {
    int caught_at = -1;
    auto g = catcher(0, deep, caught_at);
    EXPECT_EQ(g.next(), -1);
    EXPECT_EQ(g.throw_(pyco::value_error("deep")), 12345);
    EXPECT_EQ(caught_at, deep - 1);
    EXPECT_EQ(g.next(), deep - 2);  // the innermost finished; its parent goes on
}

generator<int> counted(int level, int depth, int& exits) {
    try {
        if (level + 1 < depth) {
            co_yield pyco::from(counted(level + 1, depth, exits));
        } else {
            co_yield level;
        }
    } catch (const pyco::generator_exit&) {
        ++exits;
        throw;
    }
}

TEST(GeneratorDeep, CloseUnwindsAHundredThousandLevels) {
    int exits = 0;
    auto g = counted(0, deep, exits);
    EXPECT_EQ(g.next(), deep - 1);
    g.close();
    EXPECT_EQ(exits, deep);
    EXPECT_EQ(g.state(), pyco::gen_state::closed);
}

TEST(GeneratorDeep, UncaughtThrowUnwindsEveryLevel) {
    int exits = 0;
    auto g = counted(0, deep, exits);
    g.next();
    EXPECT_THROW(g.throw_(pyco::value_error("through all")), pyco::value_error);
    EXPECT_EQ(exits, 0);  // value_error is not generator_exit
    EXPECT_EQ(g.state(), pyco::gen_state::closed);
}

TEST(GeneratorDeep, DestroyingASuspendedChainClosesEveryLevel) {
    int exits = 0;
    {
        auto g = counted(0, deep, exits);
        g.next();
    }
    EXPECT_EQ(exits, deep);
}

}  // namespace
