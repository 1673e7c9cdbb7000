"""Generate the reference HLL sketches under fixtures/sketch/ with Apache DataSketches.

Run once (pip install datasketches); the outputs are checked in so `cargo test`
can prove without Python that phiwatch reads what the Python library writes and
writes what it would. Each sketch holds the 64-bit integers 0..n-1, which is how
phiwatch feeds keyed hashes (as signed 64-bit integers) to its sketches.

usage: python3 tests/py/make_reference.py fixtures/sketch
"""

import json
import os
import sys

import datasketches as ds

CASES = [
    # (file stem, lg_k, hll type, n): list, set and HLL modes of the serialized form
    ("hll4_lgk12_n100", 12, ds.tgt_hll_type.HLL_4, 100),
    ("hll4_lgk12_n2000", 12, ds.tgt_hll_type.HLL_4, 2000),
    ("hll4_lgk12_n100000", 12, ds.tgt_hll_type.HLL_4, 100000),
    ("hll8_lgk14_n50000", 14, ds.tgt_hll_type.HLL_8, 50000),
]


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    expected = {}
    for stem, lg_k, tgt, n in CASES:
        sk = ds.hll_sketch(lg_k, tgt)
        for i in range(n):
            sk.update(i)
        with open(os.path.join(out_dir, stem + ".bin"), "wb") as f:
            f.write(sk.serialize_compact())
        expected[stem] = {
            "lg_k": lg_k,
            "n": n,
            "estimate": sk.get_estimate(),
            "lower_2sd": sk.get_lower_bound(2),
            "upper_2sd": sk.get_upper_bound(2),
        }
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fixtures/sketch")
