#!/usr/bin/env bash
# One against two leadrouter instances on one PostgreSQL database:
#   [PG=postgres://postgres@127.0.0.1:5432/test] [LEADROUTER=target/release/leadrouter] bench/pg/scale.sh
# Each run: a fresh schema in PG, INSTANCES (1, then 2) servers on it, leadrouter-bench --url for each instance
# (its clients spread round robin over them) at --concurrency 64 for --duration 15s with 10 operators, while
# pg_stat_activity is sampled every 500 ms: how many of the instances' backends are active, and how many of
# them wait on a row lock (Lock:transactionid, Lock:tuple), which is where a second instance could lose what it
# adds. ROUNDS rounds (default 3), the order alternating (1-2, then 2-1) as in bench/ab/interleaved.sh;
# DURATION (default 15s) shortens a trial run of the script itself.
set -u
PG=${PG:-postgres://postgres@127.0.0.1:5432/test}
LEADROUTER=${LEADROUTER:-target/release/leadrouter}
BENCH=${BENCH:-target/release/leadrouter-bench}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-15s}
# Names the instances' connections, so that the sampler counts theirs and nobody else's on this server.
APP=leadrouter-scale-$$
WORK=$(mktemp -d)
PIDS=()
SAMPLER=
SCHEMA=

psql_quiet() { PGOPTIONS=--client-min-messages=warning psql "$PG" -XqAt "$@"; }

cleanup() {
  [ -n "$SAMPLER" ] && { kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null; }
  SAMPLER=
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  PIDS=()
  [ -n "$SCHEMA" ] && psql_quiet -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE"
  SCHEMA=
}
trap 'cleanup; rm -rf "$WORK"' EXIT

# The URL that puts leadrouter in schema $1 (as .ci/schemathesis.sh does), its connections named $APP.
schema_url() {
  case "$PG" in
    *\?*) echo "$PG&options[search_path]=$1&application_name=$APP" ;;
    *) echo "$PG?options[search_path]=$1&application_name=$APP" ;;
  esac
}

# Every 500 ms, on one connection until killed (psql's \watch): a line "# - 0" per sample, then one line per
# (wait_event_type, wait_event) of the instances' active backends with their number; a backend running, not
# waiting, shows as "- -".
cat >"$WORK/sample.sql" <<EOF
SELECT '#', '-', 0 UNION ALL
SELECT coalesce(wait_event_type, '-'), coalesce(wait_event, '-'), count(*) FROM pg_stat_activity
WHERE state = 'active' AND backend_type = 'client backend' AND application_name = '$APP' GROUP BY 1, 2
\watch 0.5
EOF

# run INSTANCES ROUND: one measured run, printed as one line.
run() {
  local instances=$1 round=$2 urls=() samples=$WORK/samples-$1-$2.txt
  SCHEMA=leadrouter_scale_$$_${instances}_$round
  psql_quiet -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" -c "CREATE SCHEMA $SCHEMA" || return 1
  local database_url
  database_url=$(schema_url "$SCHEMA")
  # One at a time: the first migrates the schema, the others find it migrated.
  local first_port=$((8400 + RANDOM % 500))
  for n in $(seq 1 "$instances"); do
    local port=$((first_port + n)) log=$WORK/server-$instances-$round-$n.log
    DATABASE_URL="$database_url" LEADROUTER_BIND=127.0.0.1:$port RUST_LOG=error "$LEADROUTER" >"$log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { echo "instance $n did not start:"; cat "$log"; cleanup; return 1; }
    urls+=(--url "http://127.0.0.1:$port")
  done
  # psql itself, not through psql_quiet, so that $! is its own pid and not a subshell's.
  psql "$PG" -XqAt -F' ' <"$WORK/sample.sql" >"$samples" 2>&1 &
  SAMPLER=$!
  local out
  out=$("$BENCH" "${urls[@]}" --concurrency 64 --duration "$DURATION" --operators 10 --json --quiet)
  # The sampler stops first, so that no sample falls after the run.
  cleanup
  [ -n "$out" ] || { echo "instances=$instances round=$round: leadrouter-bench failed"; return 1; }
  local waits
  waits=$(awk '
    $1 == "#" { samples++; next }
    { active += $3 }
    $1 == "Lock" && $2 == "transactionid" { transactionid += $3 }
    $1 == "Lock" && $2 == "tuple" { tuple += $3 }
    END { n = samples > 0 ? samples : 1
          printf "waiting on Lock:transactionid %.1f, Lock:tuple %.1f, active %.1f (means of %d samples)",
                 transactionid / n, tuple / n, active / n, samples }' "$samples")
  echo "$out" | python3 -c "
import json, sys
r = json.load(sys.stdin)
servers = ' + '.join(str(s['contacts_created']) for s in r['by_server'])
print('instances=$instances round=$round', round(r['contacts_per_sec']), 'contacts/s', '(' + servers + ')',
      'p50', r['latency_ms']['p50'], 'p99', r['latency_ms']['p99'], 'errors', r['errors'],
      'invariants passed', r['invariants']['passed'], '| $waits')"
}

[ -x "$LEADROUTER" ] || { echo "no leadrouter binary at $LEADROUTER (cargo build --release --workspace)" >&2; exit 2; }
[ -x "$BENCH" ] || { echo "no leadrouter-bench at $BENCH (cargo build --release --workspace)" >&2; exit 2; }
for round in $(seq 1 "$ROUNDS"); do
  order="1 2"
  [ $((round % 2)) -eq 0 ] && order="2 1"
  for instances in $order; do
    run "$instances" "$round"
  done
done
