#!/usr/bin/env bash
# Interleaved A/B of two leadrouter builds: BEFORE=path/to/old/leadrouter [AFTER=target/release/leadrouter] bench/ab/interleaved.sh
# Each run: a fresh SQLite database, leadrouter-bench --requests 20000 at 64 and at 1 client (CLIENTS), ROUNDS rounds
# (default 4). The order alternates (before-after, then after-before): an A/A run of one binary found the second of
# each pair ~15 % slower at 1 client (the first server's shutdown and cleanup overlap the second's run).
set -u
BENCH=${BENCH:-target/release/leadrouter-bench}
declare -A BIN=([before]=${BEFORE:?the release leadrouter binary of the commit before} [after]=${AFTER:-target/release/leadrouter})
ROUNDS=${ROUNDS:-4}
for C in ${CLIENTS:-64 1}; do
  for round in $(seq 1 $ROUNDS); do
    order="before after"
    [ $((round % 2)) -eq 0 ] && order="after before"
    for side in $order; do
      dir=$(mktemp -d); port=$((8400 + RANDOM % 500))
      DATABASE_URL="sqlite://$dir/crm.db" LEADROUTER_BIND=127.0.0.1:$port RUST_LOG=error ${BIN[$side]} >/dev/null 2>&1 &
      pid=$!
      for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$port/healthz >/dev/null && break; sleep 0.1; done
      out=$($BENCH --url http://127.0.0.1:$port --requests 20000 --concurrency $C --quiet --json)
      kill $pid; wait $pid 2>/dev/null
      echo "$out" | python3 -c "import json,sys; r=json.load(sys.stdin); inv=r['invariants']; print('C=$C round=$round $side', round(r['contacts_per_sec']), 'p50', r['latency_ms'].get('p50'), 'p99', r['latency_ms'].get('p99'), 'invariants passed', inv.get('passed'))"
      rm -rf "$dir"
    done
  done
done
