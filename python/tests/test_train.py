"""Each family trains a tiny run from Python; the run object's documented shapes and keys."""

import json
import os

import numpy as np
import pytest

import attractor
from conftest import DDM_TINY, DUFFING, FEP_TINY, NLM_TINY


def test_nlm_trains_opens_and_resumes(tmp_path):
    run = attractor.nlm.train(tmp_path / "r", "mnist", **NLM_TINY)
    assert isinstance(run, attractor.nlm.NlmRun)
    assert run.family == "nlm"
    assert run.report["step"] == 12 and not run.report["interrupted"]
    assert run.step == 12
    assert run.config["updates"] == 12 and run.config["pool"] == 4
    m = run.metrics
    assert [x["step"] for x in m] == [4, 8, 12]
    assert all(np.isfinite(x["loss"]) for x in m)
    p = run.parameters()
    assert p["J"].shape == (49, 49) and p["J"].dtype == np.float32
    assert p["b"].size == 49  # stored as (1, N), as `export` writes it
    assert p["chains"].shape[1] == 49
    # Longer: the run's length is reset, as `resume --total`.
    out = run.resume(total=16)
    assert out["status"] == "trained" and out["step"] == 16 and out["start"] == 12
    again = attractor.open(run.path)
    assert again.step == 16 and again.config["updates"] == 16
    assert again.resume()["status"] == "already_complete"
    assert again.status()["state"] == "finished"


def _digits(n=120, seed=0):
    """Images of a few blobs, 12×12, uint8."""
    rng = np.random.default_rng(seed)
    imgs = np.zeros((n, 12, 12), np.uint8)
    for i in range(n):
        r, c = rng.integers(2, 10, size=2)
        imgs[i, r - 2:r + 2, c - 2:c + 2] = 255
    return imgs


def test_nlm_array_data_both_dtypes_give_the_same_run(tmp_path):
    u8 = _digits()
    f = u8.astype(np.float32) / 255.0
    cfg = dict(NLM_TINY, pool=1, n_data=100, seed=3)
    a = attractor.nlm.train(tmp_path / "u8", u8, **cfg)
    b = attractor.nlm.train(tmp_path / "f32", f, **cfg)
    # The images live in the run directory as IDX (self-contained), every image used.
    assert os.path.isfile(os.path.join(a.path, "data", "train-images-idx3-ubyte"))
    assert a.config["digits"] == []
    assert a.parameters()["J"].shape == (144, 144)
    np.testing.assert_array_equal(a.parameters()["J"], b.parameters()["J"])
    # float64 in [0, 1] too; values outside it are refused.
    attractor.nlm.train(tmp_path / "f64", f.astype(np.float64), **cfg)
    with pytest.raises(attractor.ConfigError, match=r"\[0, 1\]"):
        attractor.nlm.train(tmp_path / "bad", f * 2, **cfg)
    with pytest.raises(attractor.ConfigError, match="shape"):
        attractor.nlm.train(tmp_path / "bad2", f[0], **cfg)


def test_nlm_array_with_labels_filters_digits(tmp_path):
    imgs = _digits(160)
    labels = np.arange(160) % 4
    run = attractor.nlm.train(tmp_path / "r", imgs, labels=labels, digits=[1, 2],
                              **dict(NLM_TINY, pool=1, n_data=50))
    assert run.config["digits"] == [1, 2]
    assert os.path.isfile(os.path.join(run.path, "data", "train-labels-idx1-ubyte"))


def test_ddm_builtin_and_toml_text(tmp_path):
    run = attractor.ddm.train(tmp_path / "ou", "ou-rot", **DDM_TINY)
    assert run.family == "ddm" and run.step == 6
    p = run.parameters()
    assert p and all(v.dtype == np.float32 for v in p.values())
    user = attractor.ddm.train(tmp_path / "duff", DUFFING, params=["alpha=0.8"], **DDM_TINY)
    assert os.path.isfile(os.path.join(user.path, "sde.toml"))
    assert "duffing" in (user.config.get("sde_toml") or "")
    assert user.config["params"] == ["alpha=0.8"]


def _patterns(p=3, n=16, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((p, n))
    return (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)


def test_fep_array_patterns_and_operations(tmp_path):
    pats = _patterns()
    run = attractor.fep.train(tmp_path / "r", pats, seed=5, **FEP_TINY)
    assert run.family == "fep" and run.step == 60
    assert os.path.isfile(os.path.join(run.path, "patterns.npy"))
    p = run.parameters()
    # J of each batched network: (networks, N, N).
    assert p["J"].shape == (1, 16, 16) and p["patterns"].shape == (3, 16)
    np.testing.assert_allclose(p["patterns"], pats, rtol=1e-6, atol=1e-6)

    a = run.attractors()
    assert a["attractors"].shape[1] == 16 and a["attractors"].shape[0] == a["count"] >= 1
    assert a["patterns"].shape == (3, 16)

    ev = run.evaluate(trials=5, steps=10)
    for key in ("n_attractors", "orthogonality_deg", "retrieval_dr2", "asymmetry",
                "per_network", "scoring"):
        assert key in ev, key

    free = run.run_free(30)
    assert free["states"].shape == (30, 16) and free["correlations"].shape == (3, 30)
    assert len(free["labels"]) == 30

    rec = run.recall(pats[:2] + 0.1, pattern_index=[0])
    assert rec["outputs"].shape == (3, 16) and rec["cues"].shape == (3, 16)
    assert len(rec["cue_scores"]) == 3 and np.isfinite(rec["corr_output"])


def test_fep_sweep(tmp_path):
    out = attractor.fep.sweep(tmp_path / "s", evidence="1,2", beta=[0.5, 1.0], epochs=20,
                              trials=3, device="flex", progress=False)
    assert out["evidence"] == [1.0, 2.0] and out["beta"] == [0.5, 1.0]
    assert len(out["retrieval_dr2"]) == 4 and len(out["n_attractors"]) == 4
    assert os.path.isdir(out["run_dir"])
    assert attractor.open(out["run_dir"]).family == "fep"


def test_overrides_reach_the_config_with_numpy_and_path_values(tmp_path):
    run = attractor.fep.train(tmp_path / "r", "digits", lr=np.float32(0.002),
                              steps_per_epoch=np.int64(3), **FEP_TINY)
    assert run.config["steps_per_epoch"] == 3
    assert abs(run.config["lr"] - 0.002) < 1e-9


def test_config_file_then_keywords(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"epochs": 40, "lr": 0.003}))
    run = attractor.fep.train(tmp_path / "r", config=cfg, **dict(FEP_TINY, epochs=20))
    assert run.config["epochs"] == 20 and run.config["lr"] == 0.003
