"""Shared fixtures: tiny configurations of each family, and the command line for interop."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Tiny runs (a few seconds each on 2 cores), on the CPU backend for exact determinism.
NLM_TINY = dict(pool=4, n_data=200, chains=32, batch=32, updates=12, log_every=4,
                checkpoint_every=4, polarity_chains=0, device="flex", progress=False)
DDM_TINY = dict(iters=6, neurons=24, batch=128, pool_size=2000, pool_chains=100, burn_in=2.0,
                ridge_points=1000, log_every=2, checkpoint_every=2, device="flex",
                progress=False)
FEP_TINY = dict(epochs=60, log_every=20, checkpoint_every=20, device="flex", progress=False)

DUFFING = """name = "duffing"
dim = 2
[params]
alpha = 1.0
[drift]
z1 = "z2"
z2 = "alpha*z1 - z1^3 - 0.5*z2"
[diffusion]
diagonal = [0.3, 0.3]
"""


def cli_path():
    """The command line binary: $ATTRACTOR_BIN, else the release build in the target folder."""
    env = os.environ.get("ATTRACTOR_BIN")
    if env:
        return env
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    p = target / "release" / "attractor"
    if p.exists():
        return str(p)
    return shutil.which("attractor")


@pytest.fixture(scope="session")
def cli():
    """Runs `attractor --device flex --quiet ARGS…`; fails the test on a non-zero exit."""
    exe = cli_path()
    if exe is None:
        pytest.fail("the attractor binary is needed (cargo build --release, or ATTRACTOR_BIN)")

    def run(*args, check=True):
        p = subprocess.run([exe, "--device", "flex", "--quiet", *map(str, args)],
                           capture_output=True, text=True, timeout=600)
        if check and p.returncode != 0:
            raise AssertionError(f"attractor {' '.join(map(str, args))} exited {p.returncode}:\n{p.stderr}")
        return p

    return run
