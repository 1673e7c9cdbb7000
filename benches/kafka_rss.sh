#!/usr/bin/env bash
# Peak RSS and records/s of `phiwatch run` draining a backlog on a real broker.
# Usage: PHIWATCH_BENCH_BROKERS=127.0.0.1:9092 bash benches/kafka_rss.sh [RECORDS]
# (default 1000000). Fills a new topic with the fixture lines, starts `phiwatch
# run` under /usr/bin/time, waits for phiwatch_records_total to reach RECORDS on
# the metrics endpoint, sends SIGTERM and prints the peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
: "${PHIWATCH_BENCH_BROKERS:?set PHIWATCH_BENCH_BROKERS=HOST:PORT}"
export PHIWATCH_KEY=${PHIWATCH_KEY:-000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f}
cargo build --release --quiet --bench kafka_drain --bin phiwatch
bench=$(ls -t target/release/deps/kafka_drain-* | grep -v '\.d$' | head -1)
topic=$(PHIWATCH_BENCH_PRODUCE_ONLY=1 PHIWATCH_BENCH_RECORDS=$n "$bench" --bench 2>/dev/null | tail -1)
work=$(mktemp -d)
port=19464
/usr/bin/time -v target/release/phiwatch run --brokers "$PHIWATCH_BENCH_BROKERS" --group "rss-$topic" \
  --topic "$topic" --out "$work/out" --metrics "127.0.0.1:$port" 2> "$work/time.txt" &
pid=$!
start=$(date +%s.%N)
while :; do
  got=$(curl -s "127.0.0.1:$port/metrics" 2>/dev/null | awk '/^phiwatch_records_total/ {print $2}' || true)
  [ "${got:-0}" -ge "$n" ] && break
  sleep 0.5
done
end=$(date +%s.%N)
pkill -TERM -x phiwatch || true
wait $pid || true
rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' "$work/time.txt")
python3 -c "import sys; n,s,e,r=int(sys.argv[1]),float(sys.argv[2]),float(sys.argv[3]),int(sys.argv[4]); print(f'records={n} drained in {e-s:.1f}s ({n/(e-s):.0f} rec/s, from first poll) peak_rss={r/1024:.0f} MiB')" "$n" "$start" "$end" "$rss"
rm -rf "$work"
