#!/usr/bin/env python3
"""Time scipy.optimize.linear_sum_assignment on a matrix stored as .npy (used by the `lap` benchmark verb).

usage: scipy_lap.py MATRIX.npy [--repeats R] [--minimize]

Loads the float64 matrix, runs linear_sum_assignment once as a warm-up, then R timed runs
(time.perf_counter), and prints one JSON object on stdout:
  {"n": N, "maximize": true, "times_ms": [...], "best_ms": B, "objective": OBJ, "scipy": "x.y.z"}
"""
import argparse
import json
import sys
import time

import numpy as np
import scipy
from scipy.optimize import linear_sum_assignment


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("matrix")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--minimize", action="store_true")
    args = parser.parse_args()

    cost = np.load(args.matrix)
    if cost.dtype != np.float64 or cost.ndim != 2 or cost.shape[0] != cost.shape[1]:
        print(f"expected a square float64 matrix, got {cost.dtype} {cost.shape}", file=sys.stderr)
        return 2
    cost = np.ascontiguousarray(cost)
    maximize = not args.minimize

    rows, cols = linear_sum_assignment(cost, maximize=maximize)  # warm-up
    times = []
    for _ in range(max(1, args.repeats)):
        t0 = time.perf_counter()
        rows, cols = linear_sum_assignment(cost, maximize=maximize)
        times.append((time.perf_counter() - t0) * 1e3)

    objective = float(cost[rows, cols].sum())
    print(json.dumps({
        "n": int(cost.shape[0]),
        "maximize": maximize,
        "times_ms": times,
        "best_ms": min(times),
        "objective": objective,
        "scipy": scipy.__version__,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
