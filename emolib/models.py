"""Models: one registry with plain names, in the spirit of ``timm.create_model``.

========================  ==========================================  ==============
name                      what                                        input
========================  ==========================================  ==============
``baseline``              the thesis's residual CNN (Figure 4.6)      48x48 gray
``emonet``                our from-scratch CNN for the CPU            48x48 gray
``vgg``                   VGG-style CNN, widths 32-256 (the CPU)      48x48 gray
``vgg_large``             VGG-style CNN, widths 64-512 (a GPU)        48x48 gray
``mobilenetv3_large``     timm ``mobilenetv3_large_100``              224x224 RGB
``resnet34``              timm ``resnet34``                           224x224 RGB
``wide_resnet50_2``       timm ``wide_resnet50_2``                    224x224 RGB
``resnetv2_50``           timm ``resnetv2_50`` (hand gestures)        224x224 RGB
``landmark_mlp``          MLP on 21 normalised hand landmarks         21 x 3 coords
========================  ==========================================  ==============

``create_model(name, pretrained=False, num_classes=7, in_chans=None, weights=None)``
builds one. Gray input to an ImageNet backbone is handled by timm's ``in_chans=1``,
which sums the pretrained RGB filters of the first convolution into one channel (the
same response to a gray image as the RGB network gives to that image repeated three
times); the default keeps 3 channels and the transforms repeat the gray channel.

Trained checkpoints that ship inside the package are listed by :func:`list_pretrained`
and loaded by name with :func:`load_model` (``"baseline-fer2013"``...).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from .cards import card_markdown as model_card_markdown  # noqa: F401  (its old name; cards holds the one writer)
from .fileio import CheckpointError, load_torch, save_torch
from .transforms import channel_stats

__all__ = [
    "InputConfig",
    "BaselineCNN",
    "EmoNet",
    "VGGNet",
    "LandmarkMLP",
    "create_model",
    "list_models",
    "list_pretrained",
    "load_model",
    "save_checkpoint",
    "input_config",
    "count_parameters",
    "CheckpointError",
    "PretrainedWeightsError",
]

CHECKPOINT_DIR = Path(__file__).parent / "checkpoints"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PretrainedWeightsError(RuntimeError):
    """ImageNet weights could not be loaded (usually: no network)."""


@dataclass(frozen=True)
class InputConfig:
    """What a model expects: square ``size``, ``channels`` (1 gray, 3 RGB), normalisation."""

    size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


# --------------------------------------------------------------------------- the thesis baseline


class ResidualUnit(nn.Module):
    """Two 3x3 conv-BN layers with an identity shortcut, or a 1x1 conv-BN projection when the width changes."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.shortcut = (
            nn.Identity()
            if cin == cout and stride == 1
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class BaselineCNN(nn.Module):
    """The thesis's residual CNN for 48x48 gray faces (its Figure 4.6), 1,668,615 parameters.

    Stem: 5x5 convolution with stride 2 and 64 filters, no bias, batch norm, ReLU,
    2x2 max-pool. Then residual units of widths 32, 32, 64, 64, 64 and five of 128,
    with a 1x1 projection shortcut where the width changes; global average pooling
    and a dense layer to the classes.

    The figure does not give the strides of the units. Here the first unit of each new
    width halves the resolution (12x12 -> 6x6 -> 3x3), as in He et al. (2016); strides
    do not change the parameter count.
    """

    widths = (32, 32, 64, 64, 64, 128, 128, 128, 128, 128)

    def __init__(self, num_classes: int = 7, in_chans: int = 1) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, 64, 5, 2, 2, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        units = []
        cin = 64
        for i, w in enumerate(self.widths):
            stride = 2 if i > 0 and w != self.widths[i - 1] else 1
            units.append(ResidualUnit(cin, w, stride))
            cin = w
        self.units = nn.Sequential(*units)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.units(self.stem(x))), 1))


# --------------------------------------------------------------------------- our CPU model


