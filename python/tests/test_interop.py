"""One run directory format: Python ↔ command line, both ways, and the same arrays for the
same seed."""

import json
import os

import numpy as np

import attractor
from conftest import DDM_TINY, FEP_TINY, NLM_TINY


def _cli_nlm_args(run_dir, **extra):
    cfg = dict(NLM_TINY)
    for k in ("device", "progress"):
        cfg.pop(k)
    cfg.update(extra)
    args = ["nlm", "train", "--run-dir", run_dir]
    for k, v in cfg.items():
        args += ["--set", f"{k}={v}"]
    return args


def test_python_run_opens_resumes_and_evaluates_in_the_cli(tmp_path, cli):
    run = attractor.nlm.train(tmp_path / "py", **dict(NLM_TINY, updates=8))
    cli("resume", "--run-dir", run.path, "--total", 12)
    assert attractor.open(run.path).step == 12
    cli("nlm", "eval", "--run-dir", run.path, "--n-gen", 8, "--gen-steps", 20)
    assert os.path.isfile(os.path.join(run.path, "eval.json"))


def test_python_array_data_run_works_from_another_directory_in_the_cli(tmp_path, cli):
    imgs = (np.random.default_rng(0).random((60, 8, 8)) > 0.5).astype(np.uint8) * 255
    run = attractor.nlm.train(tmp_path / "arr", imgs, **dict(NLM_TINY, pool=1, n_data=50, updates=4))
    cli("resume", "--run-dir", run.path, "--total", 8)
    assert attractor.open(run.path).step == 8


def test_cli_run_opens_and_resumes_in_python(tmp_path, cli):
    d = tmp_path / "cli"
    cli(*_cli_nlm_args(d, updates=8))
    run = attractor.open(d)
    assert run.family == "nlm" and run.step == 8
    assert run.parameters()["J"].shape == (49, 49)
    out = run.resume(total=12, device="flex", progress=False)
    assert out["step"] == 12


def test_same_seed_same_parameters_both_ways(tmp_path, cli):
    d = tmp_path / "cli"
    cli(*_cli_nlm_args(d, seed=11))
    run = attractor.nlm.train(tmp_path / "py", **dict(NLM_TINY, seed=11))
    cli("export", "--run-dir", d, "--out", tmp_path / "exp", "--format", "npy")
    ref = np.load(tmp_path / "exp" / "J.npy")
    np.testing.assert_array_equal(run.parameters()["J"], ref)
    np.testing.assert_array_equal(attractor.open(d).parameters()["J"], ref)


def test_ddm_and_fep_cli_interop(tmp_path, cli):
    ddm = attractor.ddm.train(tmp_path / "ddm", **DDM_TINY)
    cli("resume", "--run-dir", ddm.path, "--total", 8)
    assert attractor.open(ddm.path).step == 8
    fep = attractor.fep.train(tmp_path / "fep", **FEP_TINY)
    cli("fep", "attractors", "--run-dir", fep.path)
    cli("resume", "--run-dir", fep.path, "--total", 80)
    assert attractor.open(fep.path).step == 80
    cfg = json.loads(open(os.path.join(fep.path, "config.json")).read())
    assert cfg["meta"]["model"] == "fep"
