"""Optimizers and the exponential moving average of the weights, as :class:`~emolib.train.TrainConfig` names them.

``optimizer="adam"`` (the thesis's, the default), ``"adamw"`` (decoupled weight decay,
Loshchilov & Hutter 2019) or ``"sgd"`` (momentum 0.9 with Nesterov's correction). The
weight decay is ``config.weight_decay`` for all three, applied to every parameter.

All three run PyTorch's *fused* kernels where the parameters allow them (floating-point
tensors on the CPU or CUDA): one kernel updates every parameter, where the default on the CPU
is a Python loop of several small operations per tensor, a visible share of a small model's
training step on a 2-core CPU (``benchmarks/bench_train.py``). The update is the same
formula; results differ from the loop's by rounding only. :func:`load_optimizer_state` restores
a saved state into such an optimizer without turning the fused kernels off (a state saved by
the loop implementation records ``fused=None``, which ``load_state_dict`` would copy).

:func:`make_ema` wraps :class:`torch.optim.swa_utils.AveragedModel`: after every
optimizer step the copy's weights *and* buffers (batch-norm statistics) move towards the
model's, ``ema = decay * ema + (1 - decay) * model``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["OPTIMIZERS", "make_optimizer", "make_ema", "load_optimizer_state"]

OPTIMIZERS = ("adam", "adamw", "sgd")

#: Devices whose parameters get the fused optimizer kernels (PyTorch has them for these and more).
_FUSED_DEVICES = ("cpu", "cuda")


def make_optimizer(params: Iterable[torch.Tensor], name: str, lr: float, weight_decay: float = 0.0
                   ) -> torch.optim.Optimizer:
    """The optimizer ``name`` (one of :data:`OPTIMIZERS`) over ``params``; fused kernels where they run."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")
    params = list(params)
    tensors = [p for group in params for p in (group["params"] if isinstance(group, dict) else [group])]
    fused = bool(tensors) and all(p.device.type in _FUSED_DEVICES and p.is_floating_point() for p in tensors)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused or None)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused or None)
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay,
                           fused=fused or None)


def load_optimizer_state(opt: torch.optim.Optimizer, state: dict) -> None:
    """``opt.load_state_dict(state)``, keeping ``opt``'s own kernel choice (``fused``, ``foreach``).

    ``load_state_dict`` takes every setting of the saved parameter groups, the kernel choice too;
    it is not part of the update's formula, so a run resumed from a state saved with other
    kernels keeps the ones this optimizer was made with."""
    kernels = {k: opt.defaults[k] for k in ("fused", "foreach") if k in opt.defaults}
    groups = [{**g, **kernels} for g in state.get("param_groups", [])]
    opt.load_state_dict({**state, "param_groups": groups})


def make_ema(model: nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """An exponential moving average of ``model`` (weights and buffers); call ``.update_parameters(model)``
    after each step and use ``.module`` as the averaged network."""
    if not 0.0 < decay < 1.0:
        raise ValueError(f"ema must be a decay between 0 and 1 (e.g. 0.999), got {decay!r}")
    return torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(decay), use_buffers=True)
