"""Compressor names and pipelines: parsing, settings, order rules — no model needed."""

from __future__ import annotations

import pytest

from pytest_llmeff.compress import COMPRESSORS, CompressError, parse_pipeline
from pytest_llmeff.compress.bnb import BitsAndBytes
from pytest_llmeff.registry import UnknownNameError


def test_registered_basics():
    assert {"base", "fp16", "bf16", "int8", "nf4", "fp4"} <= set(COMPRESSORS.names())


def test_settings_reach_the_config():
    p = parse_pipeline("nf4(double_quant=true, compute_dtype=bfloat16)")
    (step,) = p.steps
    assert isinstance(step, BitsAndBytes)
    assert (step.bits, step.quant_type, step.double_quant, step.compute_dtype) == (4, "nf4", True, "bfloat16")
    assert p.id == "nf4(double_quant=true,compute_dtype=bfloat16)"


def test_unknown_compressor_suggests_the_closest():
    with pytest.raises(UnknownNameError, match="unknown compressor 'nf5' — did you mean 'nf4'"):
        parse_pipeline("nf5")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nf4(bits=3)", "has no setting bits"),
        ("int8(threshold=-1)", "threshold must be > 0"),
        ("nf4(compute_dtype=float8)", "compute_dtype must be one of"),
        ("nf4(double_quant)", "needs the form key=value"),
        ("int8+nf4", "two quantize steps"),
        ("fp16+bf16", "two cast steps"),
        ("base+nf4", "cannot be chained"),
        ("nf4+fp16", "cannot follow 'nf4'"),
        ("nf4++int8", "empty step"),
        ("", "empty compressor pipeline"),
    ],
)
def test_bad_pipelines_are_refused_with_the_reason(text, message):
    with pytest.raises(CompressError, match=message):
        parse_pipeline(text)


def test_reorder_when_allowed():
    p = parse_pipeline("nf4+bf16", allow_reorder=True)
    assert p.id == "bf16+nf4" and p.reordered_from == "nf4+bf16"
