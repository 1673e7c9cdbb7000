"""Read a DataSketches HLL sketch file written by phiwatch and print its estimate.

usage: python3 tests/py/check_sketch.py FILE
prints: estimate lower_2sd upper_2sd lg_k
"""

import sys

import datasketches as ds


def main(path):
    with open(path, "rb") as f:
        sk = ds.hll_sketch.deserialize(f.read())
    print(
        "%.6f %.6f %.6f %d"
        % (sk.get_estimate(), sk.get_lower_bound(2), sk.get_upper_bound(2), sk.lg_config_k)
    )


if __name__ == "__main__":
    main(sys.argv[1])
