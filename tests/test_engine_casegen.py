"""Reference case files: regenerated bit-for-bit-ish from the question specs, loaded without pickle."""
from __future__ import annotations

import json

import pytest
import torch

from autograder.core import casefile, casegen, registry
from autograder.core.spec import ModelRef
from tests.fixtures.fixture_assignment import students


@pytest.fixture(scope="module")
def entry():
    return registry.register(students.QUESTIONS)


def test_fixture_references_regenerate_identically(entry, tmp_path):
    written = casegen.generate(entry, tmp_path)
    assert len(written) == sum(len(q.cases) for q in entry.assignment.questions)
    for path in written:
        rel = path.relative_to(tmp_path)
        committed = casefile.read(entry.cases_dir / rel)
        fresh = casefile.read(path)
        assert fresh.meta == committed.meta, rel
        assert set(fresh.tensors) == set(committed.tensors), rel
        for key, t in fresh.tensors.items():
            torch.testing.assert_close(t, committed.tensors[key], rtol=1e-4, atol=1e-6, msg=f"{rel}: {key}")


def test_public_and_hidden_go_to_their_folders(entry):
    for q in entry.assignment.questions:
        for c in q.cases:
            path = entry.case_path(q, c)
            assert path.is_file()
            assert path.parts[-4] == ("public" if c.public else "hidden")
            meta = casefile.read(path).meta
            assert (meta["public"], meta["question"], meta["case"]) == (c.public, q.id, c.name)


def test_case_file_is_plain_safetensors_with_json_metadata(entry):
    q = entry.assignment.question("saliency_like")
    data = entry.case_path(q, q.cases[0]).read_bytes()
    header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
    meta = json.loads(header["__metadata__"]["autograder"])
    assert meta["format"] == casefile.FORMAT
    assert [a["name"] for a in meta["args"]] == ["X", "y", "model"]
    assert meta["args"][2]["kind"] == "model" and meta["args"][2]["stored"] is True
    assert any(k.startswith("model/model/features.0.") for k in header)
    assert meta["outputs"] == ["out"]


def test_encode_build_roundtrip_and_inputs_only():
    inputs = {"a": torch.randn(2, 3).requires_grad_(True), "feats": (torch.ones(2), torch.zeros(1)),
              "k": 3, "w": [0.5, 1.5], "name": "conv", "layers": (1, 2), "model": ModelRef("tiny_mlp", seed=4)}
    args, tensors = casefile.encode_args(inputs)
    cf = casefile.CaseFile({"format": casefile.FORMAT, "args": args, "outputs": None}, dict(tensors))
    cf.tensors["out/out"] = torch.ones(1)
    back = casefile.from_bytes(cf.to_bytes())
    built = casefile.build_args(back)
    assert list(built) == list(inputs)
    assert built["a"].requires_grad and torch.equal(built["a"].detach(), inputs["a"].detach())
    assert isinstance(built["feats"], tuple) and torch.equal(built["feats"][1], torch.zeros(1))
    assert (built["k"], built["w"], built["name"], built["layers"]) == (3, [0.5, 1.5], "conv", (1, 2))
    ref = casefile.load_model_ref("tiny_mlp", seed=4)
    x = torch.randn(3, 16)
    torch.testing.assert_close(built["model"](x), ref(x))
    assert not any(p.requires_grad for p in built["model"].parameters())
    assert back.expected.keys() == {"out"}
    assert back.inputs_only().expected == {}
    built["a"].data.add_(1)  # fresh tensors every call: mutation does not leak into the file's tensors
    assert torch.equal(casefile.build_args(back)["a"].detach(), inputs["a"].detach())


def test_bad_files_are_rejected_clearly(tmp_path):
    with pytest.raises(casefile.CaseFileError, match="not a valid safetensors"):
        casefile.from_bytes(b"garbage")
    cf = casefile.CaseFile({"format": 999, "args": []}, {"in/x": torch.ones(1)})
    with pytest.raises(casefile.CaseFileError, match="engine format 999"):
        casefile.from_bytes(cf.to_bytes())
    with pytest.raises(casefile.CaseFileError, match="cannot read"):
        casefile.read(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="unsupported type"):
        casefile.encode_args({"x": object()})
