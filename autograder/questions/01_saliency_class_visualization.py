"""01_saliency_class_visualization: saliency maps, class visualization, Yosinski's regularizers, neuron ascent.

Every case uses a tiny CNN (``autograder.core.tiny_models.tiny_cnn``) with weights drawn from the case's seed, so the
references never depend on how the bundled model was trained. Hidden cases change the seed, the batch size (N = 1
and N larger than the public case's, so a hard-coded batch size fails) and the image size.
"""
from __future__ import annotations

import torch

from autograder.core.spec import Assignment, Case, Mistake, ModelRef, Question, TensorMatch

from ._inputs import gen

NUM_CLASSES = 10          # tiny_cnn's default head


def _scaled_images(g: torch.Generator, n: int, size: int) -> torch.Tensor:
    """``(n, 3, size, size)`` normal images, each with its own scale in [0.2, 3] (so per-image and whole-batch
    percentiles differ)."""
    scales = 0.2 + 2.8 * torch.rand(n, 1, 1, 1, generator=g)
    return torch.randn(n, 3, size, size, generator=g) * scales


# ------------------------------------------------------------------------------------------------- builders


def build_saliency(seed: int, n: int, size: int) -> dict:
    g = gen(seed)
    return {"X": torch.randn(n, 3, size, size, generator=g),
            "y": torch.randint(0, NUM_CLASSES, (n,), generator=g),
            "model": ModelRef("tiny_cnn", seed=seed)}


def build_class_step(seed: int, size: int, l2_reg: float, learning_rate: float) -> dict:
    g = gen(seed)
    img = (0.5 * torch.randn(1, 3, size, size, generator=g)).requires_grad_(True)
    return {"img": img,
            "model": ModelRef("tiny_cnn", seed=seed),
            "target_y": int(torch.randint(0, NUM_CLASSES, (1,), generator=g)),
            "l2_reg": l2_reg,
            "learning_rate": learning_rate}


def build_blur(seed: int, n: int, size: int, sigma: float) -> dict:
    g = gen(seed)
    return {"img": _scaled_images(g, n, size), "sigma": sigma}


def build_small_norm(seed: int, n: int, size: int, percentile: float) -> dict:
    g = gen(seed)
    return {"img": _scaled_images(g, n, size), "percentile": percentile}


def build_small_contribution(seed: int, n: int, size: int, percentile: float) -> dict:
    g = gen(seed)
    return {"img": _scaled_images(g, n, size), "grad": _scaled_images(g, n, size), "percentile": percentile}


def build_neuron_step(seed: int, size: int, layer_index: int, channel: int, l2_reg: float,
                      learning_rate: float) -> dict:
    g = gen(seed)
    img = (0.5 * torch.randn(1, 3, size, size, generator=g)).requires_grad_(True)
    return {"img": img,
            "model": ModelRef("tiny_cnn", seed=seed),
            "layer_index": layer_index,
            "channel": channel,
            "l2_reg": l2_reg,
            "learning_rate": learning_rate}


# ------------------------------------------------------------------------------------------------ questions

#: The two ascent steps are called many times on the same ``img`` in the notebook; a step that never resets
#: ``img.grad`` is right on the first call and wrong from the second. Only several calls per case can tell (a single
#: call cannot separate it from "zero the gradient after the step"), so each case calls the step 3 times.
_REPEAT = {"repeat": 3}

# Saliency values of the tiny CNN are small (~1e-4 .. 1e-3), hence the small atol.
SALIENCY = Question(
    id="compute_saliency_maps", points=3, build=build_saliency,
    mistakes=[Mistake("softmax probability", "you took the gradient of the softmax probability; differentiate the raw score s_y (the logit, before softmax)",
                      "utils.reference.saliency:saliency_softmax_probability"),
              Mistake("no absolute value", "the map is the max over channels of the gradient's absolute value; take .abs() before the max",
                      "utils.reference.saliency:saliency_signed_gradient"),
              Mistake("sum over channels", "you summed |gradient| over the colour channels; the map takes the max over channels",
                      "utils.reference.saliency:saliency_sum_over_channels")],
    description="|d s_y / d X| maxed over channels, raw score, any batch size",
    cases=[Case("public_n2_16px", seed=0, public=True, params={"n": 2, "size": 16}),
           # N = 1 in public too: a quarter of real answers fail only on one image, through .squeeze()
           Case("public_n1_20px", seed=1, public=True, params={"n": 1, "size": 20}),
           Case("hidden_n1_24px", seed=101, params={"n": 1, "size": 24}),
           Case("hidden_n5_20px", seed=102, params={"n": 5, "size": 20}),
           Case("hidden_n9_12px", seed=103, params={"n": 9, "size": 12})],
    compare=TensorMatch(rtol=1e-4, atol=1e-8))

