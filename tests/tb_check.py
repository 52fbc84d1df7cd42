#!/usr/bin/env python3
"""TensorBoard's own reader on the event files of real training runs.

Trains a tiny run of each family with the release binary, reads `<run>/tb` with TensorBoard's
EventAccumulator and checks: the scalars are metrics.jsonl step for step (each step once,
values to float32 precision), the images are valid PNG files at the checkpoints, the
configuration is there as text; then a run killed with SIGKILL after its event file got ahead
of its last checkpoint, resumed twice, has every step exactly once.

Usage: python tests/tb_check.py [path/to/attractor]   (default: $CARGO_TARGET_DIR/release/attractor)
Prints one line per check and `N passed, M failed`; exits 1 on any failure.
"""

import io
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.util import tensor_util

try:  # a dependency of TensorBoard's; the hand decoder below checks the files without it too
    from PIL import Image
except ImportError:
    Image = None

PASSED = []
FAILED = []


def check(name, ok, detail=""):
    (PASSED if ok else FAILED).append(name)
    print(("ok    " if ok else "FAIL  ") + name + ("" if ok else f": {detail}"), flush=True)


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def metrics(run, strict=True):
    """{name: [(step, value)]} of metrics.jsonl (not strict: a line being written is skipped)."""
    out = {}
    with open(os.path.join(run, "metrics.jsonl")) as f:
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:
                if strict:
                    raise
                continue
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)):
                    out.setdefault(k, []).append((row["step"], v))
    return out


def load(run):
    acc = ea.EventAccumulator(
        os.path.join(run, "tb"),
        size_guidance={ea.SCALARS: 0, ea.IMAGES: 0, ea.TENSORS: 0},
    )
    acc.Reload()
    return acc


