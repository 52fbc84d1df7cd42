#!/usr/bin/env bash
# The GPU check: what a machine with one NVIDIA GPU runs in <= 8 minutes from a binary built
# beforehand (no build on the GPU machine). It prints the device and what `attractor devices`
# sees (and why a backend is not usable), runs `attractor bench` for the three families at the
# papers' shapes on each GPU backend the binary has (wgpu; cuda too in a `--features cuda`
# build) with achieved GFLOP/s against the measured GEMM peak (and PEAK_GFLOPS, the data-sheet
# f32 peak, when given), runs the PyTorch reference peer in the same minutes when PEER names it,
# trains a slice of the paper NLM configuration (scripts/nlm_paper.json) for SLICE_S seconds and
# prints updates/s and the projected time of the full 120 000 updates, and writes everything to
# one JSON file ($OUT/gpu_check.json).
#
# Environment: BIN (the prebuilt binary; default: the release build of this checkout,
# ${CARGO_TARGET_DIR:-target}/release/attractor, as `cargo build --release` makes it; this
# script never builds: on a GPU machine the build is made beforehand, with `--features cuda`
# for CUDA),
# DEVICES (default: cuda and/or wgpu as the binary has them), PEER (path of torch_peers.py),
# PEAK_GFLOPS, SLICE_S (default 120), OUT (default checkpoints/gpu-check), SMALL=1 (tiny shapes
# and a 15 s slice: the whole script on a CPU in < 5 minutes, e.g. DEVICES=flex SMALL=1; CI
# runs it so).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-checkpoints/gpu-check}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/attractor}
SMALL=${SMALL:-0}
[ -x "$BIN" ] || { echo "gpu_check: no binary at $BIN (build it first: cargo build --release [--features cuda])" >&2; exit 2; }
mkdir -p "$OUT"
LOG="$OUT/rows.jsonl"
: > "$LOG"
T0=$(date +%s)
note() { python3 -c 'import json,sys; print(json.dumps({"bench": "note", "what": sys.argv[1], "text": sys.argv[2]}))' "$1" "$2" >> "$LOG"; }

echo "== machine"
GPU=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi")
echo "nvidia-smi: $GPU"; note nvidia-smi "$GPU"
DEV_TXT=$("$BIN" --quiet devices 2>&1); echo "$DEV_TXT"; note devices "$DEV_TXT"

if [ -z "${DEVICES:-}" ]; then
  DEVICES=""
  grep -q "^compiled backends:.*cuda" <<< "$DEV_TXT" && grep -q "^cuda device" <<< "$DEV_TXT" && DEVICES="cuda"
  grep -q "^wgpu adapter" <<< "$DEV_TXT" && DEVICES="$DEVICES wgpu"
  if [ -z "$DEVICES" ]; then
    echo "gpu_check: no usable GPU backend (see above); nothing to measure on a GPU" >&2
    note error "no usable GPU backend"
    DEVICES=flex
  fi
fi
if [ "$SMALL" = 1 ]; then
  NLM_ARGS=(--neurons 196 --chains 64 --updates 2 --sample-steps 10)
  DDM_ARGS=(--neurons 100 --iters 10 --sim-steps 20 --trajectories 32)
  FEP_ARGS=(--neurons 64 --grid 8)
  SLICE_S=${SLICE_S:-15}
  SLICE_SET=(--set n_data=500 --set chains=64 --set batch=64 --set pool=2 --set log_every=5)
else
  NLM_ARGS=(); DDM_ARGS=(); FEP_ARGS=()
  SLICE_S=${SLICE_S:-120}
  SLICE_SET=(--set log_every=10)
fi
PEAK=()
[ -n "${PEAK_GFLOPS:-}" ] && PEAK=(--peak-gflops "$PEAK_GFLOPS")

for d in $DEVICES; do
  echo "== bench on $d"
  # Each bench prints JSON rows on stdout (one per measurement).
  "$BIN" --quiet bench nlm --devices "$d" "${NLM_ARGS[@]}" | grep '^{' | tee -a "$LOG"
  "$BIN" --quiet bench ddm --devices "$d" "${PEAK[@]}" "${DDM_ARGS[@]}" | grep '^{' | tee -a "$LOG"
  "$BIN" --quiet bench fep --devices "$d" "${FEP_ARGS[@]}" | grep '^{' | tee -a "$LOG"
done

if [ -n "${PEER:-}" ]; then
  echo "== PyTorch peer ($PEER), same minutes"
  if [ "$SMALL" = 1 ]; then
    P_NLM=(--n 196 --chains 64 --batch 64 --updates 2); P_DDM=(--n 100 --iters 10); P_FEP=(--epochs 200)
  else
    P_NLM=(); P_DDM=(); P_FEP=()
  fi
  for c in "nlm-step ${P_NLM[*]}" "ddm-step ${P_DDM[*]}" "fep-train ${P_FEP[*]}" "gemm"; do
    # shellcheck disable=SC2086
    python3 "$PEER" $c 2>/dev/null | grep '^{' | sed 's/^{/{"peer": true, /' | tee -a "$LOG" \
      || { echo "peer \`$c\` failed (is torch installed?)"; note peer-failed "$c"; }
  done
fi

D1=${DEVICES%% *}
D1=${D1:-flex}
echo "== paper NLM slice on $D1 for ${SLICE_S}s (scripts/nlm_paper.json)"
SLICE="$OUT/nlm-slice"
timeout -s INT "$SLICE_S" "$BIN" --device "$D1" --quiet nlm train --config scripts/nlm_paper.json \
  "${SLICE_SET[@]}" --run-dir "$SLICE" --overwrite
echo "(slice stopped: exit $?)"

python3 - "$LOG" "$SLICE" "$OUT/gpu_check.json" "$(( $(date +%s) - T0 ))" <<'PY'
import json, os, sys
log, slice_dir, out, wall = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rows = [json.loads(l) for l in open(log) if l.startswith("{")]
res = {"rows": rows, "wall_s": wall}
m = os.path.join(slice_dir, "metrics.jsonl")
lines = [json.loads(l) for l in open(m)] if os.path.exists(m) else []
if len(lines) >= 2:
    a, b = lines[0], lines[-1]
    rate = (b["step"] - a["step"]) / max(b["wall_s"] - a["wall_s"], 1e-9)
    total = json.load(open(os.path.join(slice_dir, "config.json")))["config"]["updates"]
    res["nlm_slice"] = {"updates_done": b["step"], "updates_per_s": rate, "total_updates": total,
                        "projected_hours": total / rate / 3600}
    print(f"paper NLM: {rate:.2f} updates/s -> {total} updates in {total / rate / 3600:.1f} h")
else:
    res["nlm_slice"] = None
    print("paper NLM slice: too short to measure a rate")
for r in rows:
    if r.get("bench") not in (None, "note") and "gflops" in r:
        print(f"{r.get('bench'):<20} {str(r.get('device',''))[:28]:<28} {r['gflops']:>10.1f} GFLOP/s")
json.dump(res, open(out, "w"), indent=1)
print(f"wrote {out} ({len(rows)} rows, {wall} s)")
PY
