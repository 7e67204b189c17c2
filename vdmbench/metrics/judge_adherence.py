"""Prompt adherence judged by a VLM: the prompt decomposed into atomic yes/no questions (objects,
counts, colors, spatial relations, actions, camera motion, style; TIFA / DSG style), each asked of
the clip's frames.

Per clip, over the questions with a readable answer:
    judge_adherence        = fraction answered "Yes"
    judge_adherence_p_yes  = mean P("Yes") of the first answer token (VQAScore); a question whose
                             reply carries no logprobs contributes its 0/1 answer instead, and
                             describe() says how many did
    judge_adherence_answered = fraction of the questions with a readable answer
A question whose call failed (retries spent) fails the clip's scoring, so a rerun asks it again;
a reply that stays unreadable after the stricter retry is recorded as failed and left out.

Where a prompt's questions come from, first found wins (the notes say which):
    prompt_params  the prompt's own `params.questions: [...]` in the suite YAML (strings or
                   {category, question})
    given          the `questions` option / `questions_file` (prompt text -> list)
    vbench         the prompt's VBench auxiliary info (`params.vbench`, what `vdmbench vbench import`
                   keeps): object_class, multiple_objects, color, spatial_relationship and scene
                   give their judge_vbench_semantic questions (human_action is not used here: the
                   "A person is ..." form says nothing about the rest of a longer prompt)
    generated      decomposed once by the judge and kept in the question bank

Options: `judge` (the judge mapping, docs/judge.md), `questions` (prompt text -> list) and/or
`questions_file` (YAML/JSON of the same), `question_bank` (where generated questions are stored;
default <cache>/judge/questions.json). Per-question answers of the last batch: `sample_notes()`.

`judge_vqascore` (same module): VQAScore proper, the whole prompt as one question.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from vdmbench.core.errors import ConfigError
from vdmbench.judges import Judge, JudgeConfig, JudgeError, build_judge
from vdmbench.judges.questions import Question, QuestionBank, normalize, read_given
from vdmbench.judges.templates import load_template
from vdmbench.judges.vbench_questions import dimension_questions, template_of
from vdmbench.metrics.base import ClipBatch, MetricContext, Output, PerSampleMetric


def judge_cache_dir(context: MetricContext, config: JudgeConfig) -> Path | None:
    """Explicit `cache_dir` in the judge mapping, else <the run's cache folder>/judge."""
    if config.cache_dir:
        return Path(config.cache_dir)
    return Path(context.cache_dir) / "judge" if context.cache_dir is not None else None


def parse_judge_option(judge: Any, metric: str) -> JudgeConfig:
    if judge is None:
        raise ConfigError(f"metric {metric!r} needs a judge: add judge: {{backend: openai, base_url: ..., "
                          "model: ...}} to its options (docs/judge.md)")
    return JudgeConfig.parse(judge, f"metric {metric!r}: judge")


class JudgedMetric(PerSampleMetric):
    """What the judge metrics share: the judge built on first use from the `judge` option (so a
    fully cached rerun of an in-process model never loads it), its cache folder, the notes of the
    last batch, and a description that says how the answers were made."""

    judge_config: JudgeConfig
    cache_dir: Path | None
    _judge: Judge | None = None
    _notes: list[dict[str, Any]]

    def _use_judge(self, judge: Any) -> None:
        self.judge_config = parse_judge_option(judge, self.name)
        self.cache_dir = judge_cache_dir(self.context, self.judge_config)
        self._judge = None
        self._notes = []

    @property
    def judge(self) -> Judge:
        if self._judge is None:  # a copy of the metric builds its own
            config = self.judge_config
            if config.backend == "transformers" and config.device is None:  # an in-process model: the run's device
                config = config.model_copy(update={"device": self.context.device})
            self._judge = build_judge(config, self.cache_dir)
        return self._judge

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_judge"] = None  # locks and connections do not travel
        return state

    def sample_notes(self, batch: ClipBatch) -> list[dict[str, Any]]:
        """Per clip of the last `sample_values` batch: what the judge was asked and answered."""
        return list(self._notes)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), **(self._judge.describe() if self._judge else {"judge": self.judge_config.public()})}


# The VBench dimensions whose auxiliary info gives judge_adherence its questions, with their category.
VBENCH_CATEGORY = {"object_class": "object", "multiple_objects": "object", "color": "color",
                   "spatial_relationship": "spatial", "scene": "scene"}


