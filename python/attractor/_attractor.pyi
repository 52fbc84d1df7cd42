"""The extension module (Rust): the package's modules wrap it; call those instead."""

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

__version__: str

Progress = Optional[Callable[[List[Tuple[int, str, int, int, str, bool]]], None]]

def train(
    family: str,
    run_dir: str,
    overrides_json: str,
    config: Optional[str] = None,
    overwrite: bool = False,
    device: str = "auto",
    progress: Progress = None,
) -> str: ...
def prepare_run_dir(run_dir: str, overwrite: bool) -> None: ...
def write_idx(dir: str, images: np.ndarray, labels: Optional[np.ndarray] = None) -> None: ...
def write_npy(path: str, array: np.ndarray) -> None: ...

class RunHandle:
    def __init__(self, path: str) -> None: ...
    @property
    def family(self) -> str: ...
    @property
    def path(self) -> str: ...
    def config_json(self) -> str: ...
    def metrics_json(self) -> str: ...
    def status_json(self) -> str: ...
    def step(self) -> int: ...
    def parameters(self) -> Dict[str, np.ndarray]: ...
    def resume(
        self,
        until: Optional[int] = None,
        total: Optional[int] = None,
        device: str = "auto",
        progress: Progress = None,
    ) -> str: ...
    def export(self, format: str, out: str) -> str: ...

def fep_attractors(
    run_dir: str,
    network: Optional[int] = None,
    symmetric_part: Optional[bool] = None,
    seed: Optional[int] = None,
    device: str = "auto",
) -> Tuple[str, Dict[str, np.ndarray]]: ...
def fep_eval(
    run_dir: str,
    trials: Optional[int] = None,
    steps: Optional[int] = None,
    patterns_of: Optional[str] = None,
    pattern_index: Optional[Sequence[int]] = None,
    match_norm_of: Optional[str] = None,
    seed: Optional[int] = None,
    device: str = "auto",
    progress: Progress = None,
) -> str: ...
def fep_run_free(
    run_dir: str,
    steps: Optional[int] = None,
    beta: Optional[float] = None,
    network: Optional[int] = None,
    symmetric_only: Optional[bool] = None,
    threshold: Optional[float] = None,
    seed: Optional[int] = None,
    device: str = "auto",
) -> Tuple[str, Dict[str, np.ndarray]]: ...
def fep_recall(
    run_dir: str,
    cue: Optional[str] = None,
    pattern_index: Optional[Sequence[int]] = None,
    noise_sd: Optional[float] = None,
    beta: Optional[float] = None,
    steps: Optional[int] = None,
    burn_in: Optional[int] = None,
    network: Optional[int] = None,
    cue_scale: Optional[float] = None,
    seed: Optional[int] = None,
    device: str = "auto",
) -> Tuple[str, Dict[str, np.ndarray]]: ...
def fep_sweep(**kwargs: Any) -> str: ...
def fep_parse_range(s: str, log: bool) -> np.ndarray: ...
def nlm_generate(run_dir: str, opts_json: str, device: str = "auto", progress: Progress = None) -> Dict[str, Any]: ...
def nlm_eval(run_dir: str, opts_json: str, device: str = "auto", progress: Progress = None) -> str: ...
def nlm_explore(run_dir: str, opts_json: str, device: str = "auto", progress: Progress = None) -> Dict[str, Any]: ...
def nlm_denoise(run_dir: str, opts_json: str, device: str = "auto", progress: Progress = None) -> Dict[str, Any]: ...
def write_pngs(dir: str, images: np.ndarray) -> List[str]: ...
def ddm_simulate(run_dir: str, opts_json: str, device: str = "auto", progress: Progress = None) -> Dict[str, Any]: ...
def ddm_eval(run_dir: str, opts_json: str, device: str = "auto", progress: Progress = None) -> str: ...
def ddm_decompose(run_dir: str, opts_json: str, device: str = "auto", progress: Progress = None) -> Dict[str, Any]: ...
