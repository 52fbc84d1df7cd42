"""Self-orthogonalising attractor networks (free-energy principle): train on patterns, then
find the attractors, recall from cues, run free, evaluate; sweep the regime grid."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np

from . import _attractor
from ._common import PathLike, Run, as_path, prepare, progress_callback, register
from ._common import train as _train
from ._errors import ConfigError

__all__ = ["train", "sweep", "FepRun"]


def _patterns_array(patterns: Any) -> np.ndarray:
    a = np.asarray(patterns, dtype=np.float64)
    if a.ndim == 3:
        a = a.reshape(a.shape[0], -1)
    if a.ndim not in (1, 2) or a.size == 0:
        raise ConfigError(f"patterns must have shape (P, N) (or (P, h, w)), not {np.shape(patterns)}")
    return np.ascontiguousarray(a)


def train(
    run_dir: PathLike,
    patterns: Union[str, "os.PathLike[str]", np.ndarray] = "digits",
    *,
    config: Optional[PathLike] = None,
    overwrite: bool = False,
    device: str = "auto",
    progress: Optional[bool] = None,
    **keys: Any,
) -> "FepRun":
    """Trains FEP attractor networks in ``run_dir`` and returns the run.

    ``patterns``: a built-in set (``"digits"`` …), a pattern file (CSV, ``.npy``, PNG
    folder), or a float array ``(P, N)`` (``(P, h, w)`` is flattened), written to
    ``<run_dir>/patterns.npy``. ``**keys``: configuration keys (``epochs``, ``evidence``,
    ``beta``, ``lr``, ``steps_per_epoch``, ``networks``, ``seed`` …). ``config``,
    ``overwrite``, ``device``, ``progress``: as ``attractor.nlm.train``.
    """
    path = as_path(patterns)
    if path is None:
        arr = _patterns_array(patterns)
        root = prepare(run_dir, overwrite)
        path = os.path.join(root, "patterns.npy")
        _attractor.write_npy(path, arr)
    keys["patterns"] = path
    run = _train("fep", run_dir, keys, config=config, overwrite=overwrite, device=device, progress=progress)
    assert isinstance(run, FepRun)
    return run


def _range(v: Any, log: bool) -> Optional[list]:
    if v is None:
        return None
    if isinstance(v, str):
        return _attractor.fep_parse_range(v, log).tolist()
    return [float(x) for x in np.asarray(v, dtype=np.float64).ravel()]


def sweep(
    run_dir: Optional[PathLike] = None,
    *,
    evidence: Union[str, Sequence[float], None] = None,
    beta: Union[str, Sequence[float], None] = None,
    seeds: Optional[int] = None,
    epochs: Optional[int] = None,
    steps_per_epoch: Optional[int] = None,
    lr: Optional[float] = None,
    patterns: Optional[PathLike] = None,
    trials: Optional[int] = None,
    engine: Optional[str] = None,
    overwrite: bool = False,
    seed: Optional[int] = None,
    device: str = "auto",
    progress: Optional[bool] = None,
) -> Dict[str, Any]:
    """The regime grid (evidence × precision β) as one batched training run (``fep
    sweep``): returns the keys of ``sweep.json`` (``retrieval_dr2``, ``generalization_dr2``,
    ``n_attractors``, ``orthogonality_deg`` as row-major ``[evidence][beta]`` lists …) and
    ``run_dir``. ``evidence``/``beta``: lists or ranges as the command line takes them
    (``"1..20"``, ``"0.01..1:19"`` (β log-spaced), ``"1,2,5"``). Unset options take the
    command line's defaults."""
    out = _attractor.fep_sweep(
        evidence=_range(evidence, False),
        beta=_range(beta, True),
        seeds=seeds,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        lr=lr,
        patterns=None if patterns is None else os.fspath(patterns),
        trials=trials,
        engine=engine,
        run_dir=None if run_dir is None else os.fspath(run_dir),
        overwrite=overwrite,
        seed=seed,
        device=device,
        progress=progress_callback(progress),
    )
    return json.loads(out)


