import json
import shutil
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import utils.models as models_mod
from utils.data import SHAPE_CLASSES, make_shapes
from utils.image import preprocess
from utils.models import (
    MODEL_NAMES,
    ModelCard,
    ModelUnavailableError,
    ShapesNet,
    WeightsChecksumError,
    extract_features,
    imagenet_weights_path,
    layer_output,
    load_model,
    model_card,
)


def test_model_names():
    assert isinstance(MODEL_NAMES, tuple)
    assert MODEL_NAMES[0] == "shapes"
    for name in ("squeezenet1_1", "vgg16", "resnet18"):
        assert name in MODEL_NAMES


def test_shapes_card():
    card = model_card()
    assert isinstance(card, ModelCard) and card.name == "shapes"
    assert card.classes == SHAPE_CLASSES
    assert card.input_size == 64
    assert len(card.mean) == len(card.std) == 3 and all(s > 0 for s in card.std)
    with pytest.raises(Exception):
        card.name = "other"  # frozen


@pytest.mark.parametrize("name", ["squeezenet1_1", "vgg16", "resnet18"])
def test_imagenet_cards_offline(name):
    card = model_card(name)
    assert len(card.classes) == 1000 and card.classes[0] == "tench"
    assert card.mean == pytest.approx((0.485, 0.456, 0.406))
    assert card.std == pytest.approx((0.229, 0.224, 0.225))
    assert card.input_size == 224
    assert card.weights_file.endswith(".pth")


@pytest.mark.parametrize("fn", [load_model, model_card])
def test_unknown_model_lists_names(fn):
    with pytest.raises(ValueError) as exc:
        fn("inception_v9")
    for name in MODEL_NAMES:
        assert name in str(exc.value)


def test_shapesnet_layout():
    net = ShapesNet(10)
    assert isinstance(net.features, nn.Sequential)
    assert isinstance(net.avgpool, nn.AdaptiveAvgPool2d)
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    bns = [m for m in net.features if isinstance(m, nn.BatchNorm2d)]
    relus = [m for m in net.features if isinstance(m, nn.ReLU)]
    assert len(convs) >= 4 and len(bns) == len(convs) == len(relus)
    assert all(not r.inplace for r in relus)
    assert all(isinstance(net.features[i], nn.ReLU) for i in net.feature_layers)
    net.eval()
    for size in (32, 48, 64, 80):
        assert net(torch.randn(2, 3, size, size)).shape == (2, 10)


def _run_layers(x, layers, count):
    """Independent formulation: apply the first ``count`` layers one after the other."""
    for layer in list(layers)[:count]:
        x = layer(x)
    return x


def test_layer_output_is_the_output_of_that_layer(shapes_model):
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    n = len(shapes_model.features)
    for k in (0, 1, 5, n - 1):
        a = layer_output(x, shapes_model, k)
        assert torch.equal(a, _run_layers(x, shapes_model.features, k + 1))
        assert torch.equal(a, extract_features(x, shapes_model)[k])
    assert layer_output(x, shapes_model, 3).shape == (2, 16, 16, 16)   # stage 1 after its max-pool
    assert layer_output(x, shapes_model, 4).shape == (2, 32, 16, 16)   # stage 2's conv: 32 channels


