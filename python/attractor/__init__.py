"""attractor: train and analyse stochastic recurrent networks from Python.

A thin layer over the Rust crate `attractor` (the same engine, run directories and messages
as its command line):

- ``attractor.open(run_dir)`` opens a run (trained here or by the command line): its
  ``family``, ``config``, ``metrics``, ``parameters()``, ``resume()`` and the family's
  operations;
- ``attractor.nlm.train``, ``attractor.ddm.train``, ``attractor.fep.train`` train new runs;
  keyword arguments are the configuration keys (``updates``, ``iters``, ``n_data`` …) and
  the command line's options (``device``, ``seed`` …);
- errors are subclasses of ``attractor.Error`` (``ConfigError`` is a ``ValueError``,
  ``NotFoundError`` a ``FileNotFoundError``).

Long calls release the GIL; Ctrl-C stops a training at the next step with a checkpoint saved,
then raises ``KeyboardInterrupt``; a tqdm bar shows progress when tqdm is installed.
"""

from ._attractor import __version__
from ._common import Run, open_run as open
from ._errors import BusyError, ConfigError, DivergedError, Error, NotFoundError, WriteError
from . import ddm, fep, nlm

__all__ = [
    "open",
    "Run",
    "nlm",
    "ddm",
    "fep",
    "Error",
    "ConfigError",
    "NotFoundError",
    "DivergedError",
    "BusyError",
    "WriteError",
    "__version__",
]
