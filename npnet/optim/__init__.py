"""Optimizers, gradient clipping and learning-rate schedules."""

from npnet.optim import optimizers, schedules
from npnet.optim.clip import clip_grad_norm
from npnet.optim.optimizer import Optimizer
from npnet.optim.schedule import Schedule

__all__ = ["Optimizer", "Schedule", "clip_grad_norm", "optimizers", "schedules"]
