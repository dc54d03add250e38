#!/usr/bin/env bash
# Interleaved A/B (or A/B/C) of leadrouter builds, each run against raw SQLite in the same minute:
#   [ROUNDS=5] [BENCH=target/release/leadrouter-bench] [OUT=ratios.jsonl] bench/ab/ratios.sh NAME=path/to/leadrouter ...
# `leadrouter-bench --raw-sqlite` starts the `leadrouter` beside its own executable, so each build gets a directory
# of its own with a copy of the one bench. Each round runs every build at 64 clients for 10 s, then at one client
# for 15 s, in the order given on odd rounds and reversed on even ones; each run's JSON report is appended to OUT
# as {"round", "side", "clients", "result"}. bench/ab/ratios.py summarises OUT: medians, ranges, ratios to raw
# SQLite, and each pair of builds' per-round ratios.
set -eu
BENCH=${BENCH:-target/release/leadrouter-bench}
ROUNDS=${ROUNDS:-5}
OUT=${OUT:-ratios.jsonl}
[ $# -ge 1 ] || { echo "usage: $0 NAME=path/to/leadrouter ..." >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sides=()
for pair in "$@"; do
  name=${pair%%=*}; binary=${pair#*=}
  mkdir "$work/$name"
  cp "$binary" "$work/$name/leadrouter"
  cp "$BENCH" "$work/$name/leadrouter-bench"
  sides+=("$name")
done
for round in $(seq 1 "$ROUNDS"); do
  order=("${sides[@]}")
  if [ $((round % 2)) -eq 0 ]; then
    order=(); for ((i = ${#sides[@]} - 1; i >= 0; i--)); do order+=("${sides[i]}"); done
  fi
  for clients in 64 1; do
    duration=10s; [ "$clients" = 1 ] && duration=15s
    for side in "${order[@]}"; do
      result=$("$work/$side/leadrouter-bench" --raw-sqlite --concurrency "$clients" --duration "$duration" \
        --operators 10 --json --quiet)
      printf '{"round": %s, "side": "%s", "clients": %s, "result": %s}\n' "$round" "$side" "$clients" \
        "$(echo "$result" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))')" >> "$OUT"
      echo "round $round, $clients clients, $side done" >&2
    done
  done
done
