"""Optimizers and the exponential moving average of the weights, as :class:`~emolib.train.TrainConfig` names them.

``optimizer="adam"`` (the thesis's, the default), ``"adamw"`` (decoupled weight decay,
Loshchilov & Hutter 2019) or ``"sgd"`` (momentum 0.9 with Nesterov's correction). The
weight decay is ``config.weight_decay`` for all three, applied to every parameter.

:func:`make_ema` wraps :class:`torch.optim.swa_utils.AveragedModel`: after every
optimizer step the copy's weights *and* buffers (batch-norm statistics) move towards the
model's, ``ema = decay * ema + (1 - decay) * model``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["OPTIMIZERS", "make_optimizer", "make_ema"]

OPTIMIZERS = ("adam", "adamw", "sgd")


def make_optimizer(params: Iterable[torch.Tensor], name: str, lr: float, weight_decay: float = 0.0
                   ) -> torch.optim.Optimizer:
    """The optimizer ``name`` (one of :data:`OPTIMIZERS`) over ``params``."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")


def make_ema(model: nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """An exponential moving average of ``model`` (weights and buffers); call ``.update_parameters(model)``
    after each step and use ``.module`` as the averaged network."""
    if not 0.0 < decay < 1.0:
        raise ValueError(f"ema must be a decay between 0 and 1 (e.g. 0.999), got {decay!r}")
    return torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(decay), use_buffers=True)
