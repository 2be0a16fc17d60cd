#!/usr/bin/env python3
"""Network benchmarks: pyco beside its peers, in one run, on loopback only.

    python3 bench/net/run.py [--build build/bench] [--seconds 5] [--warmup 1]
                             [--only echo,bulk,http,syscalls,tls] [--servers a,b]
                             [--json out.json] [--plot out.png]

Every server is pinned to CPU 0 and its client to CPU 1. The echo client is
bench/net/loadgen (one thread, strict ping-pong, every byte checked, polling
epoll without sleeping: in a VM a sleeping client makes every server look
alike). Server CPU is read from /proc/PID/stat (utime + stime) over the timed
window and divided by the messages echoed in it. Syscalls per message come
from a separate short run under `strace -c -f` (it slows the server; the
pattern holds). HTTP uses wrk against each server's keep-alive hello.
TLS (--only tls): TLS 1.3 with one ECDSA P-256 certificate made for the run
(openssl req): 64 B echo at 50 connections, 1 MiB bulk on one connection
(beside the same bulk over plaintext), and handshakes per second (loadgen
--handshakes: connect, full handshake, one echo, close; one at a time).

Build first: cmake --preset bench && cmake --build --preset bench
Peers: Boost.Asio (built with the benchmarks), CPython asyncio (this
python3), uvloop (Debian's python3-uvloop, run with /usr/bin/python3),
nginx (nginx-light), wrk. A peer that is missing is reported and skipped.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start listening")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])  # utime, stime


URING = {"PYCO_BACKEND": "io_uring"}


def echo_servers(build):
    """name -> (command, extra environment)."""
    py = sys.executable
    sys_py = "/usr/bin/python3"
    echo = os.path.join(build, "examples", "echo", "echo_server")
    asio = os.path.join(build, "bench", "net", "asio_echo")
    script = os.path.join(HERE, "asyncio_echo.py")
    have_uvloop = subprocess.run([sys_py, "-c", "import uvloop"], capture_output=True).returncode == 0
    servers = {
        "pyco-protocol": ([echo, "{port}", "protocol"], {}),
        "pyco-streams": ([echo, "{port}", "streams"], {}),
        "pyco-protocol-uring": ([echo, "{port}", "protocol"], URING),
        "pyco-streams-uring": ([echo, "{port}", "streams"], URING),
        "asio": ([asio, "{port}"], {}),
        "asio-uring": ([asio + "_uring", "{port}"], {}),
        "asyncio-protocol": ([py, script, "{port}", "protocol"], {}),
        "asyncio-streams": ([py, script, "{port}", "streams"], {}),
    }
    if have_uvloop:
        servers["uvloop-protocol"] = ([sys_py, script, "{port}", "protocol", "--uvloop"], {})
        servers["uvloop-streams"] = ([sys_py, script, "{port}", "streams", "--uvloop"], {})
    return servers


def tls_servers(build, cert, key):
    """The TLS echo servers: name -> (command, extra environment)."""
    sys_py = "/usr/bin/python3"
    echo = os.path.join(build, "examples", "echo", "echo_server")
    asio = os.path.join(build, "bench", "net", "asio_ssl_echo")
    script = os.path.join(HERE, "asyncio_echo.py")
    tls = ["--tls", cert, key]
    servers = {
        "pyco-protocol": ([echo, "{port}", "protocol"] + tls, {}),
        "pyco-streams": ([echo, "{port}", "streams"] + tls, {}),
        "pyco-protocol-uring": ([echo, "{port}", "protocol"] + tls, URING),
        "asio-ssl": ([asio, "{port}", cert, key], {}),
        "asyncio-protocol": ([sys.executable, script, "{port}", "protocol"] + tls, {}),
    }
    if subprocess.run([sys_py, "-c", "import uvloop"], capture_output=True).returncode == 0:
        servers["uvloop-protocol"] = ([sys_py, script, "{port}", "protocol", "--uvloop"] + tls, {})
        servers["uvloop-streams"] = ([sys_py, script, "{port}", "streams", "--uvloop"] + tls, {})
    # The plaintext baseline for the bulk figure (TLS within 10% of it).
    servers["pyco-protocol-plaintext"] = ([echo, "{port}", "protocol"], {})
    return servers


def make_cert(tmp):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def run_tls(args, loadgen, pick, results):
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = make_cert(tmp)
        for name, spec in tls_servers(args.build, cert, key).items():
            if pick and name not in pick:
                continue
            if not os.path.exists(spec[0][0]):
                print(f"skip tls {name}: {spec[0][0]} not built", file=sys.stderr)
                continue
            port = free_port()
            plain = name.endswith("-plaintext")
            tls = [] if plain else ["--tls"]
            try:
                with Server(spec, port) as srv:
                    pid = srv.proc.pid
                    r = {}
                    if not plain:
                        r["echo50"] = run_loadgen(loadgen, port, 50, 64, args.seconds, args.warmup, pid, tls)
                    r["bulk1m"] = run_loadgen(loadgen, port, 1, 1 << 20, args.seconds, args.warmup, pid, tls)
                    if not plain:
                        r["handshakes"] = run_loadgen(loadgen, port, 1, 64, args.seconds, args.warmup, pid,
                                                      ["--handshakes"])
                    results["tls"][name] = r
                    e, b, h = r.get("echo50"), r["bulk1m"], r.get("handshakes")
                    print(f"tls {name:24} echo64 c50 "
                          f"{fmt(e and e['msgs_per_s'], '.0f'):>7} msg/s cpu {fmt(e and e.get('cpu_us'))} us/msg | "
                          f"bulk 1 MiB {b['mib_per_s']:7.1f} MiB/s cpu {fmt(b.get('cpu_us'), '.0f')} us/MiB | "
                          f"handshakes {fmt(h and h['msgs_per_s'], '.0f')}/s "
                          f"cpu {fmt(h and h.get('cpu_us'), '.0f')} us each", flush=True)
            except RuntimeError as e:
                print(f"skip tls {name}: {e}", file=sys.stderr)


def http_servers(build, tmp):
    http = os.path.join(build, "examples", "http", "http_server")
    servers = {
        "pyco-http": ([http, "{port}"], {}),
        "pyco-http-uring": ([http, "{port}"], URING),
        # Two loops on two reuse_port listeners: on this 2-core machine they
        # share the cores with wrk, so this shows scaling, not CPU/request.
        "pyco-http-2threads": ([http, "{port}", "2"], {}, "0,1"),
    }
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if os.path.exists(nginx):
        conf = os.path.join(tmp, "nginx.conf")
        servers["nginx"] = ([nginx, "-c", conf, "-p", tmp, "-g", "daemon off; master_process off;"], {})
    return servers


def write_nginx_conf(tmp, port):
    with open(os.path.join(tmp, "nginx.conf"), "w") as f:
        f.write(f"""worker_processes 1;
