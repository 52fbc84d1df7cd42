"""What every family's functions share: turning keyword arguments into configuration
overrides, the progress bar, and the run object."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable, Dict, List, Optional, Union

import numpy as np

from . import _attractor
from ._errors import ConfigError

PathLike = Union[str, "os.PathLike[str]"]


def _jsonable(o: Any) -> Any:
    """numpy scalars and arrays, paths: as JSON values."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    raise ConfigError(f"cannot use a value of type {type(o).__name__} in a configuration: {o!r}")


def to_json(values: Dict[str, Any]) -> str:
    """Configuration overrides (keyword arguments named by the configuration keys) as JSON."""
    try:
        return json.dumps(values, default=_jsonable, allow_nan=False)
    except ValueError as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"configuration values must be finite numbers: {e}") from None


def _in_notebook() -> bool:
    ip = sys.modules.get("IPython")
    if ip is None:
        return False
    try:
        return ip.get_ipython() is not None
    except Exception:  # pragma: no cover - an IPython without a shell
        return False


def _tqdm() -> Optional[Callable[..., Any]]:
    """tqdm's notebook bar in a notebook with ipywidgets, else its text bar; None without
    tqdm."""
    try:
        if _in_notebook():
            try:
                import ipywidgets  # noqa: F401
                from tqdm.auto import tqdm
                return tqdm
            except ImportError:
                pass
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


class _Bars:
    """Shows the library's progress (a stack of tasks: label, length, position, message) as
    tqdm bars, one per open task."""

    def __init__(self, tqdm: Callable[..., Any]) -> None:
        self._tqdm = tqdm
        self._bars: Dict[int, Any] = {}

    def __call__(self, tasks: List[tuple]) -> None:
        # (id, label, length, position, message, finished): tasks finished since the last
        # call first (their bars are completed and closed), then the open ones, outermost
        # first. An empty list closes every bar.
        live = {t[0] for t in tasks if not t[5]}
        depth = 0
        for tid, label, length, pos, msg, finished in tasks:
            bar = self._bars.get(tid)
            if bar is None:
                bar = self._tqdm(total=length or None, desc=label, position=depth,
                                 leave=depth == 0, dynamic_ncols=True)
                self._bars[tid] = bar
            if msg:
                bar.set_postfix_str(msg, refresh=False)
            if pos >= bar.n:
                bar.update(pos - bar.n)
            else:
                bar.n = pos
                bar.refresh()
            if finished:
                self._bars.pop(tid).close()
            else:
                depth += 1
        for tid in [t for t in self._bars if t not in live]:
            self._bars.pop(tid).close()


def progress_callback(progress: Optional[bool]) -> Optional[Callable[[List[tuple]], None]]:
    """The callback that draws bars, or None. `progress=None`: bars when tqdm is installed and
    stderr is a terminal or the code runs in IPython/Jupyter."""
    if progress is False:
        return None
    tqdm = _tqdm()
    if progress is None:
        progress = tqdm is not None and (_in_notebook() or sys.stderr.isatty())
    if not progress or tqdm is None:
        return None
    return _Bars(tqdm)


def train(
    family: str,
    run_dir: PathLike,
    overrides: Dict[str, Any],
    *,
    config: Optional[PathLike],
    overwrite: bool,
    device: str,
    progress: Optional[bool],
) -> "Run":
    """Trains a new run and opens it; the training's report is `run.report`."""
    report = _attractor.train(
        family,
        os.fspath(run_dir),
        to_json(overrides),
        config=None if config is None else os.fspath(config),
        overwrite=overwrite,
        device=device,
        progress=progress_callback(progress),
    )
    run = open_run(run_dir)
    run.report = json.loads(report)
    return run


class Run:
    """A run directory: its family, configuration, metrics, parameters; `resume` trains on.

    Made by `attractor.open(run_dir)` or a family's `train`. The family's operations are
    methods of the subclasses `attractor.nlm.NlmRun`, `attractor.ddm.DdmRun` and
    `attractor.fep.FepRun`.
    """

    report: Optional[Dict[str, Any]]

    def __init__(self, handle: Any) -> None:
        self._h = handle
        self.report = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({os.fspath(self.path)!r}, family={self.family!r}, step={self.step})"

    @property
    def family(self) -> str:
        """`"nlm"`, `"ddm"` or `"fep"`."""
        return self._h.family

    @property
    def path(self) -> str:
        """The run directory."""
        return os.fspath(self._h.path)

    @property
    def config(self) -> Dict[str, Any]:
        """Every hyperparameter of the run (`config.json`'s `config`)."""
        return json.loads(self._h.config_json())

    @property
    def metrics(self) -> List[Dict[str, float]]:
        """Every line of `metrics.jsonl` as a dict: `step` and the logged values (`loss`, …)."""
        return [{"step": m["step"], **m["values"]} for m in json.loads(self._h.metrics_json())]

    @property
    def step(self) -> int:
        """The step of the newest checkpoint (0 when none)."""
        return self._h.step()

    def status(self) -> Dict[str, Any]:
        """Where the run stands: steps done, total, last loss, state (`finished`, …)."""
        return json.loads(self._h.status_json())

    def parameters(self) -> Dict[str, np.ndarray]:
        """The newest checkpoint's named arrays (float32), e.g. `J`, `b` for an NLM, `W`, `U` …
        for a DDM, `J`, `state`, `patterns` for a FEP network: what `attractor export
        --format npy` writes."""
        return dict(self._h.parameters())

    def resume(
        self,
        until: Optional[int] = None,
        *,
        total: Optional[int] = None,
        device: str = "auto",
        progress: Optional[bool] = None,
    ) -> Dict[str, Any]:
        """Trains on from the newest checkpoint, to the end of the run or to step `until`;
        `total` first sets the run's length (as `attractor resume --total`). Returns
        `{"status": "trained", "start", "step", "total", "interrupted", …}` or
        `{"status": "already_complete", "step", "total"}`. Ctrl-C stops at the next step with
        a checkpoint saved, then raises KeyboardInterrupt."""
        out = self._h.resume(until, total, device, progress_callback(progress))
        return json.loads(out)

    def export(self, out: PathLike, format: str = "npy") -> str:
        """Writes the newest checkpoint's tensors to the folder `out` (`npy`, `safetensors` or
        `burnpack`); returns what was written."""
        return self._h.export(format, os.fspath(out))


_RUN_CLASSES: Dict[str, type] = {}


def register(family: str, cls: type) -> None:
    _RUN_CLASSES[family] = cls


def open_run(run_dir: PathLike) -> Run:
    """Opens the run directory `run_dir` (trained from Python or from the command line)."""
    h = _attractor.RunHandle(os.fspath(run_dir))
    return _RUN_CLASSES.get(h.family, Run)(h)


def prepare(run_dir: PathLike, overwrite: bool) -> str:
    """Creates `run_dir` for a new run's input files (refused if it holds a run, unless
    `overwrite`); returns its absolute path."""
    _attractor.prepare_run_dir(os.fspath(run_dir), overwrite)
    return os.path.abspath(os.fspath(run_dir))


def as_path(x: Any) -> Optional[str]:
    """`x` as a path or name if it is one (str or os.PathLike)."""
    if isinstance(x, (str, os.PathLike)):
        return os.fspath(x)
    return None
