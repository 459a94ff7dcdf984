"""Case files: one safetensors file per graded case, loaded without pickle.

A case file holds the call's arguments (tensors, lists of tensors, JSON scalars, tiny-model weights), the
reference's outputs (``out/<key>``; absent from the inputs-only copies that student code may see) and a JSON
metadata string (argument order and kinds, scalar values, model specs, the in-place argument, the format version).

Tensor keys: ``in/<arg>``, ``in/<arg>/<i>`` (list of tensors), ``model/<arg>/<param>``, ``out/<key>``, and
``mistake/<function>/<key>``: the outputs of the question's known mistakes, computed with the expected outputs
(the metadata's ``mistakes`` maps each mistake function to whether it returned outputs), so that grading names a
known mistake without running it.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from autograder.core.spec import ModelRef

#: Version of the case-file layout; bump when it changes (old files are then rejected with a clear message).
FORMAT = 1
META_KEY = "autograder"
BUNDLED = "shapes"


class CaseFileError(Exception):
    """A case file that cannot be read or does not match this engine."""


@dataclass
class CaseFile:
    meta: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    def _under(self, prefix: str) -> dict[str, torch.Tensor]:
        """The tensors whose key starts with ``prefix``, by the rest of the key."""
        return {k[len(prefix):]: v for k, v in self.tensors.items() if k.startswith(prefix)}

    @functools.cached_property
    def expected(self) -> dict[str, torch.Tensor]:
        """The reference outputs (empty for inputs-only files; only read: the batch grader asks per submission)."""
        return self._under("out/")

    @functools.cached_property
    def mistakes(self) -> dict[str, dict[str, torch.Tensor] | None] | None:
        """The known mistakes' outputs by mistake function (None for one that failed when the case was generated);
        None for a file without them (an inputs-only copy, or one generated before they were stored)."""
        stored = self.meta.get("mistakes")
        if not isinstance(stored, dict):
            return None
        return {function: self._under(f"mistake/{function}/") if ok else None for function, ok in stored.items()}

    def inputs_only(self) -> "CaseFile":
        meta = dict(self.meta, outputs=None, mistakes=None)
        return CaseFile(meta, {k: v for k, v in self.tensors.items() if not k.startswith(("out/", "mistake/"))})

    def to_bytes(self) -> bytes:
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.tensors.items()}
        return st_save(tensors, metadata={META_KEY: json.dumps(self.meta, sort_keys=True)})

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(self.to_bytes())
        tmp.replace(path)
        return path


def from_bytes(data: bytes, what: str = "case file") -> CaseFile:
    """Parse safetensors bytes (no pickle) into a :class:`CaseFile`."""
    try:
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + header_len])
        meta = json.loads(header.get("__metadata__", {}).get(META_KEY, "null"))
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
        raise CaseFileError(f"{what} is not a valid safetensors case file: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise CaseFileError(f"{what} has engine format {found!r}, this engine reads {FORMAT}; "
                            "regenerate with `python -m autograder cases`")
    return CaseFile(meta, tensors)


def read(path: str | Path) -> CaseFile:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CaseFileError(f"cannot read case file {path}: {exc.strerror}") from None
    return from_bytes(data, str(path))


def state_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """A fingerprint of a model's weights (keys, dtypes, shapes and bytes)."""
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _tensor(t: torch.Tensor) -> torch.Tensor:
    return t.detach().cpu().clone().contiguous()


