"""Training: the LightningModule (module.py), the device-resident batch loader (loader.py), the run's
callbacks (callbacks.py) and the fit of one run (fit.py)."""

from .fit import check_checkpoint, eval_batch_size, precision, train_run
from .loader import BatchLoader
from .module import Classifier

__all__ = ["BatchLoader", "Classifier", "check_checkpoint", "eval_batch_size", "precision", "train_run"]
