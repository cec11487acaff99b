#!/usr/bin/env bash
# The loopback load test: for axum, actix and tonic, a bare server, the server behind
# dharma with one token seen before (warm), and with a new token per request (fresh).
# HTTP load comes from wrk (one thread, 32 connections), gRPC load from the bounded tonic
# client loop `grpc-load` (32 concurrent calls on one HTTP/2 connection). Every server and
# every load stops by itself. Writes one line per run to the file given as $1:
#   <framework> <variant> RESULT <requests/s> <p50 µs> <p99 µs> <errors> <requests>
#
#   bash benches/load.sh OUT [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
out=$1
seconds=${2:-10}
tokens_per_run=${DHARMA_LOAD_TOKENS:-$((seconds * 12000))}

command -v wrk >/dev/null || {
  echo "wrk is needed: apt-get install wrk" >&2
  exit 1
}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --locked -q -p dharma-benches --bins
bin=$target/release

work=$(mktemp -d)
trap 'rm -rf "$work"; kill $(jobs -p) 2>/dev/null || true' EXIT
: >"$out"

run() { # framework server-mode token-mode label
  local framework=$1 server_mode=$2 token_mode=$3 label=$4
  local count=$tokens_per_run
  [ "$token_mode" = warm ] && count=1
  "$bin/load-server" "$framework" "$server_mode" $((seconds + 30)) "$work/tokens" "$count" >"$work/server.out" &
  local server=$!
  for _ in $(seq 600); do
    grep -q '^listening' "$work/server.out" 2>/dev/null && break
    sleep 0.1
  done
  local addr
  addr=$(awk '/^listening/ {print $2}' "$work/server.out")
  [ -n "$addr" ] || { echo "load-server $framework $server_mode did not start" >&2; exit 1; }
  local result
  if [ "$framework" = tonic ]; then
    result=$(timeout $((seconds + 20)) "$bin/grpc-load" "$addr" "$work/tokens" "$token_mode" "$seconds" 32 | grep '^RESULT')
  else
    result=$(DHARMA_TOKENS="$work/tokens" DHARMA_MODE=$token_mode \
      timeout $((seconds + 20)) wrk -t1 -c32 -d"${seconds}s" -s benches/load.lua "http://$addr/orders/42" | grep '^RESULT')
  fi
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  echo "$framework $label $result" | tee -a "$out"
  local errors
  errors=$(echo "$result" | awk '{print $5}')
  [ "$errors" = 0 ] || { echo "$framework $label: $errors requests failed" >&2; exit 1; }
}

for framework in axum actix tonic; do
  run "$framework" bare warm bare
  run "$framework" dharma warm dharma_warm
  run "$framework" dharma fresh dharma_fresh
done
