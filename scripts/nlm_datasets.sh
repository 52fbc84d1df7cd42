#!/usr/bin/env bash
# The NLM on datasets other than the tuned digits, with the defaults: for each dataset,
# `attractor nlm train` (no tuning; only the data are named), `nlm generate` (100 chains × 10 000
# steps → grid), `nlm eval` (1000 fresh chains × 10 000 steps, its defaults) and `nlm denoise`
# (100 held-out images, 25 % of the neurons replaced by U(−1, 1), 450 noise-free steps).
# Prints a table (samples' mean pixel against the data's, inverted fraction, E², E_AAI,
# denoising ratio, that of restoring every image to the training images' mean (a baseline with no
# memory of single images), nearest-correct, and on labelled sets the class shares: the total
# variation distance between the samples' classes (each labelled by its nearest training image)
# and the data's, and the classes under a quarter of their data share) with the checks: mean
# within ±0.15, < 5 % inverted, restored/corrupted MSE ≤ 0.5 and below the mean-image ratio,
# ≥ 80 % nearest-correct on the digit sets (≥ 50 % on the others), and on labelled sets class TV
# ≤ 0.15 with no class starved. 4–8 minutes of training per dataset on 2 CPU cores, about 7 more
# for the rest. GEN_STEPS (default 10000, `nlm generate`'s own) sets the steps of `nlm generate`;
# EVAL_ARGS passes options to `nlm eval` (e.g. `--gen-steps 5000`).
#
# Datasets: all ten MNIST digits; digits 0, 2, 7; MNIST 1/3/6 with inverted polarity (white
# background); simple shapes on black; a small grey set with a mid-grey mean (1200 PNGs, the
# first 1000 trained on); and, to locate where the grey set fails, the same grey images with
# their contrast stretched 3× about mid-grey; all ten digits as labelled PNGs in class
# sub-folders (600 a digit); and four shaded, textured grey-level object classes (ball, box,
# ring, cone) on a dark background, 1500 each in class sub-folders. All but the first two are
# built by scripts/nlm_datasets.py (seeded).
# Environment: OUT (default checkpoints/nlm-datasets), DEVICE (default flex), DATASETS (a
# space-separated subset of: digits-all digits-027 inverted shapes grey grey-contrast digits-png
# objects default), SKIP_TRAIN=1
# (evaluate existing runs), BIN (a prebuilt binary; default: the README's build, see scripts/bin.sh), DOCS=1 (copy the
# grids to docs/img/nlm-datasets/).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-checkpoints/nlm-datasets}
DEVICE=${DEVICE:-flex}
DATASETS=${DATASETS:-digits-all digits-027 inverted shapes grey grey-contrast digits-png objects}
GEN_STEPS=${GEN_STEPS:-10000}
EVAL_ARGS=${EVAL_ARGS:-}
source scripts/bin.sh
A="$BIN --device $DEVICE --quiet"
mkdir -p "$OUT"
[ -d "$OUT/data/objects" ] || python3 scripts/nlm_datasets.py "$OUT/data"

args_of() {
  case "$1" in
    digits-all) echo "--digits ''" ;;
    digits-027) echo "--digits 0,2,7" ;;
    inverted) echo "--data $OUT/data/inverted" ;;
    shapes) echo "--data $OUT/data/shapes" ;;
    grey) echo "--data $OUT/data/grey --n-data 1000" ;;
    grey-contrast) echo "--data $OUT/data/grey-contrast --n-data 1000" ;;
    digits-png) echo "--data $OUT/data/digits-png" ;;
    objects) echo "--data $OUT/data/objects" ;;
    default) echo "" ;;
    *) echo "unknown dataset $1" >&2; exit 2 ;;
  esac
}

for name in $DATASETS; do
  run="$OUT/$name"
  args=$(args_of "$name")
  if [ "${SKIP_TRAIN:-0}" != 1 ]; then
    t0=$(date +%s)
    eval "$A nlm train --run-dir $run --overwrite $args"
    echo $(( $(date +%s) - t0 )) > "$run/train_seconds"
  fi
  $A nlm generate --run-dir "$run" --chains 100 --steps "$GEN_STEPS" > /dev/null
  eval "$A nlm eval --run-dir $run $EVAL_ARGS" > /dev/null
  $A nlm denoise --run-dir "$run" --n-test 100 --corrupt uniform:0.25 --steps 450 --out "$run/denoise.png" > /dev/null
  if [ "${DOCS:-0}" = 1 ]; then
    mkdir -p docs/img/nlm-datasets
    cp "$run/generate.png" "docs/img/nlm-datasets/$name.png"
    cp "$run/denoise.png" "docs/img/nlm-datasets/$name-denoise.png"
  fi
  echo "done: $name" >&2
done

python3 - "$OUT" $DATASETS <<'PY'
import json, os, sys
out, names = sys.argv[1], sys.argv[2:]
digit_sets = {"digits-all", "digits-027", "inverted", "default", "digits-png"}
rows, fails = [], 0
for name in names:
    run = os.path.join(out, name)
    ev = json.load(open(os.path.join(run, "eval.json")))
    dn = json.load(open(os.path.join(run, "denoise.json")))
    secs = open(os.path.join(run, "train_seconds")).read().strip() if os.path.exists(os.path.join(run, "train_seconds")) else "-"
    checks = [abs(ev["mean_pixel"] - ev["data_mean_pixel"]) <= 0.15,
              ev["inverted_frac"] < 0.05,
              dn["mse_ratio"] <= 0.5,
              dn["mse_ratio"] < dn["mean_image_ratio"],
              dn["nearest_correct_frac"] >= (0.8 if name in digit_sets else 0.5)]
    labelled = "class_tv" in ev
    if labelled:
        checks += [ev["class_tv"] <= 0.15, ev["classes_starved"] == 0]
    ok = all(checks)
    fails += not ok
    rows.append((name, ev["n_data"], secs, f"{ev['mean_pixel']:.3f} / {ev['data_mean_pixel']:.3f}",
                 f"{100 * ev['inverted_frac']:.1f} %", f"{ev['e2']:.5f}", f"{ev['e_aai']:.3f}",
                 f"{ev['nn_ratio']:.2f}",
                 f"{ev['class_tv']:.3f}" if labelled else "-",
                 f"{ev['classes_starved']} of {len(ev['classes'])}" if labelled else "-",
                 f"{dn['mse_ratio']:.3f}", f"{dn['mean_image_ratio']:.3f}",
                 f"{dn.get('stop_step_mean', dn['steps']):.0f}", f"{dn['best_ratio']:.3f} @ {dn['best_step']}" if "best_ratio" in dn else "-",
                 f"{dn['nearest_correct_frac']:.2f}",
                 "pass" if ok else "FAIL"))
head = ("dataset", "images", "train s", "mean pixel (samples / data)", "inverted", "E²", "E_AAI",
        "NN ratio", "class TV", "starved", "denoise MSE ratio", "mean-image ratio", "stop step",
        "oracle best", "nearest correct", "result")
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for r in rows:
    print("| " + " | ".join(str(x) for x in r) + " |")
print(f"{len(rows) - fails} passed, {fails} failed")
PY
