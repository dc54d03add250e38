#!/usr/bin/env bash
# Instructions per thread of a leadrouter build for a fixed one-client run, counted by callgrind: repeatable for
# a given build whatever else the machine is doing, where seconds on this shared machine are not.
#   [REQUESTS=2000] [BENCH=target/release/leadrouter-bench] bench/instructions.sh path/to/leadrouter [OUT_DIR]
# The server runs under `valgrind --tool=callgrind --separate-threads=yes` on a fresh SQLite database with the
# writer's watch off (its waiting would be counted as work); `leadrouter-bench --url … --requests REQUESTS
# --concurrency 1 --operators 10` drives it. Prints each thread's total; the writer is the thread with the most.
# `callgrind_annotate OUT_DIR/cg.out-NN` shows where a thread's instructions went.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 path/to/leadrouter [OUT_DIR]" >&2; exit 2; }
BINARY=$1
OUT=${2:-$(mktemp -d)}
BENCH=${BENCH:-target/release/leadrouter-bench}
REQUESTS=${REQUESTS:-2000}
PORT=${PORT:-8100}
mkdir -p "$OUT"
LEADROUTER_WRITER_WATCH_MICROS=0 valgrind --tool=callgrind --separate-threads=yes \
  --callgrind-out-file="$OUT/cg.out" "$BINARY" --bind "127.0.0.1:$PORT" \
  --database-url "sqlite://$OUT/crm.db" > "$OUT/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 120); do
  curl -sf "127.0.0.1:$PORT/healthz" > /dev/null && break
  sleep 1
done
"$BENCH" --url "http://127.0.0.1:$PORT" --requests "$REQUESTS" --concurrency 1 --operators 10 > "$OUT/bench.txt"
kill -INT "$server"
wait "$server" || true
trap - EXIT
echo "instructions by thread, $REQUESTS contacts at one client ($OUT):"
for file in "$OUT"/cg.out-*; do
  printf '  %s %s\n' "${file##*/}" "$(grep -m1 '^summary:' "$file" | cut -d' ' -f2)"
done