class JudgeAdherence(JudgedMetric):
    """Prompt adherence: the prompt's atomic yes/no questions asked of the clip by a VLM judge."""

    name = "judge_adherence"
    inputs = frozenset({"prompts"})
    outputs = (
        Output("judge_adherence", higher_is_better=True, range=(0.0, 1.0),
               description="fraction of the prompt's yes/no questions the VLM judge answered Yes"),
        Output("judge_adherence_p_yes", higher_is_better=True, range=(0.0, 1.0),
               description="mean P('Yes') of the judge over the prompt's questions (VQAScore-style)"),
        Output("judge_adherence_answered", higher_is_better=True, range=(0.0, 1.0),
               description="fraction of the questions the judge gave a readable yes/no answer to"),
    )

    def __init__(self, context: MetricContext | None = None, judge: dict[str, Any] | None = None,
                 questions: dict[str, list[Any]] | None = None, questions_file: str | None = None,
                 question_bank: str | None = None, **kwargs: Any) -> None:
        super().__init__(context, **kwargs)
        self._use_judge(judge)
        self.given = read_given(questions, questions_file)
        bank_path = Path(question_bank) if question_bank else (self.cache_dir / "questions.json" if self.cache_dir else None)
        self.bank = QuestionBank(bank_path, load_template("decompose"))
        self.vbench_templates = {d: template_of(d) for d in VBENCH_CATEGORY}
        self._with_logprobs = 0
        self._answered = 0

    def questions_for(self, prompt: str, params: Mapping[str, Any] | None = None) -> tuple[list[Question], str]:
        """The prompt's questions and where they came from (prompt_params | given | vbench |
        generated; see the module docstring)."""
        found = self.structured_questions(prompt, params)
        if found is not None:
            return found
        stored = self.bank.get(prompt)
        if stored is not None:
            return stored, "generated"
        made_by = f"{self.judge_config.model}@{self.judge_config.revision or 'unknown revision'}"
        return self.bank.get_or_make(prompt, self.judge.decompose, made_by), "generated"

    def structured_questions(self, prompt: str, params: Mapping[str, Any] | None) -> tuple[list[Question], str] | None:
        """The questions the suite gives (its prompt's params, the questions option, VBench's
        auxiliary info), without asking the judge; None when it gives none."""
        if isinstance(params, Mapping) and params.get("questions") is not None:
            return normalize(params["questions"], f"params.questions of prompt {prompt[:60]!r}"), "prompt_params"
        if prompt in self.given:
            return self.given[prompt], "given"
        from_vbench = dimension_questions(prompt, params, self.vbench_templates, tuple(VBENCH_CATEGORY))
        if from_vbench:
            return [{"category": VBENCH_CATEGORY[d], "question": q} for d, qs in from_vbench.items() for q in qs], "vbench"
        return None

    def sample_values(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        videos = self.check_batch(batch)
        params = list(batch.prompt_params or [])
        params = params if len(params) == len(batch) else [{}] * len(batch)
        given = [self.structured_questions(prompt, p) for prompt, p in zip(batch.prompts, params)]
        # The distinct prompts without given questions at once (a first run decomposes them).
        distinct = list(dict.fromkeys(prompt for prompt, g in zip(batch.prompts, given) if g is None))
        made = dict(zip(distinct, self.judge.parallel(self.questions_for, distinct)))
        per_clip = [g if g is not None else made[prompt] for prompt, g in zip(batch.prompts, given)]
        answers = self.judge.ask_batch([(videos[i], [q["question"] for q in qs]) for i, (qs, _) in enumerate(per_clip)])
        errors = [a for clip in answers for a in clip if a.status == "error"]
        if errors:
            raise JudgeError(f"judge_adherence: {len(errors)} judge call(s) failed ({errors[0].error}); "
                             "the answers already given are cached, a rerun asks only these")
        frac, p_yes, answered, notes = [], [], [], []
        for (qs, source), clip in zip(per_clip, answers):
            ok = [a for a in clip if a.answer is not None]
            if not ok:
                raise JudgeError(f"judge_adherence: none of the {len(clip)} answers could be read as yes or no "
                                 f"(first reply: {clip[0].raw[:80]!r}); see the judge's cache for the raw replies")
            frac.append(sum(a.answer is True for a in ok) / len(ok))
            p_yes.append(sum(a.p_yes if a.p_yes is not None else float(bool(a.answer)) for a in ok) / len(ok))
            answered.append(len(ok) / len(clip))
            self._with_logprobs += sum(a.p_yes is not None for a in ok)
            self._answered += len(ok)
            notes.append({"questions": source, "answers": [{**a.note(), "category": q["category"]}
                                                           for q, a in zip(qs, clip)]})
        self._notes = notes
        as_tensor = lambda xs: torch.tensor(xs, dtype=torch.float64)  # noqa: E731
        return {"judge_adherence": as_tensor(frac), "judge_adherence_p_yes": as_tensor(p_yes),
                "judge_adherence_answered": as_tensor(answered)}

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["p_yes_from_logprobs"] = f"{self._with_logprobs} of {self._answered} answers"
        d["question_bank"] = str(self.bank.path) if self.bank.path else None
        return d


class JudgeVQAScore(JudgedMetric):
    """VQAScore: the whole prompt as one question ('Does this figure show "<prompt>"? Please answer
    yes or no.', template `vqascore`), scored by P("Yes") of the first answer token; the 0/1
    answer where the server gives no logprobs. One call per clip."""

    name = "judge_vqascore"
    inputs = frozenset({"prompts"})
    outputs = (
        Output("judge_vqascore", higher_is_better=True, range=(0.0, 1.0),
               description="VQAScore: the judge's P('Yes') that the clip shows the whole prompt"),
    )

    def __init__(self, context: MetricContext | None = None, judge: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(context, **kwargs)
        self._use_judge(judge)

    def sample_values(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        videos = self.check_batch(batch)
        answers = self.judge.ask_batch([(videos[i], [p]) for i, p in enumerate(batch.prompts)], template="vqascore")
        scores, notes = [], []
        for [a] in answers:
            if a.status == "error":
                raise JudgeError(f"judge_vqascore: the judge call failed ({a.error}); a rerun asks it again")
            if a.answer is None:
                raise JudgeError(f"judge_vqascore: the reply could not be read as yes or no ({a.raw[:80]!r}), "
                                 "also after the stricter retry; recorded in the judge's cache")
            scores.append(a.p_yes if a.p_yes is not None else float(a.answer))
            notes.append({"answer": a.note()})
        self._notes = notes
        return {"judge_vqascore": torch.tensor(scores, dtype=torch.float64)}


METRICS = [JudgeAdherence, JudgeVQAScore]
