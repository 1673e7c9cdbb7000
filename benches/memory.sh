#!/usr/bin/env bash
# Peak RSS and throughput of a replay over a large generated input.
# Usage: bash benches/memory.sh [SIZE_MB] [THREADS...]   (default 1000 MB, threads 1 and 2)
# Prints one line per thread count: MB/s and peak RSS, against the budget of
# 256 MiB + 64 MiB per thread.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1000}
shift || true
threads=("${@:-1 2}")
work=${WORK:-$(mktemp -d)}
corpus="$work/corpus-${size}.log"
[ -f "$corpus" ] || python3 benches/gen_corpus.py "$corpus" "$size"
cargo build --release --quiet
export PHIWATCH_KEY=${PHIWATCH_KEY:-000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f}
for t in ${threads[@]}; do
  rm -rf "$work/out"
  /usr/bin/time -v target/release/phiwatch replay --quiet --threads "$t" "$corpus" --out "$work/out" 2> "$work/time.txt"
  rss_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' "$work/time.txt")
  wall=$(awk '/Elapsed \(wall clock\)/ {print $NF}' "$work/time.txt")
  secs=$(python3 -c "import sys;p=sys.argv[1].split(':');print(sum(float(x)*60**i for i,x in enumerate(reversed(p))))" "$wall")
  bytes=$(stat -L -c %s "$corpus")
  budget=$((256 + 64 * t))
  python3 - "$t" "$bytes" "$secs" "$rss_kb" "$budget" <<'PY'
import sys
t, b, s, rss, budget = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
mib = rss / 1024
print(f"threads={t} input={b/1e6:.0f} MB wall={s:.1f}s {b/1e6/s:.1f} MB/s peak_rss={mib:.0f} MiB "
      f"budget={budget} MiB {'OK' if mib < budget else 'OVER'}")
PY
done
