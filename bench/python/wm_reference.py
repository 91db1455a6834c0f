#!/usr/bin/env python3
"""Reference weight matching in plain NumPy + SciPy (used by the `wm` benchmark verb).

usage: wm_reference.py A.safetensors B.safetensors SPEC.json [--seed S] [--repeats R] [--orders numpy|csharp]

The algorithm is Git Re-Basin's `weight_matching` (ALGORITHMS.md sections 1.1-1.6), on the permutation spec
that FedRebasin exported (SPEC.json), so both implementations use identical groups:

  perms := identity for every group
  repeat up to max_sweeps times:
      for p in a random order of the groups:
          A := zeros(n, n)                                      float64
          for (tensor, axis) in the cost axes of p:             (axes not marked cost_excluded)
              WB := theta_B[tensor] with every OTHER axis gathered by its group's current perm (np.take)
              A  += moveaxis(theta_A[tensor], axis, 0).reshape(n, -1) @ moveaxis(WB, axis, 0).reshape(n, -1).T
          col := linear_sum_assignment(A, maximize=True)
          if sum(A[i, col[i]]) > sum(A[i, perm[p][i]]) + tolerance: perm[p] := col; progress
      stop after a sweep without progress

Like FedRebasin (and unlike Git Re-Basin, which assigns unconditionally) a permutation is only replaced when it
gains more than the tolerance; the two differ only on exact ties. The objective is the sum over every tensor
that enters some cost of <theta_A[k], pi(theta_B)[k]>_F, as in FedRebasin.

Sweep orders: --orders numpy (default) draws each sweep's order with np.random.default_rng(seed).permutation;
--orders csharp replays the orders FedRebasin used (SPEC.json "csharp_orders"), continuing with the numpy
generator should more sweeps be needed.

Timing: time.perf_counter around the whole search (float64 conversion, sweeps, objectives), after the files are
loaded; best of R runs. Prints one JSON object on stdout:
  {"seconds", "times", "sweeps", "seconds_per_sweep", "parts" (seconds of the fastest run in np.take/moveaxis/reshape,
   the cost matmuls and linear_sum_assignment), "objective_before", "objective_after", "permutations_digest",
   "orders", "numpy", "scipy", "blas", "env"}
"""
import argparse
import hashlib
import json
import os
import struct
import sys
import time

import numpy as np
import scipy
from scipy.optimize import linear_sum_assignment

# safetensors dtype -> NumPy dtype (the subset FedRebasin writes; numpy-only copy of tests/python/fedrebasin_torch.py)
_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


def load_file(path):
    """Reads a safetensors file into {name: np.ndarray} (little-endian host assumed)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    data = raw[8 + n:]
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype=_DTYPES[info["dtype"]]).reshape(info["shape"]).copy()
    return tensors


def permute_other_axes(w, slots, perms, except_axis):
    """w with every axis except `except_axis` gathered by its group's current permutation (new[i] = old[perm[i]])."""
    for axis, group in enumerate(slots):
        if axis == except_axis or group is None:
            continue
        w = np.take(w, perms[group], axis=axis)
    return w


def objective(theta_a, theta_b, axes_to_groups, perms):
    return float(sum(
        np.vdot(a, permute_other_axes(theta_b[name], axes_to_groups[name], perms, -1))
        for name, a in theta_a.items()))


def weight_matching(spec, a32, b32, seed, orders_mode):
    groups = spec["groups"]
    axes_to_groups = spec["axes_to_groups"]
    max_sweeps = int(spec["max_sweeps"])
    tolerance = float(spec["tolerance"])
    cost_tensors = sorted({ax[0] for g in groups for ax in g["axes"] if not ax[2]})
    theta_a = {k: a32[k].astype(np.float64) for k in cost_tensors}
    theta_b = {k: b32[k].astype(np.float64) for k in cost_tensors}
    perms = {g["name"]: np.arange(g["size"]) for g in groups}
    by_name = {g["name"]: g for g in groups}
    names = [g["name"] for g in groups]
    replay = (spec.get("csharp_orders") or []) if orders_mode == "csharp" else []
    rng = np.random.default_rng(seed)

    parts = {"take": 0.0, "matmul": 0.0, "lap": 0.0}
    clock = time.perf_counter
    before = objective(theta_a, theta_b, axes_to_groups, perms)
    sweeps = 0
    while sweeps < max_sweeps:
        order = replay[sweeps] if sweeps < len(replay) else [names[i] for i in rng.permutation(len(names))]
        sweeps += 1
        progress = False
        for p in order:
            n = by_name[p]["size"]
            cost = np.zeros((n, n))
            for tensor, axis, excluded in by_name[p]["axes"]:
                if excluded:
                    continue
                t0 = clock()
                wa = np.moveaxis(theta_a[tensor], axis, 0).reshape((n, -1))
                wb = permute_other_axes(theta_b[tensor], axes_to_groups[tensor], perms, axis)
                wb = np.moveaxis(wb, axis, 0).reshape((n, -1))
                t1 = clock()
                cost += wa @ wb.T
                parts["take"] += t1 - t0
                parts["matmul"] += clock() - t1
            t0 = clock()
            rows, cols = linear_sum_assignment(cost, maximize=True)
            parts["lap"] += clock() - t0
            assert (rows == np.arange(n)).all()
            old_value = cost[np.arange(n), perms[p]].sum()
            new_value = cost[np.arange(n), cols].sum()
            if new_value > old_value + tolerance:
                progress = True
                perms[p] = cols
        if not progress:
            break
    after = objective(theta_a, theta_b, axes_to_groups, perms)
    return perms, sweeps, before, after, parts


def blas_name():
    try:
        info = np.__config__.blas_opt_info  # NumPy < 1.26
        return ",".join(info.get("libraries", [])) or "unknown"
    except AttributeError:
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("spec")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--orders", choices=["numpy", "csharp"], default="numpy")
    args = parser.parse_args()

    with open(args.spec, encoding="utf-8") as f:
        spec = json.load(f)
    a32 = load_file(args.a)
    b32 = load_file(args.b)

    times = []
    result = None
    for _ in range(max(1, args.repeats)):
        t0 = time.perf_counter()
        run = weight_matching(spec, a32, b32, args.seed, args.orders)
        times.append(time.perf_counter() - t0)
        if result is None or times[-1] <= min(times):
            result = run
    perms, sweeps, before, after, parts = result
    digest = hashlib.sha256()
    for g in spec["groups"]:
        digest.update(np.asarray(perms[g["name"]], dtype="<i8").tobytes())
    best = min(times)
    print(json.dumps({
        "seconds": best,
        "times": times,
        "sweeps": sweeps,
        "seconds_per_sweep": best / sweeps,
        "parts": parts,
        "objective_before": before,
        "objective_after": after,
        "permutations_digest": digest.hexdigest()[:16],
        "orders": args.orders,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "blas": blas_name(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
