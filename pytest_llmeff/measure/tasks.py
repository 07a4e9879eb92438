"""Task scores through lm-eval, on the in-memory (compressed) model.

Standard tasks use the shot counts of the first compression study (arc_challenge 25-shot
acc_norm, hellaswag 10 acc_norm, mmlu 5 acc, truthfulqa_mc2 0, winogrande 5 acc) and ifeval
0-shot; they run wherever lm-eval can load their data and are skipped with the reason where it
cannot. The project also ships two small tasks built from its own corpus, which run offline through
the same lm-eval path (see :mod:`pytest_llmeff.measure.local_tasks`).

``--llmeff-tasks "arc_challenge, mmlu(fewshot=0), llmeff_docs_mc(limit=100)"`` selects them; the
values land in the record under the task name (the metric registry knows each one's direction and
chance level, which the opt score uses).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pytest_llmeff.registry import Registry, split_top_level


class TaskError(ValueError):
    """An unknown task or a setting the task cannot take."""


class TaskUnavailable(RuntimeError):
    """lm-eval cannot run the task here (its data cannot be loaded offline, lm-eval missing)."""


@dataclass(frozen=True)
class TaskSpec:
    """One lm-eval task as a record metric.

    Attributes:
        name: the metric name in records and budgets.
        lm_eval_task: lm-eval's task (or group) name.
        fewshot: shots.
        metric: lm-eval's result key (``acc``, ``acc_norm``, ``prompt_level_strict_acc`` …).
        max_fewshot: the most shots the task can take (None: lm-eval decides).
        limit: evaluate only the first N documents (quick runs); None: all.
        local: one of the project's own tasks (built from its corpus).
    """

    name: str
    lm_eval_task: str
    fewshot: int
    metric: str
    max_fewshot: int | None = None
    limit: int | None = None
    local: bool = False

    def __post_init__(self) -> None:
        if self.fewshot < 0:
            raise TaskError(f"{self.name}: fewshot must be ≥ 0, got {self.fewshot}")
        if self.max_fewshot is not None and self.fewshot > self.max_fewshot:
            raise TaskError(f"{self.name} takes at most {self.max_fewshot} shots; {self.fewshot} requested")
        if self.limit is not None and self.limit < 1:
            raise TaskError(f"{self.name}: limit must be ≥ 1, got {self.limit}")


def _task(default: TaskSpec) -> Any:
    def factory(fewshot: int = default.fewshot, limit: int = 0) -> TaskSpec:
        return replace(default, fewshot=int(fewshot), limit=int(limit) or None)

    return factory


TASKS: Registry[Any] = Registry("task", entry_point_group="pytest_llmeff.tasks")
for _spec in (
    TaskSpec("arc_challenge", "arc_challenge", 25, "acc_norm"),
    TaskSpec("arc_easy", "arc_easy", 25, "acc_norm"),
    TaskSpec("hellaswag", "hellaswag", 10, "acc_norm"),
    TaskSpec("mmlu", "mmlu", 5, "acc"),
    TaskSpec("truthfulqa_mc2", "truthfulqa_mc2", 0, "acc", max_fewshot=0),
    TaskSpec("winogrande", "winogrande", 5, "acc"),
    TaskSpec("ifeval", "ifeval", 0, "prompt_level_strict_acc", max_fewshot=0),
):
    TASKS.register(_spec.name, _task(_spec))


def docs_mc(fewshot: int = 0, limit: int = 0) -> TaskSpec:
    """The project's 4-way next-sentence task (see :mod:`pytest_llmeff.measure.local_tasks`)."""
    from pytest_llmeff.measure.local_tasks import MC_TRAIN

    return TaskSpec("llmeff_docs_mc", "llmeff_docs_mc", int(fewshot), "acc_norm", max_fewshot=MC_TRAIN,
                    limit=int(limit) or None, local=True)