def png_ok(data, width, height):
    """Decodes an RGB PNG by hand (signature, chunk CRCs, zlib stream, scanline count)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return False, "no PNG signature"
    at, idat, ihdr = 8, b"", None
    while at < len(data):
        (n,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + n]
        (crc,) = struct.unpack(">I", data[at + 8 + n : at + 12 + n])
        if zlib.crc32(kind + body) != crc:
            return False, f"bad CRC in chunk {kind!r}"
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        at += 12 + n
    if ihdr is None or (ihdr[0], ihdr[1]) != (width, height):
        return False, f"IHDR {ihdr} does not match {width}x{height}"
    channels = {2: 3, 6: 4, 0: 1}.get(ihdr[3], 0)
    raw = zlib.decompress(idat)
    want = height * (1 + width * channels * ihdr[2] // 8)
    return len(raw) == want, f"{len(raw)} bytes of pixels, expected {want}"


def check_scalars(name, run, acc):
    m = metrics(run)
    tags = sorted(acc.Tags()["scalars"])
    check(f"{name}: scalar tags are metrics.jsonl's", tags == sorted(m), f"{tags} vs {sorted(m)}")
    for tag in tags:
        got = [(e.step, e.value) for e in acc.Scalars(tag)]
        want = [(s, f32(v)) for s, v in m.get(tag, [])]
        steps = [s for s, _ in got]
        check(
            f"{name}: `{tag}` has each step once",
            len(steps) == len(set(steps)),
            f"steps {steps}",
        )
        check(
            f"{name}: `{tag}` matches metrics.jsonl",
            got == want,
            f"first differences {[(a, b) for a, b in zip(got, want) if a != b][:3]}, "
            f"{len(got)} vs {len(want)} points",
        )


def check_images(name, acc, tags, steps):
    have = acc.Tags()["images"]
    for tag in tags:
        if tag not in have:
            check(f"{name}: image `{tag}`", False, f"missing (images: {have})")
            continue
        evs = acc.Images(tag)
        check(f"{name}: image `{tag}` at the checkpoints", [e.step for e in evs] == steps, [e.step for e in evs])
        for e in evs:
            ok, why = png_ok(e.encoded_image_string, e.width, e.height)
            if ok and Image is not None:
                img = Image.open(io.BytesIO(e.encoded_image_string))
                img.load()
                ok, why = img.size == (e.width, e.height), f"PIL reads {img.size}"
            check(f"{name}: image `{tag}` at step {e.step} decodes ({e.width}x{e.height})", ok, why)


def check_config(name, run, acc):
    evs = acc.Tensors("config") if "config" in acc.Tags()["tensors"] else []
    check(f"{name}: one config text", len(evs) == 1, f"{len(evs)} texts")
    if evs:
        text = tensor_util.make_ndarray(evs[0].tensor_proto).item().decode()
        with open(os.path.join(run, "config.json")) as f:
            cfg = json.load(f)
        back = json.loads("\n".join(l[4:] for l in text.splitlines()))
        check(f"{name}: the config text is config.json", back == cfg, text[:200])
        plugin = acc.PluginTagToContent("text")
        check(f"{name}: the text plugin knows the config", "config" in plugin, plugin)


def checkpoints(run):
    if not os.path.isdir(run):
        return []
    return [int(f[5:-5]) for f in os.listdir(run) if f.startswith("ckpt-") and f.endswith(".atck")]


def kill_when_ahead(args, run):
    """Starts `args`, SIGKILLs it once metrics.jsonl has a step past a checkpoint >= 20; returns
    the newest checkpoint after the kill and the logged steps past it."""
    child = subprocess.Popen(args, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while time.time() - t0 < 120 and child.poll() is None:
        ck = max(checkpoints(run), default=0)
        m = metrics(run, strict=False) if os.path.exists(os.path.join(run, "metrics.jsonl")) else {}
        if ck >= 20 and m.get("loss") and m["loss"][-1][0] > ck:
            break
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    child.wait()
    ck = max(checkpoints(run), default=0)
    return ck, [s for s, _ in metrics(run, strict=False).get("loss", []) if s > ck]


def run_cmd(args):
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({p.returncode}):\n{p.stderr}")


def main():
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(target, "release", "attractor")
    base = [binary, "--device", "flex", "--quiet"]
    every = ["--set", "checkpoint_every=10", "--set", "log_every=5"]
    ddm = ["ddm", "train", "--sde", "ou-rot", "--neurons", "24", "--batch", "128",
           "--set", "pool_size=2000", "--set", "pool_chains=100", "--set", "burn_in=2.0",
           "--set", "ridge_points=1000"]
    families = {
        "ddm": (ddm + ["--iters", "20"], []),
        "nlm": (["nlm", "train", "--pool", "4", "--n-data", "200", "--chains", "32", "--batch",
                 "32", "--updates", "20", "--set", "polarity_chains=0"], ["chains"]),
        "fep": (["fep", "train", "--epochs", "20", "--steps-per-epoch", "10"], ["couplings"]),
    }
    tmp = tempfile.mkdtemp(prefix="attractor-tb-check-")
    try:
        for name, (args, pictures) in families.items():
            run = os.path.join(tmp, name)
            run_cmd(base + args + every + ["--run-dir", run])
            acc = load(run)
            check_scalars(name, run, acc)
            check_images(name, acc, pictures + ["curves"], [10, 20])
            check_config(name, run, acc)

        # Killed after its event file got ahead of its last checkpoint, then resumed twice.
        run = os.path.join(tmp, "killed")
        first = base + ddm + ["--iters", "1000000", "--set", "checkpoint_every=20",
                              "--set", "log_every=5", "--run-dir", run]
        ck, ahead = 0, []
        for attempt in range(5):
            args = first if attempt == 0 else base + ["resume", "--run-dir", run]
            ck, ahead = kill_when_ahead(args, run)
            if ahead:
                break
        check("killed: events were written past the last checkpoint", bool(ahead), f"checkpoint {ck}")
        until = str(ck + 60)
        run_cmd(base + ["resume", "--run-dir", run, "--until", until])
        run_cmd(base + ["resume", "--run-dir", run, "--until", str(ck + 100)])
        acc = load(run)
        check_scalars("killed and resumed", run, acc)
        last = max(s for s, _ in metrics(run)["loss"])
        check("killed and resumed: reached the last step", last == ck + 100, last)
        curves = [e.step for e in acc.Images("curves")]
        check("killed and resumed: each checkpoint image once", len(curves) == len(set(curves)), curves)
        check_config("killed and resumed", run, acc)
    except Exception as e:  # a crash of the program under test is a failure, not a traceback
        check("no error", False, repr(e))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(PASSED)} passed, {len(FAILED)} failed")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