CLASS_STEP = Question(
    id="class_visualization_update_step", points=3, build=build_class_step, inplace="img", **_REPEAT,
    mistakes=[Mistake("unnormalized step", "the step is learning_rate * g; divide it by the gradient's L2 norm, learning_rate * g / ||g||",
                      "utils.reference.class_visualization:class_step_unnormalized"),
              Mistake("L2 penalty added", "you climbed s_y + l2_reg ||img||^2; the penalty is subtracted: s_y - l2_reg ||img||^2",
                      "utils.reference.class_visualization:class_step_l2_added")],
    description="img += lr * g / ||g||, g = grad of s_y - l2_reg ||img||^2",
    cases=[Case("public_16px", seed=0, public=True, params={"size": 16, "l2_reg": 3e-4, "learning_rate": 1.0}),
           Case("public_24px", seed=111, params={"size": 24, "l2_reg": 2e-4, "learning_rate": 2.0}, public=True),
           Case("hidden_32px", seed=112, params={"size": 32, "l2_reg": 1e-4, "learning_rate": 0.5}),
           Case("hidden_20px_strong_l2", seed=113, params={"size": 20, "l2_reg": 1e-3, "learning_rate": 1.5})],
    compare=TensorMatch(rtol=1e-4, atol=1e-5))

BLUR = Question(
    id="blur_image", points=1, build=build_blur,
    description="Gaussian blur, exactly utils.image.blur",
    cases=[Case("public_n2_16px", seed=0, public=True, params={"n": 2, "size": 16, "sigma": 1.0}),
           Case("public_n1_21px", seed=121, params={"n": 1, "size": 21, "sigma": 0.6}, public=True),
           Case("hidden_n4_24px", seed=122, params={"n": 4, "size": 24, "sigma": 2.0})],
    compare=TensorMatch(rtol=1e-4, atol=1e-5))

SMALL_NORM = Question(
    id="zero_small_norm_pixels", points=1, build=build_small_norm,
    description="per image, zero pixels whose channel norm < the percentile",
    cases=[Case("public_n2_16px", seed=0, public=True, params={"n": 2, "size": 16, "percentile": 30.0}),
           # 11 x 11 = 121 pixels: the 25th percentile falls exactly on a pixel (strict < matters)
           Case("public_n3_11px", seed=131, params={"n": 3, "size": 11, "percentile": 25.0}, public=True),
           Case("hidden_n1_20px", seed=132, params={"n": 1, "size": 20, "percentile": 62.5}),
           Case("hidden_n6_14px", seed=133, params={"n": 6, "size": 14, "percentile": 70.0})],
    compare=TensorMatch(rtol=1e-5, atol=1e-6))

SMALL_CONTRIBUTION = Question(
    id="zero_small_contribution_pixels", points=2, build=build_small_contribution,
    description="per image, zero pixels whose |sum_c img * grad| < the percentile",
    cases=[Case("public_n2_16px", seed=0, public=True, params={"n": 2, "size": 16, "percentile": 45.0}),
           Case("public_n3_11px", seed=141, params={"n": 3, "size": 11, "percentile": 25.0}, public=True),
           Case("hidden_n1_20px", seed=142, params={"n": 1, "size": 20, "percentile": 70.0}),
           Case("hidden_n5_13px", seed=143, params={"n": 5, "size": 13, "percentile": 55.0})],
    compare=TensorMatch(rtol=1e-5, atol=1e-6))

NEURON_STEP = Question(
    id="neuron_visualization_update_step", points=2, build=build_neuron_step, inplace="img", **_REPEAT,
    description="normalized ascent on the mean activation of one channel of model.features[:layer_index + 1]",
    cases=[Case("public_conv2", seed=0, public=True,
                params={"size": 16, "layer_index": 3, "channel": 5, "l2_reg": 3e-4, "learning_rate": 1.0}),
           Case("public_conv1", seed=151,
                params={"size": 20, "layer_index": 0, "channel": 2, "l2_reg": 5e-4, "learning_rate": 1.0}, public=True),
           Case("hidden_relu2", seed=152,
                params={"size": 24, "layer_index": 4, "channel": 11, "l2_reg": 2e-4, "learning_rate": 2.0}),
           Case("hidden_last", seed=153,
                params={"size": 16, "layer_index": 7, "channel": 12, "l2_reg": 3e-4, "learning_rate": 0.5})],
    compare=TensorMatch(rtol=1e-4, atol=1e-5))

QUESTIONS = [SALIENCY, CLASS_STEP, BLUR, SMALL_NORM, SMALL_CONTRIBUTION, NEURON_STEP]
ASSIGNMENT = Assignment(id="01_saliency_class_visualization", questions=QUESTIONS)
