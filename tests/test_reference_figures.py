"""Every figure the tool prints, recomputed here by a plain reference computation.

Each reference is written out in the test (the loop its source publishes, a direct count, plain
arithmetic), never through the plugin's helpers, and runs on real models: the embedded reference
model or tiny randomly initialised GPT-2 models built from configs. Only the NVML counter is
simulated (a stepping counter), since the arithmetic around it is what is checked.
"""

from __future__ import annotations

import math
import time

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from pytest_llmeff.measure.costs import generation_values
from pytest_llmeff.measure.energy import EnergyMeter, EstimateMeter, NvmlMeter
from pytest_llmeff.measure.perplexity import perplexity, rolling_perplexity
from pytest_llmeff.measure.workloads import Generate


# --------------------------------------------------------------------------- perplexity protocols
def hf_sliding_window(model, ids: list[int], max_length: int, stride: int) -> tuple[float, int]:
    """The loop of Hugging Face's "Perplexity of fixed-length models" guide, with every scored
    token counted once (the guide subtracts one token per window from its count, although the
    shifted labels score all ``trg_len`` of them after the first window)."""
    enc = torch.tensor([ids])
    seq_len = enc.size(1)
    nll_sum, n_tokens, prev_end_loc = 0.0, 0, 0
    for begin_loc in range(0, seq_len, stride):
        end_loc = min(begin_loc + max_length, seq_len)
        trg_len = end_loc - prev_end_loc
        input_ids = enc[:, begin_loc:end_loc]
        target_ids = input_ids.clone()
        target_ids[:, :-trg_len] = -100
        with torch.no_grad():
            loss = model(input_ids, labels=target_ids).loss
        scored = int((target_ids[:, 1:] != -100).sum())
        nll_sum += float(loss) * scored
        n_tokens += scored
        prev_end_loc = end_loc
        if end_loc == seq_len:
            break
    return math.exp(nll_sum / n_tokens), n_tokens


def test_stride_matches_the_hf_sliding_window_loop(embedded, heldout_ids):
    ids = heldout_ids[: 256 * 4 + 77]  # a ragged tail: the last tokens must be scored too
    want, tokens = hf_sliding_window(embedded.model, ids, 256, 128)
    got = perplexity(embedded.model, ids, "stride-128")
    assert tokens == len(ids) - 1  # every token but the first, once
    assert got.tokens_scored == tokens
    assert got.value == pytest.approx(want, rel=1e-5)


def tiny_gpt2(n_positions: int) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=61, n_positions=n_positions, n_embd=16, n_layer=1, n_head=2,
                     resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)
    return GPT2LMHeadModel(cfg).eval()


def test_stride_window_is_capped_for_long_context_models():
    model = tiny_gpt2(4096)  # a long-context model: windows stay at 1024 tokens, as in the guide
    ids = torch.randint(0, 61, (2300,), generator=torch.Generator().manual_seed(3)).tolist()
    want, tokens = hf_sliding_window(model, ids, 1024, 512)
    got = perplexity(model, ids, "stride-512")
    assert (got.tokens_scored, got.windows, got.window) == (tokens, 4, 1024)
    assert got.value == pytest.approx(want, rel=1e-5)
    explicit = perplexity(model, ids, "stride-512/2048")  # an explicit window
    assert explicit.value == pytest.approx(hf_sliding_window(model, ids, 2048, 512)[0], rel=1e-5)


def test_nonoverlap_matches_the_gptq_evaluation_loop(embedded, heldout_ids):
    ids = heldout_ids[: 256 * 3 + 40]
    # GPTQ's datautils/llama_eval: nsamples = numel // seqlen windows, loss × seqlen each, tail dropped.
    testenc, seqlen = torch.tensor([ids]), 256
    nsamples = testenc.numel() // seqlen
    nlls = []
    with torch.no_grad():
        for i in range(nsamples):
            batch = testenc[:, i * seqlen:(i + 1) * seqlen]
            logits = embedded.model(batch).logits
            loss = torch.nn.CrossEntropyLoss()(logits[:, :-1, :].reshape(-1, logits.shape[-1]),
                                               batch[:, 1:].reshape(-1))
            nlls.append(loss.float() * seqlen)
    want = float(torch.exp(torch.stack(nlls).sum() / (nsamples * seqlen)))
    assert perplexity(embedded.model, ids, "nonoverlap-256").value == pytest.approx(want, rel=1e-5)


def test_rolling_matches_a_plain_loglikelihood_rolling_loop(embedded):
    from pytest_llmeff.models.datasets import load_text_data

    docs = list(load_text_data("embedded").documents[:3])
    tok, model, max_len = embedded.tokenizer, embedded.model, 256
    prefix = tok.eos_token_id if tok.bos_token_id is None else tok.bos_token_id
    total, scored = 0.0, 0
    for doc in docs:  # lm-eval loglikelihood_rolling, context_len=1: disjoint windows of max_len
        tokens = tok.encode(doc, add_special_tokens=False)
        first = min(max_len, len(tokens))
        pieces = [([prefix] + tokens[:first - 1], tokens[:first])]
        done = first
        while done < len(tokens):
            end = min(done + max_len, len(tokens))
            pieces.append((tokens[end - max_len - 1:end - 1], tokens[done:end]))
            done = end
        for inp, target in pieces:
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([inp])).logits[0].float(), dim=-1)
            rows = logp[len(inp) - len(target):]
            total += float(rows.gather(-1, torch.tensor(target).unsqueeze(-1)).sum())
            scored += len(target)
    words = sum(len(d.split()) for d in docs)  # re.split(r"\s+") counts the same on these documents
    got = rolling_perplexity(model, tok, docs, batch_size=3)
    assert got.tokens_scored == scored
    assert got.loglikelihood == pytest.approx(total, rel=1e-5)
    assert got.word_perplexity == pytest.approx(math.exp(-total / words), rel=1e-5)


