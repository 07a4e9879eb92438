"""The gate-calibration suite's test-only compressor: ``inject(pct=…)`` makes the base model cost
``pct`` % more per forward call with real work (a matrix product after each forward), so time and
energy both rise while its outputs, and so its perplexity, stay those of the base model.

``LLMEFF_INJECT=0`` (set by ``gate_calibration.py`` while it records the baselines) turns the
extra work off, so the stored baseline is the unregressed case under the same case id.
"""

from __future__ import annotations

import copy
import os
import statistics
import time
from dataclasses import dataclass

from pytest_llmeff.compress import Candidate, Compressor
from pytest_llmeff.measure.threads import auto_threads, using


def _seconds(fn, repeats: int = 15) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@dataclass(frozen=True)
class Inject(Compressor):
    """Extra compute of ``pct`` % of one forward call, after every forward call."""

    pct: float = 10.0
    summary = "test only: extra real compute per forward call"

    def apply(self, candidate: Candidate, ctx) -> Candidate:
        import torch

        pct = 0.0 if os.environ.get("LLMEFF_INJECT") == "0" else self.pct
        model = candidate.model
        if pct <= 0:
            return Candidate(model, candidate.pristine, [*candidate.steps, self.id], list(candidate.notes))
        ids = torch.tensor(ctx.tokenizer(ctx.text().eval_text)["input_ids"][:256]).view(1, -1)
        a = torch.randn(128, 128)
        block = 200

        def products() -> None:
            for _ in range(block):
                a @ a

        # Sized at the thread count the case is timed with (compression itself runs on every core).
        with using(auto_threads()), torch.inference_mode():
            forward_s = _seconds(lambda: model(input_ids=ids, use_cache=False))
            step_s = _seconds(products) / block
        steps = max(1, round(pct / 100 * forward_s / step_s))

        slowed = copy.deepcopy(model)  # the base model itself stays as it is

        def extra_work(module, inputs, output):  # after every forward call: same outputs, more work
            for _ in range(steps):
                a @ a

        slowed.register_forward_hook(extra_work)
        notes = [*candidate.notes, f"test only: {steps} extra 128×128 matrix products per call (≈ +{pct:g} %)"]
        return Candidate(slowed, False, [*candidate.steps, self.id], notes)


def pytest_llmeff_register_compressors(registry):
    registry.register("inject", Inject)
