"""How a case's marker is read: budgets keyed by pipeline reach their case however the key is
written, and a misspelt keyword or an unknown compressor is one usage error at collection."""

from __future__ import annotations

import pytest

from pytest_llmeff.cases import budgets_for
from pytest_llmeff.compress import parse_pipeline

# In-process pytest runs restore sys.modules afterwards; torch must already be loaded so it is kept
# (a C extension cannot be imported twice into one process).
pytest.importorskip("torch")


def _canonical(key: str) -> str:
    return parse_pipeline(key, allow_reorder=True).id


def test_budgets_keyed_by_a_reordered_or_spaced_pipeline_reach_their_case():
    spec = {"*": ["perplexity:+5%"], "nf4+kd": ["perplexity:+40%"], "kd + int8": ["time:-10%"]}
    reordered = budgets_for(spec, "kd+nf4", _canonical)
    assert [b.text for b in reordered] == ["perplexity:+40%"]  # the case's own replaced "*" on perplexity
    assert [b.text for b in budgets_for(spec, "kd+int8", _canonical)] == ["perplexity:+5%", "time:-10%"]
    assert [b.text for b in budgets_for(spec, "nf4", _canonical)] == ["perplexity:+5%"]


MARKED = '''
import pytest

@pytest.mark.llmeff(compressors=["base"], {keyword}=["perplexity:+5%"])
def test_case(llmeff, compressor):
    llmeff.run(compressor)
'''


def test_a_misspelt_marker_keyword_is_a_usage_error(pytester: pytest.Pytester):
    pytester.makepyfile(test_suite=MARKED.format(keyword="budget"))
    result = pytester.runpytest_inprocess("--llmeff", "--collect-only", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown @pytest.mark.llmeff keyword 'budget'*did you mean 'budgets'*"])


def test_an_unknown_compressor_is_one_usage_error_at_collection(pytester: pytest.Pytester):
    bad = '["base", "nf5", "nf4+ah80", "int8+nf4"]'
    pytester.makepyfile(test_suite=MARKED.format(keyword="budgets").replace('["base"]', bad))
    result = pytester.runpytest_inprocess("--llmeff", "--collect-only", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown compressor 'nf5' — did you mean 'nf4'*",
                                 "*'ah80' (structural) cannot follow 'nf4' (quantize)*",
                                 "*two quantize steps (int8, nf4)*"])
    assert "Traceback" not in result.stderr.str()
