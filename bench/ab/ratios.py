#!/usr/bin/env python3
"""Summarises bench/ab/ratios.sh's output (argument: its OUT file, by default ratios.jsonl)."""
import json
import statistics
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "ratios.jsonl"
runs = [json.loads(line) for line in open(path) if line.strip()]
by = {}
for run in runs:
    by.setdefault((run["clients"], run["side"]), []).append((run["round"], run["result"]))
for (clients, side), rows in sorted(by.items(), key=lambda item: (-item[0][0], item[0][1])):
    rate = [r["contacts_per_sec"] for _, r in rows]
    raw = [r["raw_sqlite"]["contacts_per_sec"] for _, r in rows]
    ratio = [r["ratio_to_raw_sqlite"] for _, r in rows]
    stalls = [r["p999_over_p50"] for _, r in rows]
    rss = max(r["server_memory"]["peak_rss_kib"] for _, r in rows)
    print(f"{clients:>2} clients {side}: {len(rows)} runs, median {statistics.median(rate):,.0f}/s "
          f"({min(rate):,.0f}-{max(rate):,.0f}), raw SQLite {min(raw):,.0f}-{max(raw):,.0f}/s, "
          f"ratio {min(ratio):.2f}-{max(ratio):.2f} (median {statistics.median(ratio):.2f}), "
          f"p99.9/p50 {min(stalls):.1f}-{max(stalls):.1f}, peak RSS {rss / 1024:.1f} MiB")
sides = sorted({side for _, side in by})
for clients in (64, 1):
    for a in sides:
        for b in sides:
            if a >= b:
                continue
            rate_a = {n: r["contacts_per_sec"] for n, r in by.get((clients, a), [])}
            rate_b = {n: r["contacts_per_sec"] for n, r in by.get((clients, b), [])}
            pairs = [rate_a[n] / rate_b[n] for n in sorted(rate_a) if n in rate_b]
            if pairs:
                print(f"{clients:>2} clients {a} / {b} per round: "
                      f"{', '.join(f'{x:.2f}' for x in pairs)}; median {statistics.median(pairs):.2f}")