class FepRun(Run):
    """A FEP run (see `attractor.Run`): ``attractors``, ``recall``, ``run_free``,
    ``evaluate``."""

    def attractors(
        self,
        network: int = 0,
        *,
        symmetric_part: bool = False,
        seed: Optional[int] = None,
        device: str = "auto",
    ) -> Dict[str, Any]:
        """The distinct deterministic attractors of one network: ``{"attractors": (count, N),
        "patterns": (P, N), "count", "image_shape", "network"}`` (float64 arrays)."""
        text, arrays = _attractor.fep_attractors(self.path, network, symmetric_part, seed, device)
        out = json.loads(text)
        out.update(arrays)
        return out

    def evaluate(
        self,
        *,
        trials: Optional[int] = None,
        steps: Optional[int] = None,
        patterns_of: Optional[PathLike] = None,
        pattern_index: Optional[Sequence[int]] = None,
        match_norm_of: Optional[PathLike] = None,
        seed: Optional[int] = None,
        device: str = "auto",
        progress: Optional[bool] = None,
    ) -> Dict[str, Any]:
        """``fep eval``: attractor count, orthogonality, retrieval and generalisation ΔR²,
        asymmetry (the keys of ``eval.json``; NaN as None)."""
        text = _attractor.fep_eval(
            self.path,
            trials,
            steps,
            None if patterns_of is None else os.fspath(patterns_of),
            None if pattern_index is None else list(pattern_index),
            None if match_norm_of is None else os.fspath(match_norm_of),
            seed,
            device,
            progress_callback(progress),
        )
        return json.loads(text)

    def run_free(
        self,
        steps: Optional[int] = None,
        *,
        beta: Optional[float] = None,
        network: Optional[int] = None,
        symmetric_only: Optional[bool] = None,
        threshold: Optional[float] = None,
        seed: Optional[int] = None,
        device: str = "auto",
    ) -> Dict[str, Any]:
        """Free-running replay with zero input: ``{"states": (steps, N), "correlations":
        (P, steps), "labels", "forward_transition_frac", …}``."""
        text, arrays = _attractor.fep_run_free(
            self.path, steps, beta, network, symmetric_only, threshold, seed, device
        )
        out = json.loads(text)
        out.update(arrays)
        return out

    def recall(
        self,
        cues: Union[None, np.ndarray, PathLike] = None,
        *,
        pattern_index: Optional[Sequence[int]] = None,
        noise_sd: Optional[float] = None,
        beta: Optional[float] = None,
        steps: Optional[int] = None,
        burn_in: Optional[int] = None,
        network: Optional[int] = None,
        cue_scale: Optional[float] = None,
        seed: Optional[int] = None,
        device: str = "auto",
    ) -> Dict[str, Any]:
        """Posterior means with each cue held as input bias: ``cues`` (an array ``(k, N)`` or
        a pattern file) and/or training patterns ``pattern_index`` corrupted by noise
        ``noise_sd``. Returns ``{"outputs": (cues, N), "cues": (cues, N), "corr_cue",
        "corr_output", "cue_scores" …}``."""
        with tempfile.TemporaryDirectory() as tmp:
            cue_path = as_path(cues)
            if cues is not None and cue_path is None:
                cue_path = os.path.join(tmp, "cues.npy")
                _attractor.write_npy(cue_path, _patterns_array(cues))
            text, arrays = _attractor.fep_recall(
                self.path,
                cue_path,
                None if pattern_index is None else list(pattern_index),
                noise_sd,
                beta,
                steps,
                burn_in,
                network,
                cue_scale,
                seed,
                device,
            )
        out = json.loads(text)
        out["cue_scores"] = out.pop("cues")
        out.update(arrays)
        return out


register("fep", FepRun)