error_log {tmp}/error.log crit;
pid {tmp}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
    uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ default_type text/plain; return 200 "Hello, World!"; }}
    }}
}}
""")


class Server:
    def __init__(self, spec, port):
        cmd, env = spec[0], spec[1]
        self.cpus = spec[2] if len(spec) > 2 else "0"
        self.cmd = [c.replace("{port}", str(port)) for c in cmd]
        # Every server gets the same environment but for its own overrides:
        # a PYCO_BACKEND set in the caller's shell must not leak into others.
        self.env = {k: v for k, v in os.environ.items() if k != "PYCO_BACKEND"}
        self.env.update(env)
        self.port = port

    def __enter__(self):
        self.proc = subprocess.Popen(["taskset", "-c", self.cpus] + self.cmd, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=self.env)
        wait_port(self.port, self.proc)
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_loadgen(loadgen, port, conns, size, seconds, warmup, pid=None, extra=()):
    cmd = ["taskset", "-c", "1", loadgen, "127.0.0.1", str(port), "--conns", str(conns), "--size",
           str(size), "--seconds", str(seconds), "--warmup", str(warmup), "--spin", *extra]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    before = after = None
    result = {}
    for line in p.stdout:
        line = line.strip()
        if line == "window-start" and pid:
            before = cpu_ticks(pid)
        elif line == "window-end" and pid:
            after = cpu_ticks(pid)
        elif "=" in line:
            result = dict(kv.split("=") for kv in line.split())
    p.wait()
    if p.returncode != 0:
        raise RuntimeError("loadgen failed: " + p.stderr.read().strip())
    msgs = int(result["msgs"])
    out = {"msgs_per_s": float(result["msgs_per_s"]), "mib_per_s": float(result["mib_per_s"]),
           "p99_us": float(result["p99_us"])}
    if before and after and msgs:
        out["cpu_us"] = ((after[0] - before[0]) + (after[1] - before[1])) / TICK / msgs * 1e6
        out["user_us"] = (after[0] - before[0]) / TICK / msgs * 1e6
    return out


def run_strace(loadgen, port, pid, conns, size, seconds):
    if not shutil.which("strace"):
        return None
    with tempfile.NamedTemporaryFile(suffix=".strace") as out:
        st = subprocess.Popen(["strace", "-c", "-f", "-p", str(pid), "-o", out.name],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        res = run_loadgen(loadgen, port, conns, size, seconds, 0)
        st.send_signal(signal.SIGINT)
        st.wait()
        total = 0
        with open(out.name) as f:
            for line in f:
                parts = line.split()
                if parts and parts[-1] == "total":
                    total = int(parts[3])  # % time, seconds, usecs/call, calls
        msgs = res["msgs_per_s"] * seconds
        return total / msgs if msgs else None


def run_wrk(port, conns, seconds, pid):
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{seconds:g}s", f"http://127.0.0.1:{port}/"]
    before = cpu_ticks(pid)
    t0 = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    after = cpu_ticks(pid)
    elapsed = time.time() - t0
    rps = 0.0
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            rps = float(line.split()[1])
    reqs = rps * elapsed
    cpu = ((after[0] - before[0]) + (after[1] - before[1])) / TICK / reqs * 1e6 if reqs else None
    user = (after[0] - before[0]) / TICK / reqs * 1e6 if reqs else None
    return {"req_per_s": rps, "cpu_us": cpu, "user_us": user}


def fmt(v, spec=".2f"):
    return "—" if v is None else format(v, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "bench"))
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--only", default="echo,bulk,syscalls,http,tls")
    ap.add_argument("--servers", default="")
    ap.add_argument("--json")
    ap.add_argument("--plot")
    ap.add_argument("--replot", metavar="JSON", help="only draw --plot from an earlier run's --json")
    args = ap.parse_args()
    if args.replot:
        with open(args.replot) as f:
            plot(json.load(f), args.plot or "net_cpu_per_message.png")
        return
    only = set(args.only.split(","))
    pick = set(filter(None, args.servers.split(",")))
    loadgen = os.path.join(args.build, "bench", "net", "loadgen")
    results = {"echo": {}, "bulk": {}, "syscalls": {}, "http": {}, "tls": {}}
    # The machine's load, before and after: figures from a busy machine are
    # worth less, and the reader should know.
    results["loadavg_before"] = os.getloadavg()
    print("load average before: %.2f %.2f %.2f" % results["loadavg_before"], flush=True)

    servers = {k: v for k, v in echo_servers(args.build).items() if not pick or k in pick}
    if not only & {"echo", "bulk", "syscalls"}:
        servers = {}
    for name, spec in servers.items():
        if not os.path.exists(spec[0][0]):
            print(f"skip {name}: {spec[0][0]} not built", file=sys.stderr)
            continue
        port = free_port()
        try:
            with Server(spec, port) as srv:
                pid = srv.proc.pid
                if "echo" in only:
                    for conns in (1, 50, 500):
                        r = run_loadgen(loadgen, port, conns, 64, args.seconds, args.warmup, pid)
                        results["echo"].setdefault(name, {})[conns] = r
                        print(f"echo64 {name:18} c={conns:3} {r['msgs_per_s']:>10.0f} msg/s "
                              f"cpu {fmt(r.get('cpu_us'))} us/msg (user {fmt(r.get('user_us'))}) "
                              f"p99 {r['p99_us']:.1f} us", flush=True)
                if "bulk" in only:
                    for size in (1024, 10240, 102400):
                        r = run_loadgen(loadgen, port, 10, size, args.seconds, args.warmup, pid)
                        results["bulk"].setdefault(name, {})[size] = r
                        print(f"bulk {name:18} {size // 1024:4} KiB {r['mib_per_s']:>9.1f} MiB/s", flush=True)
                if "syscalls" in only:
                    s = run_strace(loadgen, port, pid, 50, 64, 2)
                    results["syscalls"][name] = s
                    print(f"syscalls {name:18} {fmt(s)} per message", flush=True)
        except RuntimeError as e:
            print(f"skip {name}: {e}", file=sys.stderr)

    if "http" in only and shutil.which("wrk"):
        with tempfile.TemporaryDirectory() as tmp:
            for name, spec in http_servers(args.build, tmp).items():
                if pick and name not in pick:
                    continue
                if not os.path.exists(spec[0][0]):
                    print(f"skip {name}: {spec[0][0]} not built", file=sys.stderr)
                    continue
                port = free_port()
                if name == "nginx":
                    write_nginx_conf(tmp, port)
                try:
                    with Server(spec, port) as srv:
                        for conns in (50, 200, 500):
                            r = run_wrk(port, conns, args.seconds, srv.proc.pid)
                            results["http"].setdefault(name, {})[conns] = r
                            print(f"http {name:12} c={conns:3} {r['req_per_s']:>10.0f} req/s "
                                  f"cpu {fmt(r['cpu_us'])} us/req (user {fmt(r['user_us'])})", flush=True)
                except RuntimeError as e:
                    print(f"skip {name}: {e}", file=sys.stderr)

    if "tls" in only:
        run_tls(args, loadgen, pick, results)

    results["loadavg_after"] = os.getloadavg()
    print("load average after: %.2f %.2f %.2f" % results["loadavg_after"], flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.plot and results["echo"]:
        plot(results, args.plot)


def plot(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no matplotlib (python3-matplotlib): no plot", file=sys.stderr)
        return
    # JSON turns the connection counts into strings.
    at50 = {n: r.get(50, r.get("50")) for n, r in results["echo"].items()}
    names = [n for n, r in at50.items() if r and r.get("cpu_us") is not None]
    total = [at50[n]["cpu_us"] for n in names]
    user = [at50[n]["user_us"] for n in names]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.barh(names, total, color="#9ab", label="kernel")
    ax.barh(names, user, color="#357", label="user")
    ax.set_xlabel("server CPU per message (µs), 64 B echo, 50 connections")
    ax.invert_yaxis()
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
