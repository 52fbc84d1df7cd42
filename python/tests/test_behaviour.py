"""Behaving like a Python library: exceptions per error kind, the GIL released, Ctrl-C with a
checkpoint, progress bars."""

import _thread
import threading
import time

import numpy as np
import pytest

import attractor
from conftest import DDM_TINY, FEP_TINY, NLM_TINY

# An NLM long enough to be interrupted (about 20 updates a second on 2 cores).
NLM_LONG = dict(NLM_TINY, updates=100000, checkpoint_every=50000)


def test_unknown_key_is_a_config_error_with_a_suggestion(tmp_path):
    with pytest.raises(attractor.ConfigError) as e:
        attractor.nlm.train(tmp_path / "r", updatez=5, **NLM_TINY)
    assert isinstance(e.value, ValueError) and isinstance(e.value, attractor.Error)
    assert "updatez" in str(e.value) and "updates" in str(e.value)


def test_bad_value_is_a_config_error(tmp_path):
    with pytest.raises(ValueError, match="dt"):
        attractor.nlm.train(tmp_path / "r", dt=-1.0, **NLM_TINY)
    with pytest.raises(attractor.ConfigError, match="sampler"):
        attractor.nlm.train(tmp_path / "r2", sampler="nope", **NLM_TINY)
    with pytest.raises(attractor.ConfigError, match="device"):
        attractor.fep.train(tmp_path / "r3", **dict(FEP_TINY, device="tpu"))
    with pytest.raises(attractor.ConfigError, match="finite"):
        attractor.fep.train(tmp_path / "r4", lr=float("nan"), **FEP_TINY)


def test_missing_run_and_data_are_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        attractor.open(tmp_path / "nothing")
    assert isinstance(e.value, attractor.NotFoundError)
    assert "does not exist" in str(e.value)
    with pytest.raises(attractor.NotFoundError):
        attractor.nlm.train(tmp_path / "r", tmp_path / "no-such-folder", **NLM_TINY)


def test_existing_run_needs_overwrite(tmp_path):
    attractor.fep.train(tmp_path / "r", **FEP_TINY)
    with pytest.raises(attractor.ConfigError, match="already holds a run"):
        attractor.fep.train(tmp_path / "r", **FEP_TINY)
    with pytest.raises(attractor.ConfigError, match="already holds a run"):
        attractor.fep.train(tmp_path / "r", np.eye(4), **FEP_TINY)
    attractor.fep.train(tmp_path / "r", overwrite=True, **FEP_TINY)


def test_diverged_training_is_a_diverged_error(tmp_path):
    with pytest.raises(attractor.DivergedError, match="diverged"):
        attractor.ddm.train(tmp_path / "r", **dict(DDM_TINY, lr=1e30))


def test_a_run_in_use_is_busy(tmp_path):
    import subprocess

    from conftest import cli_path

    run = attractor.nlm.train(tmp_path / "r", **dict(NLM_TINY, updates=4))
    # The command line trains it on in another process, holding the run's lock.
    p = subprocess.Popen([cli_path(), "--device", "flex", "--quiet", "resume", "--run-dir",
                          run.path, "--total", "100000"], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while attractor.open(run.path).status()["state"] != "running":
            assert time.monotonic() < deadline and p.poll() is None
            time.sleep(0.2)
        with pytest.raises(attractor.BusyError, match="in use"):
            attractor.open(run.path).resume()
    finally:
        p.terminate()
        p.wait(timeout=60)


def _interrupt_after(seconds):
    timer = threading.Timer(seconds, _thread.interrupt_main)
    timer.start()
    return timer


def test_keyboard_interrupt_leaves_a_resumable_checkpoint(tmp_path):
    timer = _interrupt_after(2.0)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        attractor.nlm.train(tmp_path / "r", **NLM_LONG)
    timer.cancel()
    assert time.monotonic() - t0 < 30, "the interrupt must stop training promptly"
    run = attractor.open(tmp_path / "r")
    step = run.step
    assert 0 < step < 100000, step
    assert run.status()["state"] == "interrupted"
    out = run.resume(until=step + 3)
    assert out["status"] == "trained" and out["start"] == step and out["step"] == step + 3


def test_a_python_thread_runs_during_training(tmp_path):
    count = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            count[0] += 1
            time.sleep(0.001)

    th = threading.Thread(target=spin)
    th.start()
    try:
        t0 = time.monotonic()
        attractor.nlm.train(tmp_path / "r", **dict(NLM_TINY, updates=40))
        took = time.monotonic() - t0
    finally:
        stop.set()
        th.join()
    # With the GIL held for the whole call the thread would not advance at all.
    assert took > 0.3, took
    assert count[0] > 50 * took, (count[0], took)


def test_progress_draws_tqdm_bars(tmp_path, capsys):
    pytest.importorskip("tqdm")
    attractor.fep.train(tmp_path / "r", **dict(FEP_TINY, epochs=200, progress=True))
    err = capsys.readouterr().err
    assert "200/200" in err, err


def test_progress_off_prints_nothing(tmp_path, capsys):
    attractor.fep.train(tmp_path / "r", **FEP_TINY)
    assert capsys.readouterr().err == ""
