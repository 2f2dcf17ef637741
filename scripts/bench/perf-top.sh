#!/usr/bin/env bash
# Top entries per process of a profile that `bench http` recorded with OOPS_BENCH_PERF_DIR set:
#   scripts/bench/perf-top.sh <dir> <tag> [n]     e.g. scripts/bench/perf-top.sh /tmp/perf orders-c128 12
# For each process in <dir>/<tag>.pids: its samples, then its n busiest symbols by self time as a
# share of that process's samples, and the same by inclusive time for the process's own code.
set -eu
dir=$1; tag=$2; n=${3:-12}
demangle() { if command -v swift >/dev/null; then swift demangle --simplified; else cat; fi; }
while read -r key pid; do
  total=$(perf script -i "$dir/$tag.data" -F pid </dev/null 2>/dev/null | awk -v p="$pid" '$1 == p' | wc -l)
  echo "== $key (pid $pid, $total samples)"
  # Percentages of all samples in the file, rescaled to this process's share.
  perf report -i "$dir/$tag.data" --pid "$pid" --no-children --sort dso,sym --stdio -g none --percentage relative </dev/null 2>/dev/null \
    | grep -E '^ +[0-9.]+%' | head -n "$n" | demangle | cut -c1-160
  echo "-- inclusive"
  perf report -i "$dir/$tag.data" --pid "$pid" --children --sort sym --stdio -g none --percentage relative </dev/null 2>/dev/null \
    | grep -E '^ +[0-9.]+%' | demangle | grep -vE 'thunk|protocol witness|partial apply|_Box|start_thread|_dispatch|entry_SYSCALL|do_syscall|0x0000' \
    | head -n "$n" | cut -c1-160
done < "$dir/$tag.pids"
