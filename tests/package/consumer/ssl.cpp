// Links pyco::ssl through the package: a client context and its rules.
#include <pyco/net/ssl.hpp>

#include <cstdio>

int main() {
    pyco::ssl_context ctx = pyco::ssl_context::client();
    const bool ok = ctx.check_hostname() && ctx.verify_mode() == pyco::verify_mode::cert_required;
    std::printf("consumer_ssl: %s\n", ok ? "ok" : "wrong defaults");
    return ok ? 0 : 1;
}
