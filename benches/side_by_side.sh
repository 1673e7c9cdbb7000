#!/usr/bin/env bash
# Single-core throughput of `phiwatch replay --threads 1` (all rules, decoding,
# Parquet output) against `rg -j1 -o` running ~20 equivalent PHI/secret regexes
# over the same generated corpus. Prints MB/s for both and the ratio.
#
# Usage: [RUNS=5] benches/side_by_side.sh [SIZE_MB]   (default 64; needs python3 and rg:
#        apt-get install ripgrep, and GNU time: apt-get install time)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB="${1:-64}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
command -v rg >/dev/null || { echo "ripgrep (rg) is needed: apt-get install ripgrep" >&2; exit 2; }

python3 benches/gen_corpus.py "$WORK/corpus.log" "$SIZE_MB"
cargo build --release --quiet
BIN=target/release/phiwatch
# A fixed benchmark key: no key file is generated (or warned about) for a run.
export PHIWATCH_KEY="${PHIWATCH_KEY:-000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f}"
BYTES=$(stat -c %s "$WORK/corpus.log")

# The ripgrep side: the same shapes the built-in rules look for (without the
# validators, decoding and context that phiwatch adds).
PATTERNS=(
  '[0-9]{3}-[0-9]{2}-[0-9]{4}'
  '(?:us-ssn|2\.16\.840\.1\.113883\.4\.1)(?:\||%7C)[0-9]{3}-?[0-9]{2}-?[0-9]{4}'
  '(?i:ssn)[=:"]+[0-9]{9}'
  '[1-9][A-Z][A-Z0-9][0-9]-?[A-Z][A-Z0-9][0-9]-?[A-Z]{2}[0-9]{2}'
  '(?i:npi)[^0-9]{0,30}[12][0-9]{9}'
  '(?i:dea)[=:"]+[A-Z][A-Z9][0-9]{7}'
  '(?i:mrn|medical[ _-]?record)[^A-Za-z0-9]{1,4}[A-Za-z]{0,4}-?[0-9][A-Za-z0-9-]{3,19}'
  '[A-Za-z0-9._%+-]{1,64}(?:@|%40)[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}'
  '(?:\+?1[ .-]?)?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4}'
  '[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{1,7}'
  '(?i:icd|diagnos|dx)[^A-Z]{0,30}[A-TV-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?'
  '(?i:ndc|drug)[^0-9]{0,30}(?:[0-9]{4,5}-[0-9]{3,4}-[0-9]{1,2}|[0-9]{11})'
  'Patient/[A-Za-z0-9.-]*[0-9][A-Za-z0-9.-]*'
  '(?:patient|subject)=[A-Za-z0-9.-]*[0-9][A-Za-z0-9.-]*'
  '(?i:dob|birth)[^0-9]{0,24}(?:(?:19|20)[0-9]{2}-[01][0-9]-[0-3][0-9]|[01][0-9]/[0-3][0-9]/(?:19|20)[0-9]{2})'
  '(?i:family|given|first_?name|last_?name)["=:]+[A-Za-z][A-Za-z-]{1,30}'
  'eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}'
  '(?i:bearer|basic)\s+[A-Za-z0-9._~+/-]{8,}=*'
  '(?i:api[_-]?key|apikey|access[_-]?token|client[_-]?secret)["=: ]+[A-Za-z0-9_.~+/-]{16,}'
  '(?:AKIA|ASIA)[A-Z2-7]{16}'
  '-----BEGIN [A-Z ]{0,20}PRIVATE KEY'
  '(?i:password|passwd|pwd)["=: ]+[^\s&",;}]{4,64}'
)
RG_ARGS=()
for p in "${PATTERNS[@]}"; do RG_ARGS+=(-e "$p"); done

# CPU seconds (user + sys) as well as wall time: the CPU figure is stable on a
# busy machine, the wall figure is what a user waits. Each side runs RUNS times
# (default 5), interleaved, after a warm-up read of the corpus; the fastest run
# of each is kept (the least disturbed by other work on the machine).
RUNS="${RUNS:-5}"
TIMEFMT="%e %U %S"
cat "$WORK/corpus.log" > /dev/null
: > "$WORK/rg.times"; : > "$WORK/pw.times"; : > "$WORK/scan.times"
for _ in $(seq "$RUNS"); do
  /usr/bin/time -f "$TIMEFMT" -o "$WORK/t" \
    rg -j1 -o --no-filename --no-line-number "${RG_ARGS[@]}" "$WORK/corpus.log" > "$WORK/rg.out" || true
  cat "$WORK/t" >> "$WORK/rg.times"
  rm -rf "$WORK/out"
  /usr/bin/time -f "$TIMEFMT" -o "$WORK/t" \
    "$BIN" replay --threads 1 --quiet --out "$WORK/out" "$WORK/corpus.log"
  cat "$WORK/t" >> "$WORK/pw.times"
  /usr/bin/time -f "$TIMEFMT" -o "$WORK/t" "$BIN" scan < "$WORK/corpus.log" > "$WORK/scan.out"
  cat "$WORK/t" >> "$WORK/scan.times"
done
python3 - "$BYTES" "$(wc -l < "$WORK/rg.out")" "$RUNS" "$WORK/rg.times" "$WORK/pw.times" "$WORK/scan.times" <<'PY'
import statistics
import sys
size = int(sys.argv[1])
mb = size / 1e6
def parse(t):
    wall, user, sys_ = map(float, t.split())
    return wall, user + sys_
def times(path):
    with open(path) as f:
        return [parse(line) for line in f if line.strip()]
rg, pw, scan = times(sys.argv[4]), times(sys.argv[5]), times(sys.argv[6])
# The fastest run of each side (by wall time).
rg_wall, rg_cpu = min(rg)
pw_wall, pw_cpu = min(pw)
print(f"corpus: {mb:.1f} MB; best of {sys.argv[3]} runs each")
print(f"rg -j1 -o ({sys.argv[2]} matches): wall {rg_wall:.2f} s ({mb / rg_wall:.1f} MB/s), cpu {rg_cpu:.2f} s ({mb / rg_cpu:.1f} MB/s)")
print(f"phiwatch replay --threads 1: wall {pw_wall:.2f} s ({mb / pw_wall:.1f} MB/s), cpu {pw_cpu:.2f} s ({mb / pw_cpu:.1f} MB/s)")
if scan:
    sc_wall, sc_cpu = min(scan)
    print(f"phiwatch scan (decode + detect, JSON out): wall {sc_wall:.2f} s ({mb / sc_wall:.1f} MB/s), cpu {sc_cpu:.2f} s ({mb / sc_cpu:.1f} MB/s)")
print(f"ratio replay/rg throughput: wall {rg_wall / pw_wall:.2f}, cpu {rg_cpu / pw_cpu:.2f}")
# Each replay ran right after an rg run: the ratio within such a pair is
# steadier than best-of figures on a machine whose speed drifts over minutes.
pairs = list(zip(rg, pw))
if pairs:
    walls = sorted(r[0] / p[0] for r, p in pairs)
    cpus = sorted(r[1] / p[1] for r, p in pairs)
    print(f"ratio per run pair (median, range): wall {statistics.median(walls):.2f} ({walls[0]:.2f}-{walls[-1]:.2f}), "
          f"cpu {statistics.median(cpus):.2f} ({cpus[0]:.2f}-{cpus[-1]:.2f})")
PY
