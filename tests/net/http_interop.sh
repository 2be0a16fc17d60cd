#!/usr/bin/env bash
# Drives examples/http/http_server with curl (keep-alive, several requests on
# one connection, HEAD, a 405), then stops it with SIGINT: exit status 0.
#   http_interop.sh HTTP_SERVER_BINARY [THREADS]
set -euo pipefail
bin=$1
threads=${2:-1}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" "$port" "$threads" &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$port/" && break
  sleep 0.05
done
url="http://127.0.0.1:$port/"
body=$(curl -sS --max-time 5 "$url")
[ "$body" = "Hello, World!" ] || { echo "http_interop: body was '$body'"; exit 1; }
# Three requests on one kept-alive connection: curl reuses it.
out=$(curl -sS --max-time 5 -v "$url" "$url" "$url" 2>&1)
n=$(grep -c "Hello, World!" <<<"$out" || true)
[ "$n" = 3 ] || { echo "http_interop: expected 3 bodies, got $n"; echo "$out"; exit 1; }
grep -q "Re-using existing connection" <<<"$out" || { echo "http_interop: connection not kept alive"; echo "$out"; exit 1; }
grep -qi "content-length: 13" <<<"$out" || { echo "http_interop: no Content-Length: 13"; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --max-time 5 "$url")
[ "$code" = 405 ] || { echo "http_interop: POST gave $code"; exit 1; }
head=$(curl -sS -I --max-time 5 "$url" | head -1 | tr -d '\r')
[ "$head" = "HTTP/1.1 200 OK" ] || { echo "http_interop: HEAD gave '$head'"; exit 1; }
kill -INT $pid
rc=0
wait $pid || rc=$?
trap - EXIT
[ "$rc" = 0 ] || { echo "http_interop: server exited with $rc"; exit 1; }
echo "http_interop: curl got the hello, kept alive, HEAD and 405; server stopped cleanly (threads=$threads)"