def docs_order(fewshot: int = 0, limit: int = 0) -> TaskSpec:
    """The project's 4-way word-order task: the sentence as written against three with two
    neighbouring words swapped (see :mod:`pytest_llmeff.measure.local_tasks`)."""
    from pytest_llmeff.measure.local_tasks import ORDER_TRAIN

    return TaskSpec("llmeff_docs_order", "llmeff_docs_order", int(fewshot), "acc", max_fewshot=ORDER_TRAIN,
                    limit=int(limit) or None, local=True)


def docs_gen(fewshot: int = 0, limit: int = 0) -> TaskSpec:
    """The project's continue-a-sentence task, scored by ROUGE-L."""
    from pytest_llmeff.measure.local_tasks import GEN_TRAIN

    return TaskSpec("llmeff_docs_gen", "llmeff_docs_gen", int(fewshot), "rouge_l", max_fewshot=GEN_TRAIN,
                    limit=int(limit) or None, local=True)


TASKS.register("llmeff_docs_mc", docs_mc)
TASKS.register("llmeff_docs_order", docs_order)
TASKS.register("llmeff_docs_gen", docs_gen)


def parse_tasks(text: str) -> list[TaskSpec]:
    """``"arc_challenge, mmlu(fewshot=0)"`` → task specs (did-you-mean for unknown names)."""
    specs = []
    for part in (p.strip() for p in split_top_level(text, ",") if p.strip()):
        try:
            specs.append(TASKS.create(part))
        except TaskError:
            raise
        except (TypeError, ValueError) as exc:
            raise TaskError(str(exc)) from None
    return specs


def run_tasks(model: Any, tokenizer: Any, specs: list[TaskSpec], workdir: Path, *, batch_size: int = 8,
              seed: int = 0) -> dict[str, dict[str, Any]]:
    """Evaluate ``specs`` with lm-eval's HFLM around the in-memory model.

    Returns task name → ``{"value", "stderr", "metric", "fewshot", "limit", "version", "extra"}``
    (``version``: the task's version as lm-eval reports it, so that a redefined task is told apart).

    Raises:
        TaskUnavailable: lm-eval is missing or cannot load a task's data here.
    """
    try:
        from lm_eval import simple_evaluate
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError as exc:
        raise TaskUnavailable(f"lm-eval is not installed ({exc}); pip install lm-eval") from None
    from pytest_llmeff.measure.local_tasks import LOCAL_PREFIX, write_local_tasks

    include = write_local_tasks(workdir / "lmeval-tasks")
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    # Indexing lm-eval's own task YAMLs (~15,000) takes ~8 s on 2 cores, per manager: the project's
    # local tasks alone need none of them.
    local = all(spec.lm_eval_task.startswith(LOCAL_PREFIX) for spec in specs)
    manager = TaskManager(include_path=str(include), include_defaults=not local)
    out: dict[str, dict[str, Any]] = {}
    for spec in specs:
        try:
            result = simple_evaluate(
                model=lm, tasks=[spec.lm_eval_task], num_fewshot=spec.fewshot, limit=spec.limit,
                task_manager=manager, random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed,
                fewshot_random_seed=seed, log_samples=False, bootstrap_iters=100,
            )
        except Exception as exc:  # lm-eval raises many types for unreachable data; all mean "not here"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            where = "" if spec.local else " (its data comes from the Hugging Face hub: no network here?)"
            raise TaskUnavailable(f"lm-eval could not run {spec.lm_eval_task}{where}: "
                                  f"{type(exc).__name__}: {first}") from None
        row = result["results"][spec.lm_eval_task]
        key = f"{spec.metric},none"
        if key not in row:
            raise TaskUnavailable(f"{spec.lm_eval_task} reported no {spec.metric!r} (got {sorted(row)})")
        extra = {k.split(",")[0]: v for k, v in row.items()
                 if "," in k and "stderr" not in k and isinstance(v, (int, float)) and k != key}
        stderr = row.get(f"{spec.metric}_stderr,none")
        out[spec.name] = {"value": float(row[key]), "stderr": stderr if isinstance(stderr, float) else None,
                          "metric": spec.metric, "fewshot": spec.fewshot, "limit": spec.limit,
                          "version": result.get("versions", {}).get(spec.lm_eval_task), "extra": extra}
    return out
