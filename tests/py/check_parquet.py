"""Second reader: check phiwatch's Parquet output with pyarrow and DuckDB.

Usage: python3 tests/py/check_parquet.py OUT_DIR [--min-findings N]

Checks that every findings and dead-letter file has CONTRACT.md's column names and
types, that DuckDB reads the folder with a glob, and that finding_id is unique.
"""
import argparse
import glob
import os
import sys

import datasketches
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

FINDINGS = [
    ("finding_id", pa.string()),
    ("time", pa.timestamp("us", tz="UTC")),
    ("rule_id", pa.string()),
    ("category", pa.string()),
    ("kind", pa.string()),
    ("severity", pa.string()),
    ("confidence", pa.float32()),
    ("ocsf_class_uid", pa.int32()),
    ("source_format", pa.string()),
    ("source", pa.string()),
    ("source_line", pa.uint64()),
    ("kafka_partition", pa.int32()),
    ("kafka_offset", pa.int64()),
    ("location", pa.string()),
    ("value_hmac", pa.string()),
    ("value_masked", pa.string()),
    ("key_id", pa.string()),
    ("principal", pa.string()),
    ("client_ip", pa.string()),
    ("dest_host", pa.string()),
    ("http_method", pa.string()),
    ("url_path", pa.string()),
    ("http_status", pa.uint16()),
    ("detail", pa.string()),
]

DEAD_LETTER = [
    ("source", pa.string()),
    ("source_line", pa.uint64()),
    ("kafka_partition", pa.int32()),
    ("kafka_offset", pa.int64()),
    ("length", pa.uint64()),
    ("reason", pa.string()),
    ("preview", pa.string()),
]


EXPOSURE = [
    ("principal", pa.string()),
    ("client_ip", pa.string()),
    ("source", pa.string()),
    ("window_start", pa.timestamp("us", tz="UTC")),
    ("window_end", pa.timestamp("us", tz="UTC")),
    ("requests", pa.uint64()),
    ("bytes_out", pa.uint64()),
    ("patients_count", pa.uint64()),
    ("records_count", pa.uint64()),
    ("patients_exact", pa.bool_()),
    ("records_exact", pa.bool_()),
    ("patient_hashes", pa.list_(pa.uint64())),
    ("record_hashes", pa.list_(pa.uint64())),
    ("patients_sketch", pa.binary()),
    ("records_sketch", pa.binary()),
    ("key_id", pa.string()),
]


def check_exposure(path):
    """Contract columns first (extra columns may follow); sketches read by DataSketches."""
    schema = pq.read_schema(path)
    got = [(f.name, f.type) for f in schema][: len(EXPOSURE)]
    want = [(n, t) for n, t in EXPOSURE]
    # list item field names differ between writers; compare value types for lists.
    norm = lambda cols: [(n, t.value_type if pa.types.is_list(t) else t) for n, t in cols]
    if norm(got) != norm(want):
        raise SystemExit(f"{path}: exposure schema differs:\n got {got}\n want {want}")
    t = pq.read_table(path).to_pylist()
    for row in t:
        for what in ("patients", "records"):
            sk = datasketches.hll_sketch.deserialize(row[f"{what}_sketch"])
            est, n = sk.get_estimate(), row[f"{what}_count"]
            if row[f"{what}_exact"]:
                if len(row[f"{what[:-1]}_hashes"]) != n:
                    raise SystemExit(f"{path}: {what}_hashes length differs from {what}_count")
                if abs(est - n) > max(1.0, 0.03 * n):
                    raise SystemExit(f"{path}: {what} sketch estimate {est} far from exact {n}")
            elif not (sk.get_lower_bound(3) <= n <= sk.get_upper_bound(3)):
                raise SystemExit(f"{path}: {what} count {n} outside the sketch's 3-sigma bounds")
    return len(t)


def check_schema(path, expected):
    schema = pq.read_schema(path)
    got = [(f.name, f.type) for f in schema]
    if got != expected:
        raise SystemExit(f"{path}: schema differs from the contract:\n got {got}\n want {expected}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--min-findings", type=int, default=1)
    args = ap.parse_args()
    passed = 0
    files = sorted(glob.glob(os.path.join(args.out, "findings", "**", "*.parquet"), recursive=True))
    if not files:
        raise SystemExit("no findings files")
    for f in files:
        check_schema(f, FINDINGS)
        passed += 1
    for f in sorted(glob.glob(os.path.join(args.out, "dead_letter", "**", "*.parquet"), recursive=True)):
        check_schema(f, DEAD_LETTER)
        passed += 1
    exposure_rows = 0
    for f in sorted(glob.glob(os.path.join(args.out, "exposure", "**", "*.parquet"), recursive=True)):
        exposure_rows += check_exposure(f)
        passed += 1
    if exposure_rows == 0:
        raise SystemExit("no exposure rows")
    print(f"exposure rows checked with datasketches: {exposure_rows}")
    con = duckdb.connect()
    pattern = os.path.join(args.out, "findings", "**", "*.parquet")
    n, distinct = con.execute(
        f"select count(*), count(distinct finding_id) from read_parquet('{pattern}')"
    ).fetchone()
    if n < args.min_findings:
        raise SystemExit(f"duckdb read {n} findings, expected at least {args.min_findings}")
    if n != distinct:
        raise SystemExit(f"finding_id not unique: {n} rows, {distinct} distinct")
    passed += 1
    kinds = con.execute(
        f"select kind, count(*) from read_parquet('{pattern}') group by kind order by kind"
    ).fetchall()
    print("findings by kind (duckdb):", ", ".join(f"{k} {c}" for k, c in kinds))
    print(f"{passed} passed, 0 failed")


if __name__ == "__main__":
    sys.exit(main())
