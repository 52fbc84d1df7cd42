#!/usr/bin/env bash
# Python-driven training against the command line: the same NLM configuration trained both
# ways, alternating, ROUNDS rounds (default 3). Prints each round's wall time (whole call /
# process) and training time (metrics.jsonl's wall_s at the last update) and the ratios
# CLI / Python (≥ 0.97: Python as fast as the CLI).
#
#   PY=/path/to/venv/bin/python BIN=target/release/attractor scripts/python_speed.sh
#
# Env: ROUNDS (3), UPDATES (300), DEVICE (flex), OUT (a temporary folder).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-python3}"
BIN="${BIN:-${CARGO_TARGET_DIR:-target}/release/attractor}"
ROUNDS="${ROUNDS:-3}"
UPDATES="${UPDATES:-300}"
DEVICE="${DEVICE:-flex}"
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
# The configuration: MNIST 1/3/6 pooled to 14×14, 1000 images, 128 chains, no final check.
SETS=(pool=2 n_data=1000 chains=128 batch=128 polarity_chains=0 seed=0 "updates=$UPDATES")
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
for r in $(seq 1 "$ROUNDS"); do
  args=()
  for s in "${SETS[@]}"; do args+=(--set "$s"); done
  t0=$(date +%s.%N)
  "$BIN" --device "$DEVICE" --quiet nlm train --run-dir "$OUT/cli-$r" "${args[@]}"
  t1=$(date +%s.%N)
  cli_wall=$(echo "$t1 - $t0" | bc)
  py_wall=$("$PY" - "$OUT/py-$r" "$DEVICE" "${SETS[@]}" <<'PY'
import sys, time, attractor
run_dir, device, *sets = sys.argv[1:]
cfg = {k: (int(v) if v.isdigit() else v) for k, v in (s.split("=", 1) for s in sets)}
t0 = time.perf_counter()
attractor.nlm.train(run_dir, device=device, progress=False, **cfg)
print(f"{time.perf_counter() - t0:.3f}")
PY
)
  cli_train=$("$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["wall_s"])' "$OUT/cli-$r/metrics.jsonl")
  py_train=$("$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["wall_s"])' "$OUT/py-$r/metrics.jsonl")
  echo "round $r: CLI wall ${cli_wall}s train ${cli_train}s | Python wall ${py_wall}s train ${py_train}s | ratio (CLI/Python) wall $(echo "scale=3; $cli_wall / $py_wall" | bc) train $(echo "scale=3; $cli_train / $py_train" | bc)"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" - "$OUT" "$ROUNDS" <<'PY'
import json, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def w(p): return json.loads(open(p).read().splitlines()[-1])["wall_s"]
cli = sum(w(f"{out}/cli-{r}/metrics.jsonl") for r in range(1, rounds + 1))
py = sum(w(f"{out}/py-{r}/metrics.jsonl") for r in range(1, rounds + 1))
print(f"total training time: CLI {cli:.1f} s, Python {py:.1f} s, ratio CLI/Python {cli / py:.3f}")
PY