class EmoNet(nn.Module):
    """A from-scratch residual CNN for 48x48 gray faces, designed for a small CPU budget.

    What it changes from the baseline, and why:

    * a gentler stem: the baseline's stride-2 5x5 convolution plus max-pool leaves
      12x12 maps before the first residual unit; facial expressions live in small
      details (mouth corners, brows), so here a 3x3 convolution at full resolution and
      a stride-2 3x3 convolution leave 24x24 maps for the first stage;
    * a pyramid 32 -> 64 -> 128 -> 256 over 24, 12, 6 and 3 pixels with
      ``units`` residual units per stage (1, 2, 2, 1), about twice the baseline's
      multiply-adds but a similar parameter count;
    * dropout before the classifier, and a recipe with label smoothing, weight decay and a
      one-cycle schedule (``emolib.recipes``).
    """

    def __init__(self, num_classes: int = 7, in_chans: int = 1, widths=(32, 64, 128, 256),
                 units=(1, 2, 2, 1), stem: int = 16, dropout: float = 0.3):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU(inplace=True),
            nn.Conv2d(stem, widths[0], 3, 2, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True),
        )
        stages = []
        cin = widths[0]
        for i, (w, n) in enumerate(zip(widths, units)):
            for j in range(n):
                stages.append(ResidualUnit(cin, w, 2 if (i > 0 and j == 0) else 1))
                cin = w
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(torch.flatten(self.pool(self.stages(self.stem(x))), 1)))


# --------------------------------------------------------------------------- VGG-style networks


