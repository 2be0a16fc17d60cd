#!/usr/bin/env bash
# Drives examples/https/https_server with clients nobody here wrote — curl
# (verified against the test CA, keep-alive, HEAD, 405) and openssl
# s_client (TLS 1.3, ALPN) — and with examples/https/https_client; checks
# that untrusted and misnamed clients are refused while the server goes on;
# then stops it with SIGTERM: exit status 0. The certificate is made here.
#   https_interop.sh HTTPS_SERVER HTTPS_CLIENT
set -euo pipefail
server=$1
client=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/pyco-https.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$dir"' EXIT
fail() { echo "https_interop: $*"; exit 1; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$server" "$port" "$dir/cert.pem" "$dir/key.pem" >"$dir/server.out" 2>&1 &
pid=$!
url="https://localhost:$port/"
ca=(--cacert "$dir/cert.pem" --resolve "localhost:$port:127.0.0.1")
for _ in $(seq 100); do
  curl -s -o /dev/null "${ca[@]}" "$url" && break
  sleep 0.05
done

body=$(curl -sS --max-time 5 "${ca[@]}" "$url")
[ "$body" = "Hello, World!" ] || fail "body was '$body'"
out=$(curl -sS --max-time 5 -v "${ca[@]}" "$url" "$url" "$url" 2>&1)
n=$(grep -c "Hello, World!" <<<"$out" || true)
[ "$n" = 3 ] || { echo "$out"; fail "expected 3 bodies, got $n"; }
grep -q "Re-using existing connection" <<<"$out" || { echo "$out"; fail "connection not kept alive"; }
grep -q "SSL connection using TLSv1.3" <<<"$out" || { echo "$out"; fail "not TLS 1.3"; }
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --max-time 5 "${ca[@]}" "$url")
[ "$code" = 405 ] || fail "POST gave $code"
head=$(curl -sS -I --max-time 5 "${ca[@]}" "$url" | head -1 | tr -d '\r')
[ "$head" = "HTTP/1.1 200 OK" ] || fail "HEAD gave '$head'"

# curl without the CA refuses the server (exit 60: peer certificate cannot
# be authenticated); by a name the certificate does not have, too.
rc=0; curl -s -o /dev/null --max-time 5 --resolve "localhost:$port:127.0.0.1" "$url" || rc=$?
[ "$rc" = 60 ] || fail "curl without the CA exited $rc, not 60"
rc=0; curl -s -o /dev/null --max-time 5 --cacert "$dir/cert.pem" \
  --resolve "other.test:$port:127.0.0.1" "https://other.test:$port/" || rc=$?
[ "$rc" = 60 ] || fail "curl with a wrong name exited $rc, not 60"

# openssl s_client: TLS 1.3, the ALPN the server offers, a request by hand.
out=$(printf 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' |
  timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername localhost -alpn http/1.1 \
    -CAfile "$dir/cert.pem" -verify_return_error -quiet -ign_eof 2>&1 || true)
grep -q "Hello, World!" <<<"$out" || { echo "$out"; fail "s_client got no hello"; }
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$port" -alpn http/1.1 </dev/null 2>&1 || true)
grep -q "ALPN protocol: http/1.1" <<<"$out" || { echo "$out"; fail "no ALPN"; }
grep -q "TLSv1.3" <<<"$out" || { echo "$out"; fail "s_client did not get TLS 1.3"; }

# A plaintext client to the TLS port: refused; the server goes on serving.
plain=$(curl -s --max-time 5 "http://127.0.0.1:$port/" || true)
[ -z "$plain" ] || fail "a plaintext request got '$plain'"

# The example client: verified, keep-alive, three responses; and without the
# CA a certificate error, exit 1.
out=$("$client" localhost "$port" "$dir/cert.pem" 3)
n=$(grep -c "200 OK -> Hello, World!" <<<"$out" || true)
[ "$n" = 3 ] || { echo "$out"; fail "https_client got $n responses"; }
rc=0; err=$("$client" localhost "$port" 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "https_client without the CA exited $rc"
grep -q "CERTIFICATE_VERIFY_FAILED" <<<"$err" || fail "https_client said '$err'"

body=$(curl -sS --max-time 5 "${ca[@]}" "$url")
[ "$body" = "Hello, World!" ] || fail "after the bad clients the body was '$body'"

kill -TERM $pid
rc=0
wait $pid || rc=$?
pid=
[ "$rc" = 0 ] || { cat "$dir/server.out"; fail "server exited with $rc"; }
echo "https_interop: curl, s_client and https_client served over TLS 1.3; untrusted, misnamed and plaintext clients refused; server stopped cleanly"
