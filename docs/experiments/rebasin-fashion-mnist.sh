#!/usr/bin/env bash
# Re-basin on real data: the measurements behind docs/REBASIN.md.
# Trains pairs of models on Fashion-MNIST from different seeds, merges each pair at the midpoint with every method,
# and measures interpolation barriers. Results (JSON) go to runs/rebasin/; the table is printed at the end.
#   docs/experiments/rebasin-fashion-mnist.sh            everything (about 30 minutes on 2 CPU cores)
#   SKIP_TRAINING=1 docs/experiments/rebasin-fashion-mnist.sh   reuse the trained models
#   SKIP_DONE=1 ...                                               also keep results already written
set -euo pipefail
cd "$(dirname "$0")/../.."
out=runs/rebasin
mkdir -p "$out"

train() {  # name seed args...
  local name=$1 seed=$2; shift 2
  [ -n "${SKIP_TRAINING:-}" ] && [ -f "$out/$name-seed$seed.safetensors" ] && return
  ./fedrebasin train --dataset fashion-mnist --seed "$seed" --out "$out/$name-seed$seed.safetensors" "$@"
}

for seed in 1 2 3 4; do train mlp "$seed" --model mlp --epochs 3; done
for norm in layer batch; do
  for seed in 1 2; do
    train "resnet20-$norm" "$seed" --model resnet20 --width 0.5 --norm "$norm" --optimizer sgd --lr 0.05 \
      --momentum 0.9 --weight-decay 5e-4 --schedule cosine --epochs 3
  done
done

calibration() { case "$1" in mlp*) echo 5000 ;; *) echo 1000 ;; esac; }  # sequential repair makes one pass per point
merge() {  # pair-name a b method repair
  [ -n "${SKIP_DONE:-}" ] && [ -f "$out/$1-$4-$5.json" ] && return
  ./fedrebasin merge "$2" "$3" --method "$4" --repair "$5" --dataset fashion-mnist --calibration "$(calibration "$1")" \
    --out "$out/$1-$4-$5.safetensors" --report "$out/$1-$4-$5.json" >/dev/null
  echo "  $1 $4 + $5 done"
}
interpolate() {  # pair-name a b align repair
  [ -n "${SKIP_DONE:-}" ] && [ -f "$out/$1-curve-$4-$5.json" ] && return
  ./fedrebasin interpolate "$2" "$3" --align "$4" --repair "$5" --steps 11 --dataset fashion-mnist --calibration "$(calibration "$1")" \
    --json "$out/$1-curve-$4-$5.json" --png "$out/$1-curve-$4-$5.png" >/dev/null
  echo "  $1 curve $4 + $5 done"
}

for pair in "mlp12 $out/mlp-seed1.safetensors $out/mlp-seed2.safetensors" "mlp34 $out/mlp-seed3.safetensors $out/mlp-seed4.safetensors"; do
  set -- $pair
  for m in "naive none" "naive repair" "naive rescale" "wm none" "wm repair" "wm rescale" "wm reshift"; do merge "$1" "$2" "$3" $m; done
  for c in "none none" "wm none" "wm repair"; do interpolate "$1" "$2" "$3" $c; done
done
for norm in layer batch; do
  a="$out/resnet20-$norm-seed1.safetensors"; b="$out/resnet20-$norm-seed2.safetensors"
  modes=("naive none" "wm none" "wm repair" "wm rescale")
  [ "$norm" = batch ] && modes+=("naive bn-reset" "wm bn-reset")
  [ "$norm" = layer ] && modes+=("naive repair")
  for m in "${modes[@]}"; do merge "resnet20-$norm" "$a" "$b" $m; done
  interpolate "resnet20-$norm" "$a" "$b" none none
  interpolate "resnet20-$norm" "$a" "$b" wm none
done

/usr/bin/python3 - "$out" <<'PY'
import glob, json, os, sys
out = sys.argv[1]
print(f"{'pair':16} {'method':8} {'repair':9} {'endpoint A':>10} {'endpoint B':>10} {'midpoint':>9} {'loss':>7} {'WM s':>6}")
for path in sorted(glob.glob(os.path.join(out, "*-*-*.json"))):
    if "-curve-" in path:
        continue
    r = json.load(open(path))
    name = os.path.basename(path)[: -len(f"-{r['method']}-{r['repair']}.json")]
    ends = [m["test_accuracy"] * 100 for m in r["models"]]
    print(f"{name:16} {r['method']:8} {r['repair']:9} {ends[0]:9.2f}% {ends[1]:9.2f}% {r['merged']['test_accuracy'] * 100:8.2f}% "
          f"{r['merged']['test_loss']:7.4f} {r['seconds']:6.1f}")
print()
print(f"{'pair':16} {'align':6} {'repair':7} {'loss barrier':>12} {'acc. barrier':>13} {'midpoint acc.':>13}")
for path in sorted(glob.glob(os.path.join(out, "*-curve-*.json"))):
    c = json.load(open(path))
    name = os.path.basename(path).split("-curve-")[0]
    mid = c["accuracy"][len(c["accuracy"]) // 2] * 100
    print(f"{name:16} {c['align']:6} {c['repair']:7} {c['loss_barrier']:12.4f} {c['accuracy_barrier'] * 100:12.2f}p {mid:12.2f}%")
PY