def test_layer_output_counts_negative_indices_from_the_end():
    model = nn.Module()
    model.features = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.Conv2d(4, 2, 3), nn.Tanh())
    x = torch.randn(1, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    assert torch.equal(layer_output(x, model, -1), _run_layers(x, model.features, 4))   # the whole block
    assert torch.equal(layer_output(x, model, -2), _run_layers(x, model.features, 3))
    assert torch.equal(layer_output(x, model, -4), _run_layers(x, model.features, 1))
    x.requires_grad_(True)
    layer_output(x, model, 2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_layer_output_needs_a_features_sequence():
    with pytest.raises(TypeError, match="layer_output needs a model with a `features` nn.Sequential"):
        layer_output(torch.zeros(1, 3), nn.Linear(3, 3), 0)


def test_load_shapes(shapes_model):
    model = shapes_model
    assert isinstance(model, ShapesNet)
    assert not model.training
    assert all(not p.requires_grad for p in model.parameters())
    assert next(model.parameters()).device.type == "cpu"
    x = torch.zeros(3, 3, 64, 64)
    logits = model(x)
    assert logits.shape == (3, len(SHAPE_CLASSES))
    # raw logits, not probabilities
    assert not torch.allclose(logits.sum(1), torch.ones(3))


def test_load_shapes_default_device(monkeypatch):
    monkeypatch.setattr(models_mod, "get_device", lambda: torch.device("cpu"))
    model = load_model()
    assert next(model.parameters()).device.type == "cpu"


def test_shapes_model_is_accurate(shapes_model):
    images, labels, _ = make_shapes(200, seed=12345)
    with torch.no_grad():
        pred = shapes_model(preprocess(images)).argmax(1)
    acc = (pred == torch.from_numpy(labels)).float().mean().item()
    assert acc >= 0.95


def test_shapes_gradients_reach_the_input(shapes_model):
    images, labels, _ = make_shapes(4, seed=1)
    x = preprocess(images).requires_grad_(True)
    shapes_model(x).gather(1, torch.from_numpy(labels)[:, None]).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in shapes_model.parameters())


def _copy_weights(tmp_path: Path) -> Path:
    dst = tmp_path / "weights"
    shutil.copytree(models_mod.WEIGHTS_DIR, dst)
    return dst


def test_checksum_mismatch(tmp_path, monkeypatch):
    wdir = _copy_weights(tmp_path)
    monkeypatch.setattr(models_mod, "WEIGHTS_DIR", wdir)
    load_model("shapes", device="cpu")  # intact copy loads
    f = wdir / "shapes.safetensors"
    data = bytearray(f.read_bytes())
    data[-10] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(WeightsChecksumError) as exc:
        load_model("shapes", device="cpu")
    msg = str(exc.value)
    assert "sha256" in msg and str(f) in msg and "git checkout" in msg


def test_missing_bundled_weights(tmp_path, monkeypatch):
    wdir = _copy_weights(tmp_path)
    monkeypatch.setattr(models_mod, "WEIGHTS_DIR", wdir)
    (wdir / "shapes.safetensors").unlink()
    with pytest.raises(ModelUnavailableError, match="train_bundled"):
        load_model("shapes", device="cpu")


def test_weights_json_is_consistent():
    meta = json.loads((models_mod.WEIGHTS_DIR / "shapes.json").read_text())
    assert meta["sha256"] == models_mod.sha256_file(models_mod.WEIGHTS_DIR / meta["weights_file"])
    assert tuple(meta["classes"]) == SHAPE_CLASSES
    assert (models_mod.WEIGHTS_DIR / meta["weights_file"]).stat().st_size <= 10 * 2**20


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    torch.hub.set_dir(str(tmp_path / "hub"))
    assert Path(torch.hub.get_dir()) == tmp_path / "hub"
    return tmp_path / "hub"


def test_imagenet_from_planted_cache(hub_dir):
    url = torchvision.models.SqueezeNet1_1_Weights.DEFAULT.url
    filename = url.rsplit("/", 1)[-1]
    torch.manual_seed(0)
    planted = torchvision.models.squeezenet1_1(weights=None)
    (hub_dir / "checkpoints").mkdir(parents=True)
    torch.save(planted.state_dict(), hub_dir / "checkpoints" / filename)
    assert imagenet_weights_path("squeezenet1_1") == hub_dir / "checkpoints" / filename

    model = load_model("squeezenet1_1", device="cpu")
    assert not model.training
    assert all(not p.requires_grad for p in model.parameters())
    expected = planted.state_dict()
    got = model.state_dict()
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)


def test_imagenet_missing_gives_clear_error(hub_dir, monkeypatch):
    def no_network(*args, **kwargs):  # pragma: no cover - must not be reached
        raise AssertionError("load_model tried to download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(ModelUnavailableError) as exc:
        load_model("squeezenet1_1", device="cpu")
    msg = str(exc.value)
    assert isinstance(exc.value, RuntimeError)
    assert 'load_model("shapes")' in msg
    assert str(hub_dir / "checkpoints") in msg
    assert torchvision.models.SqueezeNet1_1_Weights.DEFAULT.url in msg
