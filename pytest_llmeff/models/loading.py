"""Resolve a model name (``embedded``, a local folder, a Hugging Face id) and load it.

Safety defaults: safetensors weights only (pickled ``.bin`` files can run code when loaded) and no
remote code, unless the user opts in with ``--llmeff-allow-pickle`` / ``--llmeff-trust-remote-code``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_llmeff.models.embedded import EMBEDDED_NAME, REFERENCE_DIR
from pytest_llmeff.registry import did_you_mean

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class ModelLoadError(ValueError):
    """A model that cannot be resolved or loaded; the message says why and what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """Where a model comes from. ``location`` is a folder path or a hub id."""

    name: str
    source: str  # "embedded" | "local" | "hub"
    location: str
    trust_remote_code: bool = False
    allow_pickle: bool = False

    def from_pretrained_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"trust_remote_code": self.trust_remote_code}
        if not self.allow_pickle:
            kwargs["use_safetensors"] = True
        return kwargs


def resolve_model(name: str, *, trust_remote_code: bool = False, allow_pickle: bool = False) -> ModelSpec:
    """Decide where ``name`` comes from, without importing torch.

    Raises:
        ModelLoadError: a path that does not exist or holds no loadable weights.
    """
    name = name.strip()
    if name == EMBEDDED_NAME:
        return ModelSpec(name, "embedded", str(REFERENCE_DIR))
    path = Path(name).expanduser()
    if path.is_dir():
        _check_local_folder(path, allow_pickle, trust_remote_code)
        return ModelSpec(name, "local", str(path.resolve()), trust_remote_code, allow_pickle)
    if path.exists():
        raise ModelLoadError(f"model {name!r} is a file; give the folder that holds config.json and the weights")
    if not _HUB_ID.match(name):  # './x', '/x', '~/x', 'a/b/c': a path, not an 'org/name' hub id
        siblings = []
        if path.parent.is_dir():
            siblings = [str(path.parent / p.name) for p in path.parent.iterdir() if p.is_dir()]
        hint = did_you_mean(name, siblings + [EMBEDDED_NAME])
        raise ModelLoadError(f"model folder {name!r} does not exist{hint}")
    return ModelSpec(name, "hub", name, trust_remote_code, allow_pickle)


def _check_local_folder(path: Path, allow_pickle: bool, trust_remote_code: bool = False) -> None:
    if not (path / "config.json").exists():
        raise ModelLoadError(f"model folder {path} has no config.json (is it a transformers model folder?)")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"model folder {path}: config.json cannot be read ({exc}); fix or replace it") from None
    if not isinstance(config, dict):
        raise ModelLoadError(f"model folder {path}: config.json is not a JSON object")
    if config.get("auto_map") and not trust_remote_code:
        # Refused now, not when the first case loads the model: its code would run on load.
        raise ModelLoadError(f"model folder {path} needs its own Python code to load (auto_map in config.json), "
                             "which runs when loaded; pass --llmeff-trust-remote-code if you trust it")
    if any(path.glob("*.safetensors")) or (path / "model.safetensors.index.json").exists():
        return
    pickled = sorted(p.name for p in path.glob("*.bin"))
    if pickled and not allow_pickle:
        raise ModelLoadError(
            f"model folder {path} has only pickled weights ({', '.join(pickled)}), which can run code when "
            "loaded; convert them to safetensors or pass --llmeff-allow-pickle if you trust them"
        )
    if not pickled:
        raise ModelLoadError(f"model folder {path} holds no weights (*.safetensors)")


@dataclass
class LoadedModel:
    """A loaded base model, its tokenizer, and how to load it again (compressors reload from it)."""

    spec: ModelSpec
    model: Any
    tokenizer: Any
    device: str
    dtype: str
    load_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def context_length(self) -> int:
        cfg = self.model.config
        for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
            value = getattr(cfg, attr, None)
            if isinstance(value, int):
                return value
        return 2048



_STRUCTURED: dict[type, type] = {}


def _structured_class(base: type) -> type:
    """``base`` with a constructor that first applies the head structure recorded in the config.

    transformers builds a model from its config before loading weights (also when it quantises
    on load); a config cannot express per-layer head counts, so the shapes are fixed here.
    """
    if base not in _STRUCTURED:
        from pytest_llmeff.compress.structure import rebuild

        def __init__(self: Any, config: Any, *args: Any, **kwargs: Any) -> None:
            base.__init__(self, config, *args, **kwargs)
            rebuild(self)

        _STRUCTURED[base] = type(f"Structured{base.__name__}", (base,), {"__init__": __init__})
    return _STRUCTURED[base]


def from_pretrained(location: str, **kwargs: Any) -> Any:
    """``AutoModelForCausalLM.from_pretrained`` that also loads models whose heads were pruned."""
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    from pytest_llmeff.compress.structure import STRUCTURE_KEY

    config = AutoConfig.from_pretrained(location, trust_remote_code=kwargs.get("trust_remote_code", False))
    if (getattr(config, STRUCTURE_KEY, None) or {}).get("heads"):
        cls = _structured_class(MODEL_FOR_CAUSAL_LM_MAPPING[type(config)])
        return cls.from_pretrained(location, config=config, **kwargs)
    return AutoModelForCausalLM.from_pretrained(location, **kwargs)


def load_model(spec: ModelSpec, device: str, dtype: str) -> LoadedModel:
    """Load model and tokenizer; offline / unknown hub ids become a :class:`ModelLoadError`."""
    import torch
    from transformers import AutoTokenizer

    kwargs = spec.from_pretrained_kwargs() | {"dtype": getattr(torch, dtype)}
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec.location, trust_remote_code=spec.trust_remote_code)
        model = from_pretrained(spec.location, **kwargs)
    except Exception as exc:  # transformers and safetensors raise many types for a model they cannot load
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "trust_remote_code" in str(exc) and not spec.trust_remote_code:
            raise ModelLoadError(f"model {spec.name!r} needs its own Python code to load, which runs when loaded; "
                                 "pass --llmeff-trust-remote-code if you trust it") from None
        where = "the Hugging Face hub (is the network reachable?)" if spec.source == "hub" else spec.location
        hint = did_you_mean(spec.name, [EMBEDDED_NAME])
        raise ModelLoadError(f"could not load model {spec.name!r} from {where}{hint}: {first_line}") from None
    broken = next((name for name, p in model.named_parameters()
                   if p.is_floating_point() and not bool(torch.isfinite(p).all())), None)
    if broken is not None:  # every figure of every case would be NaN: say where, once
        raise ModelLoadError(f"model {spec.name!r} has non-finite weights (NaN or inf) in {broken}; "
                             "fix or re-export the checkpoint")
    model = model.to(device).eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(spec, model, tokenizer, device, dtype, kwargs)
