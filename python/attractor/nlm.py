"""Neural Langevin machines: train on images, then generate, denoise, evaluate, explore."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np

from . import _attractor
from ._common import PathLike, Run, as_path, prepare, progress_callback, register, to_json
from ._common import train as _train
from ._errors import ConfigError

__all__ = ["train", "NlmRun", "images_to_uint8"]


def images_to_uint8(images: Any) -> np.ndarray:
    """Images ``(n, h, w)``: uint8 0–255 as they are, floats in [0, 1] scaled and rounded
    (the run stores them as an IDX file, 8 bits a pixel, as MNIST)."""
    a = np.asarray(images)
    if a.ndim != 3:
        raise ConfigError(f"images must have shape (n, h, w), not {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0 or a.shape[2] == 0:
        raise ConfigError(f"images of shape {a.shape} are empty")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or a.min() < 0.0 or a.max() > 1.0:
            raise ConfigError("float images must hold values in [0, 1] (uint8 images: 0–255)")
        return np.ascontiguousarray(np.rint(a * 255.0).astype(np.uint8))
    if a.dtype.kind in "iu":
        if a.min() < 0 or a.max() > 255:
            raise ConfigError("integer images must hold values in 0–255")
        return np.ascontiguousarray(a.astype(np.uint8))
    raise ConfigError(f"images of dtype {a.dtype} (give uint8 0–255 or float 0–1)")


def train(
    run_dir: PathLike,
    data: Union[str, "os.PathLike[str]", np.ndarray] = "mnist",
    *,
    labels: Optional[Sequence[int]] = None,
    config: Optional[PathLike] = None,
    overwrite: bool = False,
    device: str = "auto",
    progress: Optional[bool] = None,
    **keys: Any,
) -> "NlmRun":
    """Trains a neural Langevin machine in ``run_dir`` and returns the run.

    ``data``: ``"mnist"`` (bundled), a folder (IDX files like MNIST's, or PNG images), or a
    numpy array of images ``(n, h, w)``, uint8 0–255 or float 0–1: written into the run
    directory as ``data/train-images-idx3-ubyte`` (with ``labels``, ``(n,)`` ints 0–255, as
    ``train-labels-idx1-ubyte``), so the run opens in the command line as any other. With an
    array, ``digits`` defaults to ``[]`` (every image).

    ``**keys``: configuration keys (``updates``, ``n_data``, ``digits``, ``chains``, ``batch``,
    ``lr``, ``pool``, ``seed`` …; see ``attractor nlm train --help`` and the docs);
    ``config``: a JSON configuration file applied first (as ``--config``). ``device``:
    ``auto``, ``flex``, ``wgpu``, ``cuda``. ``progress``: a tqdm bar (default: in a terminal
    or notebook when tqdm is installed).

    Ctrl-C stops at the next update with a checkpoint saved, then raises KeyboardInterrupt;
    ``run.resume()`` continues.
    """
    path = as_path(data)
    if path is not None:
        keys["data"] = path
        if labels is not None:
            raise ConfigError("labels= goes with an array of images, not with a named data set")
    else:
        images = images_to_uint8(data)
        lab = None
        if labels is not None:
            lab = np.asarray(labels)
            if lab.ndim != 1 or lab.shape[0] != images.shape[0]:
                raise ConfigError(f"labels must have shape ({images.shape[0]},), not {lab.shape}")
            if lab.size and (lab.min() < 0 or lab.max() > 255):
                raise ConfigError("labels must lie in 0–255")
            lab = np.ascontiguousarray(lab.astype(np.uint8))
        root = prepare(run_dir, overwrite)
        folder = os.path.join(root, "data")
        _attractor.write_idx(folder, images, lab)
        keys["data"] = folder
        keys.setdefault("digits", [])
    run = _train("nlm", run_dir, keys, config=config, overwrite=overwrite, device=device, progress=progress)
    assert isinstance(run, NlmRun)
    return run


def _model_opts(tage: Optional[int], untrained: bool, temperature: Optional[float]) -> Dict[str, Any]:
    return {"tage": tage, "untrained": untrained or None, "temperature": temperature}


class NlmRun(Run):
    """An NLM run (see `attractor.Run`): ``generate``, ``denoise``, ``evaluate``, ``explore``.

    Every operation samples the newest checkpoint (``tage=K``: the t_age snapshot of K
    updates; ``untrained=True``: the untrained initial parameters; ``temperature=``: another
    sampling temperature) and takes ``seed`` (default: the run's), ``device`` and ``progress``
    as training does. Images come back as float32 arrays ``(k, h, w)`` in [0, 1].
    """

    def generate(
        self,
        chains: int = 64,
        steps: int = 2000,
        seed: Optional[int] = None,
        *,
        init: str = "noise",
        snapshots: Optional[int] = None,
        sampler: str = "langevin",
        replicas: Optional[int] = None,
        t_max: Optional[float] = None,
        swap_every: Optional[int] = None,
        tage: Optional[int] = None,
        untrained: bool = False,
        temperature: Optional[float] = None,
        info: bool = False,
        device: str = "auto",
        progress: Optional[bool] = None,
    ) -> Any:
        """Samples ``chains`` images by ``steps`` Langevin steps (``init``: ``noise``,
        ``data``, ``held-out``; ``sampler``: ``langevin`` or ``tempering``). Returns the
        samples ``(chains, h, w)`` in [0, 1]; with ``info=True``, ``(samples, report)``:
        the report has ``mean_pixel``, class shares … and, with ``snapshots=E``, ``frames``
        ``(k, chains, h, w)`` at ``frame_steps`` (every E steps, and ``steps``)."""
        opts = dict(chains=chains, steps=steps, seed=seed, init=init, snapshots=snapshots,
                    sampler=sampler, replicas=replicas, t_max=t_max, swap_every=swap_every,
                    **_model_opts(tage, untrained, temperature))
        out = _attractor.nlm_generate(self.path, to_json(opts), device, progress_callback(progress))
        frames = out["frames"]
        samples = frames[-1]  # a view: the final states
        if not info:
            return samples
        report = json.loads(out["json"])
        if snapshots is not None:
            report["frames"] = frames  # every snapshot, then the final states (if not one)
            report["frame_steps"] = out["frame_steps"]
        return samples, report

    def denoise(
        self,
        images: Union[None, int, np.ndarray] = None,
        corrupt: str = "uniform:0.25",
        *,
        test_index: Optional[Sequence[int]] = None,
        steps: Optional[int] = None,
        stop: Optional[str] = None,
        seed: Optional[int] = None,
        tage: Optional[int] = None,
        untrained: bool = False,
        temperature: Optional[float] = None,
        device: str = "auto",
        progress: Optional[bool] = None,
    ) -> Dict[str, Any]:
        """Corrupts clean images (``corrupt``: ``uniform:P``, ``gauss:S``, ``mask:P``) and
        relaxes them noise-free (``stop``: ``energy``, the training images' typical energy, or
        ``minimum``). ``images``: an array ``(k, h, w)`` (uint8 or float 0–1, the model's
        size), a count K of held-out images, or None with ``test_index`` (default: 16
        held-out images). Returns ``clean``, ``corrupted``, ``restored`` ``(k, h, w)``, the
        error curve ``mse`` and ``energy`` per step (arrays), and the keys of
        ``denoise.json`` (``mse_ratio``, ``per_image`` …)."""
        opts: Dict[str, Any] = dict(corrupt=corrupt, steps=steps, stop=stop, seed=seed,
                                    test_index=None if test_index is None else list(test_index),
                                    **_model_opts(tage, untrained, temperature))
        with tempfile.TemporaryDirectory() as tmp:
            if isinstance(images, (int, np.integer)):
                opts["n_test"] = int(images)
            elif images is not None:
                opts["input"] = [os.fspath(p) for p in
                                 _attractor.write_pngs(tmp, images_to_uint8(images))]
            elif test_index is None:
                opts["n_test"] = 16
            out = _attractor.nlm_denoise(self.path, to_json(opts), device, progress_callback(progress))
        report = json.loads(out.pop("json"))
        for k in ("mse", "energy"):
            report[k] = np.asarray(report[k], dtype=np.float64)
        report.update(out)
        return report

    def evaluate(
        self,
        *,
        n_gen: Optional[int] = None,
        gen_steps: Optional[int] = None,
        record_at: Optional[Sequence[int]] = None,
        relax_steps: Optional[int] = None,
        init: Optional[str] = None,
        repeats: Optional[int] = None,
        sampler: Optional[str] = None,
        replicas: Optional[int] = None,
        t_max: Optional[float] = None,
        swap_every: Optional[int] = None,
        seed: Optional[int] = None,
        tage: Optional[int] = None,
        untrained: bool = False,
        temperature: Optional[float] = None,
        device: str = "auto",
        progress: Optional[bool] = None,
    ) -> Dict[str, Any]:
        """``nlm eval``: the paper's metrics (E_AAI, E², nearest-neighbour distances,
        energies, class shares, polarity …) of ``n_gen`` samples after ``gen_steps`` steps
        (defaults as the command line: 1000 and 10 000). Returns the keys of ``eval.json``."""
        opts = dict(n_gen=n_gen, gen_steps=gen_steps,
                    record_at=None if record_at is None else list(record_at),
                    relax_steps=relax_steps, init=init, repeats=repeats, sampler=sampler,
                    replicas=replicas, t_max=t_max, swap_every=swap_every, seed=seed,
                    **_model_opts(tage, untrained, temperature))
        return json.loads(_attractor.nlm_eval(self.path, to_json(opts), device, progress_callback(progress)))

    def explore(
        self,
        steps: Optional[int] = None,
        *,
        every: Optional[int] = None,
        record_every: Optional[int] = None,
        pca_images: Optional[int] = None,
        seed: Optional[int] = None,
        tage: Optional[int] = None,
        untrained: bool = False,
        temperature: Optional[float] = None,
        device: str = "auto",
        progress: Optional[bool] = None,
    ) -> Dict[str, Any]:
        """One long chain from noise (``nlm explore``): ``snapshots`` ``(k, h, w)`` every
        ``every`` steps, their classes, and the trajectory projected on the data's first three
        principal axes (``trajectory`` ``(T, 3)``, ``data_projection`` ``(M, 3)``,
        ``data_labels``)."""
        opts = dict(steps=steps, every=every, record_every=record_every, pca_images=pca_images,
                    seed=seed, **_model_opts(tage, untrained, temperature))
        out = _attractor.nlm_explore(self.path, to_json(opts), device, progress_callback(progress))
        report = json.loads(out.pop("json"))
        report.update(out)
        return report


register("nlm", NlmRun)
