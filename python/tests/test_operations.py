"""Every operation of the NLM and DDM runs returns the documented shapes and keys."""

import numpy as np
import pytest

import attractor
from conftest import DDM_TINY, NLM_TINY

FAST = dict(device="flex", progress=False)


@pytest.fixture(scope="module")
def nlm_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("nlm") / "r"
    return attractor.nlm.train(d, "mnist", **dict(NLM_TINY, n_data=100, held_out=0.2))


@pytest.fixture(scope="module")
def ddm_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("ddm") / "r"
    return attractor.ddm.train(d, "ou-rot", **DDM_TINY)


def test_generate_shapes_and_range(nlm_run):
    x = nlm_run.generate(chains=6, steps=20, **FAST)
    assert x.shape == (6, 7, 7) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    # Same seed, same samples; another seed, others.
    np.testing.assert_array_equal(x, nlm_run.generate(chains=6, steps=20, **FAST))
    assert not np.array_equal(x, nlm_run.generate(chains=6, steps=20, seed=99, **FAST))
    y, info = nlm_run.generate(chains=4, steps=20, snapshots=5, info=True, **FAST)
    assert y.shape == (4, 7, 7)
    assert info["frames"].shape == (4, 4, 7, 7) and info["frame_steps"] == [5, 10, 15, 20]
    assert "mean_pixel" in info and info["chains"] == 4


def test_generate_matches_the_cli(nlm_run, cli, tmp_path):
    x = nlm_run.generate(chains=5, steps=15, seed=4, **FAST)
    cli("nlm", "generate", "--run-dir", nlm_run.path, "--chains", 5, "--steps", 15,
        "--seed", 4, "--out", tmp_path / "gen.png", "--npy", tmp_path / "gen.npy")
    # The command line writes tanh(x) in [-1, 1]; Python hands out pixels in [0, 1].
    ref = np.load(tmp_path / "gen.npy").reshape(5, 7, 7)
    np.testing.assert_allclose(x, np.clip((ref + 1) / 2, 0, 1), atol=1e-6)


def test_denoise(nlm_run):
    r = nlm_run.denoise(3, "uniform:0.3", steps=10, **FAST)
    for k in ("clean", "corrupted", "restored"):
        assert r[k].shape == (3, 7, 7) and r[k].dtype == np.float32
    assert r["mse"].ndim == 1 and len(r["mse"]) >= 1
    assert len(r["per_image"]) == 3 and "mse_ratio" in r
    imgs = (np.random.default_rng(0).random((2, 7, 7)) > 0.5).astype(np.float32)
    r2 = nlm_run.denoise(imgs, "mask:0.2", steps=5, **FAST)
    # The clean images as the model sees them: pixels clamped by the run's eps (0.03).
    np.testing.assert_allclose(r2["clean"], imgs, atol=0.016)
    with pytest.raises(attractor.ConfigError):
        nlm_run.denoise(2, "blur:3", **FAST)


def test_evaluate_keys(nlm_run):
    ev = nlm_run.evaluate(n_gen=8, gen_steps=10, **FAST)
    for k in ("energy_gen", "energy_data", "polarity_ok", "t_age", "n_gen", "gen_steps"):
        assert k in ev, k
    assert ev["n_gen"] == 8 and ev["t_age"] == 12


def test_explore_shapes(nlm_run):
    e = nlm_run.explore(60, every=20, record_every=10, pca_images=30, **FAST)
    assert e["snapshots"].shape == (3, 7, 7)
    assert e["trajectory"].shape[1] == 3 and e["data_projection"].shape == (30, 3)
    assert e["snapshot_steps"] == [20, 40, 60]


def test_ddm_operations(ddm_run):
    p = ddm_run.simulate(2.0, trajectories=3, **FAST)
    assert p.ndim == 3 and p.shape[0] == 3 and p.shape[2] == 2 and p.dtype == np.float32
    p2, info = ddm_run.simulate(2.0, trajectories=3, target=True, info=True, **FAST)
    assert p2.shape[0] == 3 and info["target"] is True and info["d"] == 2
    ev = ddm_run.evaluate(t_end=5.0, trajectories=4, points=200, burn_in=1.0, **FAST)
    assert "drift_rel_err" in ev and ev["step"] == 6
    dec = ddm_run.decompose(grid=5, t_end=5.0, trajectories=4, **FAST)
    assert "epr_model" in dec and "asymmetry_index" in dec
    assert dec["drift"].shape == (25, 2) and dec["grid_x"].shape == (25,)


def test_wrong_family_operation_is_refused(ddm_run):
    with pytest.raises(AttributeError):
        ddm_run.generate()  # a DdmRun has no generate
