"""Drift–diffusion matching: CT-RNNs trained to reproduce a target SDE."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional

from . import _attractor
from ._common import PathLike, Run, as_path, prepare, progress_callback, register, to_json
from ._common import train as _train
from ._errors import ConfigError

__all__ = ["train", "DdmRun"]


def train(
    run_dir: PathLike,
    sde: Any = "ou-rot",
    *,
    config: Optional[PathLike] = None,
    overwrite: bool = False,
    device: str = "auto",
    progress: Optional[bool] = None,
    **keys: Any,
) -> "DdmRun":
    """Trains a CT-RNN on a target SDE in ``run_dir`` and returns the run.

    ``sde``: a built-in name (``"ou-rot"``, ``"lorenz"`` …: ``attractor sde list``), the path
    of an SDE file (TOML), or the TOML text itself (any string with a line break), written to
    ``<run_dir>/sde.toml`` (and embedded in the run's configuration, as the command line does
    with a file).

    ``**keys``: configuration keys (``iters``, ``neurons``, ``batch``, ``lr``,
    ``connectivity``, ``params`` (list of ``"name=value"``), ``seed`` …). ``config``,
    ``overwrite``, ``device``, ``progress``: as ``attractor.nlm.train``.
    """
    path = as_path(sde)
    if path is None:
        raise ConfigError(f"sde must be a name, a path or TOML text, not {type(sde).__name__}")
    if isinstance(sde, str) and "\n" in sde:
        root = prepare(run_dir, overwrite)
        path = os.path.join(root, "sde.toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(sde)
    keys["sde"] = path
    run = _train("ddm", run_dir, keys, config=config, overwrite=overwrite, device=device, progress=progress)
    assert isinstance(run, DdmRun)
    return run


class DdmRun(Run):
    """A DDM run (see `attractor.Run`): ``simulate``, ``evaluate``, ``decompose``."""

    def simulate(
        self,
        t_end: Optional[float] = None,
        *,
        trajectories: Optional[int] = None,
        dt: Optional[float] = None,
        noise_scale: Optional[float] = None,
        target: bool = False,
        record_every: Optional[int] = None,
        seed: Optional[int] = None,
        info: bool = False,
        device: str = "auto",
        progress: Optional[bool] = None,
    ) -> Any:
        """Trajectories of the network's latent read-out (``target=True``: of the target SDE)
        over ``t_end`` (default 50): an array ``(trajectories, points, d)`` (float32; default
        8 trajectories, about 2000 points each). With ``info=True``: ``(paths, report)`` (dt,
        record spacing ``dt_record`` …)."""
        opts = dict(t_end=t_end, trajectories=trajectories, dt=dt, noise_scale=noise_scale,
                    target=target or None, record_every=record_every, seed=seed)
        out = _attractor.ddm_simulate(self.path, to_json(opts), device, progress_callback(progress))
        if info:
            return out["paths"], json.loads(out["json"])
        return out["paths"]

    def evaluate(
        self,
        *,
        t_end: Optional[float] = None,
        trajectories: Optional[int] = None,
        points: Optional[int] = None,
        burn_in: Optional[float] = None,
        seed: Optional[int] = None,
        device: str = "auto",
        progress: Optional[bool] = None,
    ) -> Dict[str, Any]:
        """``ddm eval``: drift and diffusion errors, stationary statistics … (the keys of
        ``eval.json``; NaN as None)."""
        opts = dict(t_end=t_end, trajectories=trajectories, points=points, burn_in=burn_in,
                    seed=seed)
        return json.loads(_attractor.ddm_eval(self.path, to_json(opts), device, progress_callback(progress)))

    def decompose(
        self,
        *,
        grid: Optional[int] = None,
        t_end: Optional[float] = None,
        trajectories: Optional[int] = None,
        seed: Optional[int] = None,
        device: str = "auto",
        progress: Optional[bool] = None,
    ) -> Dict[str, Any]:
        """``ddm decompose``: the drift of W and of its symmetric and antisymmetric parts,
        entropy production with and without W_a (the keys of ``decompose.json``), and the
        fields on the grid: ``grid_x``, ``grid_y`` ``(points,)``, ``drift``,
        ``drift_symmetric``, ``drift_antisymmetric`` ``(points, d)``, ``density``."""
        opts = dict(grid=grid, t_end=t_end, trajectories=trajectories, seed=seed)
        out = _attractor.ddm_decompose(self.path, to_json(opts), device, progress_callback(progress))
        report = json.loads(out.pop("json"))
        report.update(out)
        return report


register("ddm", DdmRun)
