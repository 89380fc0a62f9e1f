"""Knowledge distillation from a larger, already trained teacher (Hinton et al., 2015).

The student learns from the labels and from the teacher's *softened* predictions: the
probabilities ``softmax(z / T)`` at a temperature ``T > 1`` keep what the teacher knows about
the wrong classes (a sad face that looks a little angry). The loss of a batch is

    (1 - weight) * cross_entropy(student, labels, label smoothing)
        + weight * T**2 * KL(softmax(teacher / T) || softmax(student / T))

(the ``T**2`` keeps the gradients of the two terms on the same scale as ``T`` changes).

Here the teacher is run **once**, before training, on every training image as the evaluation
transform shows it (:func:`teacher_logits`): on a CPU a teacher four times the student's cost
(``vgg_large-fer2013`` against the CPU VGG) run on every augmented batch would take most of the
training budget. The student's augmented views are then taught with the teacher's logits of the
clean image (``benchmarks/fer_gpu_study.py``'s ``kd`` rows averaged them with the mirror image's). :func:`emolib.train.fit` does all this
when its :class:`~emolib.train.TrainConfig` has ``distill`` set, e.g.
``{"teacher": "vgg_large-fer2013", "weight": 0.7, "temperature": 4.0}``.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .models import load_model

__all__ = ["DistillationLoss", "check_distill", "load_teacher", "teacher_logits", "DISTILL_KEYS"]

#: The keys of ``TrainConfig.distill``: the teacher (a shipped model's name or a checkpoint file),
#: the weight of the distillation term (0 to 1) and the temperature.
DISTILL_KEYS = ("teacher", "weight", "temperature")


class DistillationLoss(nn.Module):
    """``(1 - weight) * CE(logits, y) + weight * T**2 * KL(softmax(teacher / T) || softmax(logits / T))``.

    The cross-entropy uses ``label_smoothing``; the KL term is averaged over the batch
    (``reduction="batchmean"``, the mathematical KL divergence per sample). Called with
    ``teacher=None`` it is the cross-entropy alone (the validation loss, or a batch without
    teacher logits).
    """

    def __init__(self, weight: float = 0.7, temperature: float = 4.0, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"distill weight must be between 0 and 1, got {weight!r}")
        if not temperature > 0:
            raise ValueError(f"distill temperature must be positive, got {temperature!r}")
        self.weight, self.temperature = float(weight), float(temperature)
        self.ce = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def forward(self, logits: torch.Tensor, y: torch.Tensor, teacher: torch.Tensor | None = None) -> torch.Tensor:
        logits = logits.float()
        ce = self.ce(logits, y)
        if teacher is None:
            return ce
        if teacher.shape != logits.shape:
            raise ValueError(f"teacher logits of shape {tuple(teacher.shape)} for student logits of shape "
                             f"{tuple(logits.shape)}")
        t = self.temperature
        kd = F.kl_div(F.log_softmax(logits / t, dim=1), F.softmax(teacher.float() / t, dim=1),
                      reduction="batchmean") * t * t
        return (1.0 - self.weight) * ce + self.weight * kd


def check_distill(spec: dict) -> None:
    """Refuse a ``distill`` setting without a teacher or with keys other than :data:`DISTILL_KEYS`."""
    unknown = sorted(set(spec) - set(DISTILL_KEYS))
    if "teacher" not in spec or unknown:
        raise ValueError(f"distill needs a 'teacher' and takes only {', '.join(DISTILL_KEYS)}; got {sorted(spec)}")


def load_teacher(spec: dict, classes, input_config=None, device: str | torch.device = "cpu") -> nn.Module:
    """The teacher of a ``distill`` setting, checked against the student's data.

    ``spec["teacher"]`` is a shipped model's name or an emolib checkpoint file
    (:func:`emolib.models.load_model`). Its classes must be ``classes`` (when given) in the same order, and,
    when the student's ``input_config`` is given, its input (size, channels, normalisation) the
    student's: the teacher is shown the student's prepared images.
    """
    check_distill(spec)
    teacher = load_model(spec["teacher"], device=device)
    if classes is not None and tuple(teacher.classes) != tuple(classes):
        raise ValueError(f"the teacher {spec['teacher']!r} predicts {list(teacher.classes)}, but the training set's "
                         f"classes are {list(classes)}: a teacher must have the student's classes in the same order")
    if input_config is not None and teacher.input_config != input_config:
        raise ValueError(f"the teacher {spec['teacher']!r} takes {teacher.input_config}, the student "
                         f"{input_config}: distillation shows the teacher the student's prepared images")
    return teacher


@torch.no_grad()
def teacher_logits(teacher: nn.Module, dataset, batch_transform: Callable | None = None,
                   device: str | torch.device = "cpu", amp: bool = False, batch_size: int = 256,
                   progress: bool = True) -> torch.Tensor:
    """The teacher's logits ``(N, classes)`` (float32) for every item of ``dataset``, in its order.

    Items are read as the dataset gives them (for a dataset read without its transform, the
    stored ``uint8`` images) and ``batch_transform`` (the evaluation transform) prepares each
    batch. ``amp`` runs the teacher under bfloat16 autocast on the CPU (float16 on CUDA).
    """
    from tqdm.auto import tqdm

    device = torch.device(device)
    teacher = teacher.to(device).eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    out = []
    for x, _ in tqdm(loader, desc="teacher", leave=False, disable=not progress or len(loader) < 5):
        x = x.to(device)
        if batch_transform is not None:
            x = batch_transform(x)
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            out.append(teacher(x).float().cpu())
    return torch.cat(out) if out else torch.empty(0)