# --------------------------------------------------------------------------- prefill and decode
def test_decode_speed_counts_the_decode_steps_only():
    model = tiny_gpt2(64)
    job = Generate(prompt=8, new_tokens=6, batch=2).build(model, list(range(40)), "cpu", 64)
    calls: list[int] = []
    # Every forward pass embeds its new tokens once: count them at the token embedding.
    hook = model.transformer.wte.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[1]))
    try:
        job.call()
    finally:
        hook.remove()
    # One prompt pass (8 tokens per row) gives the first new token; each later token is a 1-token step.
    assert calls == [8] + [1] * 5
    values = generation_values(job, seconds_per_call=0.05)
    decode, prefill = values["decode_tokens_per_s"], values["prefill_tokens_per_s"]
    assert decode.value * decode.detail["seconds"] == pytest.approx((len(calls) - 1) * 2)
    assert prefill.value * prefill.detail["seconds"] == pytest.approx(calls[0] * 2)
    assert decode.detail["seconds"] == pytest.approx(0.05 - prefill.detail["seconds"])


# --------------------------------------------------------------------------- energy arithmetic
class SteppingCounter:
    """NVML's total-energy counter as it behaves: millijoules, moving every ``step_s`` seconds.
    ``watts`` may change; the energy integrates it."""

    class NVMLError(Exception):
        pass

    def __init__(self, watts: float, step_s: float = 0.1) -> None:
        self.step_s, self.t0 = step_s, time.perf_counter()
        self._since, self._joules, self._watts = 0.0, 0.0, watts

    def set_watts(self, watts: float) -> None:
        now = time.perf_counter() - self.t0
        self._joules += self._watts * (now - self._since)
        self._since, self._watts = now, watts

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: object) -> int:  # noqa: N802 (NVML's name)
        step_t = int((time.perf_counter() - self.t0) / self.step_s) * self.step_s  # the last update
        joules = self._joules + self._watts * (step_t - self._since) if step_t >= self._since else self._joules
        return int(joules * 1000)


def nvml_meter(counter: SteppingCounter) -> NvmlMeter:
    meter = object.__new__(NvmlMeter)  # no GPU here: the counter source is swapped in
    meter._nvml, meter._handles, meter._indices, meter._start = counter, [None], [], []
    meter._synchronize = lambda: None
    return meter


def test_nvml_idle_power_is_the_counters_power():
    ram = EstimateMeter(("ram",))  # stopped after NVML: it must be given the same window length
    meter = EnergyMeter([nvml_meter(SteppingCounter(watts=100.0)), ram])
    time.sleep(0.05)  # mid-step
    idle = meter.idle_power(1.0)
    # The window spans whole counter steps: energy over them / their length is the power.
    assert idle["gpu"] == pytest.approx(100.0, rel=0.01)
    assert idle["ram"] == pytest.approx(ram._ram_w, rel=0.01)


def test_energy_per_call_and_the_idle_active_split():
    from pytest_llmeff.measure.costs import EnergySettings, energy_values

    counter = SteppingCounter(watts=50.0)
    meter = EnergyMeter([nvml_meter(counter)])
    watts_idle = meter.idle_power(1.0)["gpu"]
    counter.set_watts(80.0)  # the workload draws more than idle
    model, x = tiny_gpt2(64), torch.randint(0, 61, (1, 64))
    calls = 0
    with meter.measure() as window:
        started = time.perf_counter()
        while time.perf_counter() - started < 1.05:
            with torch.no_grad():
                model(x)
            calls += 1
    reading = window.reading
    values = energy_values([(reading, calls)], meter, EnergySettings(), 1.05 / calls, 64, 1)
    energy, idle, active = (values[k].value for k in ("energy", "energy.idle", "energy.active"))
    assert energy == pytest.approx(reading.joules / calls, rel=1e-9)  # window total / calls
    assert idle + active == pytest.approx(energy, rel=1e-9)
    # Idle: the idle power over the window's own length (its counter steps included), per call.
    assert idle == pytest.approx(watts_idle * reading.seconds / calls, rel=1e-9)
    assert values["energy_per_token"].value == pytest.approx(energy / 64, rel=1e-9)


# --------------------------------------------------------------------------- paired reference
def test_paired_reference_without_energy_drops_the_old_co2e(pytester, embedded):
    from pytest_llmeff.options import Options
    from pytest_llmeff.records import CaseRecord, Measurement
    from pytest_llmeff.session import Session

    config = pytester.parseconfig("--llmeff", "--llmeff-energy=none", "--llmeff-min-seconds=0.05",
                                  "--llmeff-workload=forward(batch=1, ctx=16)")
    session = Session(Options.from_config(config), progress=lambda line: None)
    session._base = embedded  # the model loaded once for the whole test run
    old = {"time": Measurement(0.01, "s", "old"), "energy": Measurement(0.5, "J", "old"),
           "energy_per_token": Measurement(0.03, "J", "old"), "co2e": Measurement(0.04, "g", "old", True)}
    reference = CaseRecord("base", "base", "embedded", "cpu", "float32", "forward-1x16", old)
    from pytest_llmeff.measure.costs import paired_costs

    # The base model timed again interleaved with a candidate (here: itself), without an energy meter.
    _, again = paired_costs(embedded.model, session.inputs(), session.spec(), session.meter(), None, embedded.model)
    paired = session.references._paired(reference, again.values)
    assert "energy" not in paired.values  # re-timed without an energy reading …
    assert "co2e" not in paired.values  # … so no carbon figure from the old energy either
    assert paired.values["time"].method != "old"
