#!/usr/bin/env bash
# NLM at the default scale (the bundled default): `attractor nlm train` with no options
# (MNIST digits 1/3/6, 4000 updates, 5-8 minutes on 2 CPU cores), then generation (100 chains ×
# 10 000 steps), evaluation against the training and held-out images (1000 chains × 10 000 steps,
# about 3.5 minutes; class shares also after 2000 and 5000 steps), and denoising of 100 held-out
# test digits (25 % of the neurons replaced by U(-1, 1)) with the untrained initial couplings as
# a control.
# Prints a table: check, target, measured, pass/fail. Environment: OUT (run directory), DEVICE,
# SKIP_TRAIN=1 (evaluate an existing run), EAAI_MAX (turn the E_AAI report into a check),
# REPEATS (independent sets of 1000 samples for eval.json, default 1: with more, every figure is
# the mean over the sets and the table gives E_AAI's spread), BIN (a prebuilt binary; default: the
# README's build, see scripts/bin.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-checkpoints/nlm-default}
DEVICE=${DEVICE:-flex}
source scripts/bin.sh
A="$BIN --device $DEVICE --quiet"
T0=$(date +%s)
if [ "${SKIP_TRAIN:-0}" != 1 ]; then
  $A nlm train --run-dir "$OUT" --overwrite "$@"
fi
T1=$(date +%s)
$A nlm generate --run-dir "$OUT" --chains 100 > /dev/null
$A nlm eval --run-dir "$OUT" --record-at 2000,5000 --repeats "${REPEATS:-1}" > /dev/null
$A nlm denoise --run-dir "$OUT" --n-test 100 --corrupt uniform:0.25 --steps 450 --out "$OUT/denoise.png" > /dev/null
$A nlm denoise --run-dir "$OUT" --n-test 100 --corrupt uniform:0.25 --steps 450 --untrained --out "$OUT/denoise-untrained.png" > /dev/null
T2=$(date +%s)
python3 - "$OUT" "$((T1 - T0))" "$((T2 - T1))" "${EAAI_MAX:-}" <<'PY'
import json, sys
out, train_s, post_s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
eaai_max = float(sys.argv[4]) if sys.argv[4] else None
ev = json.load(open(f"{out}/eval.json"))
dn = json.load(open(f"{out}/denoise.json"))
dc = json.load(open(f"{out}/denoise-untrained.json"))
cfg = json.load(open(f"{out}/config.json"))["config"]
rows = []
def row(name, target, value, ok):
    rows.append((name, target, value, "pass" if ok else "FAIL"))
row("polarity: mean pixel vs data", "within ±0.15",
    f"{ev['mean_pixel']:.3f} vs {ev['data_mean_pixel']:.3f}",
    abs(ev["mean_pixel"] - ev["data_mean_pixel"]) <= 0.15)
tr = {x["gen_steps"]: x for x in ev.get("trace", [])}
if 2000 in tr:
    row("polarity after only 2000 steps [report]", "-", f"{tr[2000]['mean_pixel']:.3f}", True)
row(f"E² (vs training images, {ev['gen_steps']} steps)", "< 0.004", f"{ev['e2']:.5f}", ev["e2"] < 0.004)
sd = f" ± {ev['e_aai_sd']:.3f} ({ev['n_repeats']} sets)" if "e_aai_sd" in ev else ""
eaai = f"{ev['e_aai']:.3f}{sd} (Acc_S {ev['acc_s']:.3f}, Acc_T {ev['acc_t']:.3f})"
if eaai_max is None:
    row("E_AAI (training) [report]", "paper's calibration 0.245", eaai, True)
else:
    row("E_AAI (training; mean over the sets)" if sd else "E_AAI (training)", f"<= {eaai_max}", eaai, ev["e_aai"] <= eaai_max)
if "class_tv" in ev:
    shares = " / ".join(f"{c} {100 * p:.1f}" for c, p in zip(ev["classes"], ev["class_shares"]))
    data = " / ".join(f"{100 * p:.1f}" for p in ev["data_class_shares"])
    row(f"class shares by nearest training image, % ({ev['gen_steps']} steps)", "TV <= 0.15, 0 starved",
        f"{shares} (data {data}): TV {ev['class_tv']:.3f}, {ev['classes_starved']} starved",
        ev["class_tv"] <= 0.15 and ev["classes_starved"] == 0)
    for s in (2000, 5000):
        if s in tr and "class_tv" in tr[s]:
            row(f"class-share TV after only {s} steps [report]", "-", f"{tr[s]['class_tv']:.3f}", True)
t = ev.get("test", {})
if t:
    row("E_AAI (held-out) [report]", "-", f"{t['e_aai']:.3f} (Acc_S {t['acc_s']:.3f}, Acc_T {t['acc_t']:.3f})", True)
row("denoise: restored / corrupted MSE", "<= 0.5", f"{dn['mse_corrupted']:.4f} -> {dn['mse_restored']:.4f} ({dn['mse_ratio']:.3f})", dn["mse_ratio"] <= 0.5)
row("denoise: nearest clean image is own", ">= 0.8", f"{dn['nearest_correct_frac']:.2f}", dn["nearest_correct_frac"] >= 0.8)
row("denoise: stop step (energy rule) [report]", "-", f"mean {dn.get('stop_step_mean', dn['steps']):.1f} (oracle best {dn['best_ratio']:.3f} at step {dn['best_step']})" if "best_ratio" in dn else "-", True)
row("denoise: energy falls monotonically", "yes", f"{dn['energy_initial']:.2f} -> {dn['energy_final']:.3f}, monotone={dn['energy_monotone']}", dn["energy_monotone"])
ctrl_fails = dc["mse_ratio"] > 0.5 or dc["nearest_correct_frac"] < 0.8
row("control: untrained J fails denoising", "fails", f"ratio {dc['mse_ratio']:.3f}, nearest {dc['nearest_correct_frac']:.2f}", ctrl_fails)
w = max(len(r[0]) for r in rows)
print(f"NLM default run: {ev['t_age']} updates (M = {cfg['chains']}, B = {cfg['batch']}, k = {cfg['steps_per_update']}, lr {cfg['lr']}), "
      f"train {train_s} s, generate/eval/denoise {post_s} s")
print(f"{'check':<{w}}  {'target':<22}  {'measured':<48}  result")
for r in rows:
    print(f"{r[0]:<{w}}  {r[1]:<22}  {r[2]:<48}  {r[3]}")
fails = sum(r[3] == "FAIL" for r in rows)
print(f"{len(rows) - fails} passed, {fails} failed")
PY