class VGGNet(nn.Module):
    """A VGG-style CNN for 48x48 gray faces (Simonyan & Zisserman 2015; on FER2013: Khaireddin & Chen 2021).

    Four stages of ``convs`` 3x3 convolution-BN-ReLU layers, each stage ending in a 2x2
    max-pool (48 -> 24 -> 12 -> 6 -> 3 pixels), then global average pooling, dropout and
    one linear layer. ``vgg`` (widths 32-64-128-256, 1.17 M parameters) is sized for
    the CPU; ``vgg_large`` (64-128-256-512, 4.7 M) for a GPU, as a teacher.
    """

    def __init__(self, num_classes: int = 7, in_chans: int = 1, widths=(32, 64, 128, 256), convs: int = 2,
                 dropout: float = 0.3):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_chans
        for w in widths:
            for _ in range(convs):
                layers += [nn.Conv2d(cin, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
                cin = w
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(torch.flatten(self.pool(self.features(x)), 1)))


def _vgg_large(num_classes: int = 7, in_chans: int = 1) -> VGGNet:
    return VGGNet(num_classes, in_chans, widths=(64, 128, 256, 512))


# --------------------------------------------------------------------------- hand landmarks


class LandmarkMLP(nn.Module):
    """An MLP on normalised hand landmarks: ``21 * in_chans`` inputs -> ``hidden`` -> classes (``landmark_mlp``).

    ``in_chans`` is the number of coordinates per landmark (3 with MediaPipe's relative
    depth ``z``, 2 without), so that ``create_model(name, num_classes, in_chans)`` builds it
    like any image model. Input: ``(N, 21 * in_chans)`` or ``(N, 21, in_chans)`` features
    (:func:`emolib.hands.landmark_features`). Its "input config" is 21 landmarks x
    ``in_chans`` coordinates, mean 0 and std 1 (the features are normalised already).
    """

    def __init__(self, num_classes: int = 4, in_chans: int = 3, hidden=(128, 64), dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 21 * in_chans
        for h in hidden:
            layers += [nn.Linear(cin, h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            cin = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes)
        self.in_chans = in_chans

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x.flatten(1)))


# --------------------------------------------------------------------------- registry


@dataclass
class _Entry:
    builder: Callable[..., nn.Module]
    input: InputConfig | None  # None for timm backbones: timm's pretrained_cfg says (see input_config)
    timm_name: str | None = None
    description: str = ""
    defaults: dict = field(default_factory=dict)


_GRAY48 = InputConfig(48, 1, (0.5,), (0.5,))
_RGB224 = None  # a timm backbone's input size, mean and std are those of its pretrained_cfg (input_config)

_REGISTRY: dict[str, _Entry] = {
    "baseline": _Entry(BaselineCNN, _GRAY48, description="thesis residual CNN (Fig. 4.6)"),
    "emonet": _Entry(EmoNet, _GRAY48, description="our from-scratch CPU model"),
    "vgg": _Entry(VGGNet, _GRAY48, description="VGG-style CNN, widths 32-256"),
    "vgg_large": _Entry(_vgg_large, _GRAY48, description="VGG-style CNN, widths 64-512 (GPU teacher)"),
    "mobilenetv3_large": _Entry(None, _RGB224, "mobilenetv3_large_100", "MobileNetV3-Large (Howard et al. 2019)"),
    "resnet34": _Entry(None, _RGB224, "resnet34", "ResNet34 (He et al. 2016)"),
    "wide_resnet50_2": _Entry(None, _RGB224, "wide_resnet50_2", "Wide-ResNet50-2 (Zagoruyko & Komodakis 2016)"),
    "resnetv2_50": _Entry(None, _RGB224, "resnetv2_50", "ResNet50v2 (He et al. 2016, identity mappings)",
                          {"num_classes": 4}),
    "landmark_mlp": _Entry(LandmarkMLP, InputConfig(21, 3, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
                           description="MLP on 21 normalised hand landmarks (gestures-asl)",
                           defaults={"num_classes": 4}),
}


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`."""
    return sorted(_REGISTRY)


def input_config(name: str, in_chans: int | None = None, size: int | None = None) -> InputConfig:
    """The input a registered model expects (size, channels, mean, std).

    For a timm backbone these come from timm: the data config of its default pretrained
    weights (:func:`timm.data.resolve_data_config` of its ``pretrained_cfg``, what
    :func:`timm.data.resolve_model_data_config` gives for the built model; read offline, no
    weights are downloaded). ``in_chans`` other than the config's adapts mean and std with
    :func:`emolib.transforms.channel_stats`.
    """
    entry = _entry(name)
    cfg = entry.input if entry.input is not None else _timm_input(entry.timm_name)
    chans = in_chans or cfg.channels
    mean, std = channel_stats(cfg.mean, cfg.std, chans)
    return InputConfig(size or cfg.size, chans, mean, std)


@functools.lru_cache(maxsize=None)
def _timm_input(timm_name: str) -> InputConfig:
    from timm.data import resolve_data_config
    from timm.models import get_pretrained_cfg

    data = resolve_data_config(pretrained_cfg=get_pretrained_cfg(timm_name).to_dict())
    channels, height, width = data["input_size"]
    if height != width:
        raise ValueError(f"timm's {timm_name} expects a {height}x{width} input; emolib's models take square ones")
    return InputConfig(height, channels, tuple(data["mean"]), tuple(data["std"]))


def _entry(name: str) -> _Entry:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of {list_models()}")
    return _REGISTRY[name]


def create_model(
    name: str,
    pretrained: bool = False,
    num_classes: int | None = None,
    in_chans: int | None = None,
    weights: str | os.PathLike | None = None,
) -> nn.Module:
    """Build a registered model.

    ``pretrained=True`` loads ImageNet weights for the timm backbones (downloaded from
    the Hugging Face hub on first use; it fails with :class:`PretrainedWeightsError`
    when offline). ``weights=PATH`` loads a local file instead: an emolib checkpoint,
    or a plain state dict (of the full model, or of a timm backbone whose classifier
    is then left new). The model gets ``.emolib_name`` and ``.input_config``.
    """
    entry = _entry(name)
    num_classes = num_classes or entry.defaults.get("num_classes", 7)
    chans = in_chans or input_config(name).channels
    if entry.timm_name is None:
        if pretrained:
            raise PretrainedWeightsError(f"{name!r} is trained from scratch: there are no ImageNet weights for it")
        model = entry.builder(num_classes=num_classes, in_chans=chans)
    else:
        model = _create_timm(entry.timm_name, pretrained and weights is None, num_classes, chans)
    if weights is not None:
        _load_weights(model, Path(weights))
    model.emolib_name = name
    model.input_config = input_config(name, chans)
    return model


def _create_timm(timm_name: str, pretrained: bool, num_classes: int, in_chans: int) -> nn.Module:
    import timm

    try:
        return timm.create_model(timm_name, pretrained=pretrained, num_classes=num_classes, in_chans=in_chans)
    except Exception as err:
        if not pretrained:
            raise
        raise PretrainedWeightsError(
            f"could not load ImageNet weights for {timm_name} ({type(err).__name__}: {err}). They are downloaded "
            f"from the Hugging Face hub on first use, which needs a network connection. Offline, use "
            f"pretrained=False, or download them elsewhere (timm.create_model('{timm_name}', pretrained=True) "
            f"caches them under ~/.cache/huggingface) and pass weights=PATH to a saved state dict."
        ) from err


def _load_weights(model: nn.Module, path: Path) -> None:
    state = _read_checkpoint(path)
    sd = state["state_dict"] if "state_dict" in state else state
    sd = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
    own = model.state_dict()
    mismatched = [k for k, v in sd.items() if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    head = {k for k in missing + mismatched if _is_head(model, k)}
    if unexpected or set(missing) - head or set(mismatched) - head:
        raise CheckpointError(
            f"{path} does not fit this architecture: {len(missing)} missing, {len(unexpected)} unexpected and "
            f"{len(mismatched)} mis-shaped tensors (e.g. {(missing + unexpected + mismatched)[:3]}). Was it saved "
            f"from another model? Its arch is {state.get('arch', 'unknown')!r}."
        )
    for k in head:
        sd.pop(k, None)
    model.load_state_dict(sd, strict=False)


def _is_head(model: nn.Module, key: str) -> bool:
    """Whether ``key`` is a weight of the model's classifier: timm names it in ``pretrained_cfg["classifier"]``
    (``fc``, ``classifier``, ``head.fc``...); emolib's own models call it ``head``."""
    classifier = (getattr(model, "pretrained_cfg", None) or {}).get("classifier", "head")
    names = (classifier,) if isinstance(classifier, str) else tuple(classifier)
    return any(key == n or key.startswith(n + ".") for n in names)


def _read_checkpoint(path: Path) -> dict:
    state = load_torch(path)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; batch-norm running statistics are buffers and not counted."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(
    model: nn.Module,
    path: str | os.PathLike,
    classes: tuple[str, ...] | list[str],
    half: bool = False,
    **meta,
) -> Path:
    """Save a self-describing checkpoint: architecture, classes, input config, weights, ``meta``.

    ``half=True`` stores floating-point tensors in float16 (half the size; they are
    loaded back as float32).
    """
    path = Path(path)
    sd = model.state_dict()
    if half:
        sd = {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}
    blob = {
        "arch": getattr(model, "emolib_name", type(model).__name__),
        "classes": list(classes),
        "input": asdict(model.input_config) if hasattr(model, "input_config") else None,
        "state_dict": sd,
        "meta": meta,
    }
    return save_torch(blob, path)


def list_pretrained() -> list[str]:
    """Names of the trained checkpoints that ship with emolib (``<model>-<dataset>``)."""
    return sorted(p.stem for p in CHECKPOINT_DIR.glob("*.pt"))


def load_model(name_or_path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Load a shipped checkpoint by name (see :func:`list_pretrained`) or an emolib checkpoint file.

    The model is returned in eval mode with ``.classes``, ``.input_config`` and
    ``.meta`` (the checkpoint's recorded metrics and recipe) attached.
    """
    path = Path(name_or_path)
    if not path.suffix and str(name_or_path) in list_pretrained():
        path = CHECKPOINT_DIR / f"{name_or_path}.pt"
    elif not path.exists():
        raise CheckpointError(
            f"{name_or_path!r} is neither a shipped model ({', '.join(list_pretrained()) or 'none'}) nor a file"
        )
    state = _read_checkpoint(path)
    if "arch" not in state or "state_dict" not in state:
        raise CheckpointError(f"{path} is not an emolib checkpoint (no 'arch'); use create_model(name, weights=...)")
    if state["arch"] not in _REGISTRY:
        raise CheckpointError(f"{path} was saved from an unknown architecture {state['arch']!r}")
    classes = state["classes"]
    inp = state.get("input") or asdict(input_config(state["arch"]))
    model = create_model(state["arch"], num_classes=len(classes), in_chans=inp["channels"])
    _load_weights(model, path)
    model.classes = tuple(classes)
    model.input_config = InputConfig(inp["size"], inp["channels"], tuple(inp["mean"]), tuple(inp["std"]))
    model.meta = state.get("meta", {})
    return model.to(device).eval()


def model_card(name: str) -> dict:
    """The JSON model card of a shipped checkpoint (data, recipe, command, time, test metrics)."""
    path = CHECKPOINT_DIR / f"{name}.json"
    if not path.is_file():
        raise CheckpointError(f"no model card for {name!r}; shipped: {list_pretrained()}")
    return json.loads(path.read_text())