def encode_args(args: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, torch.Tensor]]:
    """Split a builder's arguments into metadata entries and tensors (models as weights, by name for 'shapes')."""
    entries: list[dict[str, Any]] = []
    tensors: dict[str, torch.Tensor] = {}
    for name, value in args.items():
        if "/" in name:
            raise ValueError(f"argument name {name!r} may not contain '/'")
        if isinstance(value, torch.Tensor):
            tensors[f"in/{name}"] = _tensor(value)
            entries.append({"name": name, "kind": "tensor", "requires_grad": bool(value.requires_grad)})
        elif isinstance(value, ModelRef):
            model = load_model_ref(value.name, value.seed)
            state = {k: v for k, v in model.state_dict().items()}
            entry = {"name": name, "kind": "model", "model": value.name, "seed": value.seed,
                     "sha256": state_sha256(state), "stored": value.name != BUNDLED}
            if entry["stored"]:
                for k, v in state.items():
                    tensors[f"model/{name}/{k}"] = _tensor(v)
            entries.append(entry)
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, torch.Tensor) for v in value):
            for i, v in enumerate(value):
                tensors[f"in/{name}/{i}"] = _tensor(v)
            entries.append({"name": name, "kind": "tensor_list", "length": len(value),
                            "tuple": isinstance(value, tuple),
                            "requires_grad": [bool(v.requires_grad) for v in value]})
        else:
            try:
                text = json.dumps(value)
            except TypeError:
                raise ValueError(f"argument {name!r}: unsupported type {type(value).__name__} (use tensors, "
                                 "lists of tensors, JSON scalars/lists or ModelRef)") from None
            entries.append({"name": name, "kind": "json", "value": json.loads(text),
                            "tuple": isinstance(value, tuple)})
    return entries, tensors


def load_model_ref(name: str, seed: int = 0, state: Mapping[str, torch.Tensor] | None = None,
                   sha256: str | None = None) -> torch.nn.Module:
    """Rebuild a model argument on the CPU, in eval mode with frozen weights.

    Tiny models get ``state`` (stored weights) or are drawn from ``seed``; ``"shapes"`` is the bundled classifier
    from :func:`utils.models.load_model`. When ``sha256`` is given the weights must match it."""
    from autograder.core.tiny_models import TINY_MODELS, build_tiny

    if name in TINY_MODELS:
        model = build_tiny(name, seed=None if state is not None else seed)
        if state is not None:
            model.load_state_dict(dict(state))
    elif name == BUNDLED:
        try:
            from utils.models import load_model
        except ImportError as exc:
            raise CaseFileError(f"model {name!r} needs utils.models.load_model, which cannot be imported: "
                                f"{exc}") from None
        model = load_model(name, "cpu")
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
    else:
        raise CaseFileError(f"unknown model {name!r} in a case file")
    if sha256 is not None and state_sha256(model.state_dict()) != sha256:
        raise CaseFileError(f"model {name!r} does not have the weights the references were made with; "
                            "regenerate them with `python -m autograder cases`")
    return model


#: Pristine models already built by :func:`build_args`, keyed by what defines their weights; each call gets a
#: deep copy, so a function that changes a model's weights cannot affect another case.
_MODELS: dict[tuple, torch.nn.Module] = {}


def _model_arg(case: CaseFile, name: str, e: Mapping[str, Any]) -> torch.nn.Module:
    import copy

    key = (e["model"], e.get("seed", 0), e.get("sha256"), bool(e.get("stored")))
    model = _MODELS.get(key) if e.get("sha256") else None  # only weights pinned by a checksum are shared
    if model is None:
        prefix = f"model/{name}/"
        state = {k[len(prefix):]: v for k, v in case.tensors.items() if k.startswith(prefix)}
        model = load_model_ref(e["model"], e.get("seed", 0), state if e.get("stored") else None, e.get("sha256"))
        if not e.get("sha256"):
            return model
        _MODELS[key] = model
    return copy.deepcopy(model)


def build_args(case: CaseFile) -> dict[str, Any]:
    """Fresh call arguments from a case file (new tensors every call, so in-place functions can't leak)."""
    args: dict[str, Any] = {}
    for e in case.meta["args"]:
        name, kind = e["name"], e["kind"]
        if kind == "tensor":
            t = case.tensors[f"in/{name}"].clone()
            args[name] = t.requires_grad_(True) if e.get("requires_grad") else t
        elif kind == "tensor_list":
            items = []
            for i in range(e["length"]):
                t = case.tensors[f"in/{name}/{i}"].clone()
                items.append(t.requires_grad_(True) if e["requires_grad"][i] else t)
            args[name] = tuple(items) if e.get("tuple") else items
        elif kind == "model":
            args[name] = _model_arg(case, name, e)
        elif kind == "json":
            v = e["value"]
            args[name] = tuple(v) if e.get("tuple") and isinstance(v, list) else v
        else:
            raise CaseFileError(f"unknown argument kind {kind!r}")
    return args
