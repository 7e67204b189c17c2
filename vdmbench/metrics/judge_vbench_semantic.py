"""VBench's detector-based semantic dimensions answered by a VLM judge instead of VBench's detectors:
object_class, multiple_objects, color, spatial_relationship, scene, human_action.

JUDGE-BASED: NOT COMPARABLE WITH VBENCH'S NUMBERS. VBench runs a detector (GRiT), a captioner
(Tag2Text) or a Kinetics classifier (UMT) per frame; here a VLM answers yes/no questions about the
clip's frames (template `vbench_<dimension>`, judges/vbench_questions.py builds them from the
prompt's VBench auxiliary info). The outputs are therefore named `judge_<dimension>`, never
`<dimension>`, so `vbench_scores` (VBench's Semantic and Total scores) never reads them.

Per clip and dimension its prompt belongs to, over the questions with a readable answer:
    judge_<dimension>        = fraction answered "Yes"
    judge_<dimension>_p_yes  = mean P("Yes") of the first answer token (the 0/1 answer where the
                               reply has no logprobs; describe() says how many had them)
A clip gets NaN for every dimension its prompt does not belong to (no value; scoring skips it), so
each run value is the mean over that dimension's clips. A prompt belongs to a dimension when its
`params.vbench` has that dimension's auxiliary info (what `vdmbench vbench import` keeps), and to
human_action when it reads "A person is <action>". A failed call fails the clip's scoring (a rerun
asks only it again); an answer unreadable after the stricter retry is left out, and a dimension
none of whose answers could be read fails the clip.

Options: `judge` (docs/judge.md), `dimensions` (a subset of the six; default all).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from vdmbench.core.errors import ConfigError
from vdmbench.judges import Answer, JudgeError
from vdmbench.judges.vbench_questions import DIMENSIONS, dimension_questions, template_of
from vdmbench.metrics.base import ClipBatch, MetricContext, Output
from vdmbench.metrics.judge_adherence import JudgedMetric

NOT_COMPARABLE = "judge-based, not comparable with VBench's detector-based numbers"

_WHAT = {
    "object_class": "the prompt's object is in the clip",
    "multiple_objects": "both of the prompt's objects are in the clip at the same time",
    "color": "the prompt's object has the prompt's colour",
    "spatial_relationship": "object_a stands in the prompt's spatial relationship to object_b",
    "scene": "the clip shows the prompt's scene",
    "human_action": "the person does the prompt's action",
}


def _outputs() -> tuple[Output, ...]:
    outs = []
    for d in DIMENSIONS:
        outs.append(Output(f"judge_{d}", higher_is_better=True, range=(0.0, 1.0),
                           description=f"VLM judge: fraction Yes to whether {_WHAT[d]} (VBench {d}'s question, "
                                       f"{NOT_COMPARABLE}); NaN for clips of other dimensions"))
        outs.append(Output(f"judge_{d}_p_yes", higher_is_better=True, range=(0.0, 1.0),
                           description=f"VLM judge: mean P('Yes') to whether {_WHAT[d]} ({NOT_COMPARABLE})"))
    return tuple(outs)


class JudgeVBenchSemantic(JudgedMetric):
    """VBench's six detector-based semantic dimensions, asked of a VLM judge (not comparable with VBench)."""

    name = "judge_vbench_semantic"
    inputs = frozenset({"prompts"})
    outputs = _outputs()

    def __init__(self, context: MetricContext | None = None, judge: dict[str, Any] | None = None,
                 dimensions: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(context, **kwargs)
        chosen = tuple(dimensions) if dimensions is not None else DIMENSIONS
        unknown = [d for d in chosen if d not in DIMENSIONS]
        if unknown or not chosen:
            raise ConfigError(f"judge_vbench_semantic: dimensions must be a non-empty list of {', '.join(DIMENSIONS)}; "
                              f"got {list(chosen)}")
        self.dimensions = tuple(d for d in DIMENSIONS if d in chosen)
        self.dimension_templates = {d: template_of(d) for d in self.dimensions}
        self._use_judge(judge)
        for out in self.outputs:  # clips of other dimensions are NaN: each output has its own count
            self.add_state(f"n_{out}", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self._with_logprobs = 0
        self._answered = 0

    @property
    def comparable(self) -> bool:
        return False  # with VBench's numbers: a judge answers, not VBench's detectors

    def questions(self, batch: ClipBatch) -> list[dict[str, list[str]]]:
        """Per clip: {dimension: questions} of the dimensions its prompt belongs to."""
        params = list(batch.prompt_params or [])
        if len(params) != len(batch):
            params = [{}] * len(batch)
        return [dimension_questions(p, q, self.dimension_templates, self.dimensions)
                for p, q in zip(batch.prompts, params)]

    def sample_values(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        videos = self.check_batch(batch)
        per_clip = self.questions(batch)
        values = {out.name: [math.nan] * len(batch) for out in self.outputs}
        notes: list[dict[str, Any]] = [{} for _ in range(len(batch))]
        for d in self.dimensions:
            clips = [i for i, qs in enumerate(per_clip) if d in qs]
            if not clips:
                continue
            answers = self.judge.ask_batch([(videos[i], per_clip[i][d]) for i in clips], template=f"vbench_{d}")
            for i, clip_answers in zip(clips, answers):
                frac, p_yes = self._score(d, batch.prompts[i], clip_answers)
                values[f"judge_{d}"][i], values[f"judge_{d}_p_yes"][i] = frac, p_yes
                notes[i][d] = [a.note() for a in clip_answers]
        self._notes = [{"dimensions": n} if n else {} for n in notes]
        return {k: torch.tensor(v, dtype=torch.float64) for k, v in values.items()}

    def _score(self, dimension: str, prompt: str, answers: list[Answer]) -> tuple[float, float]:
        failed = [a for a in answers if a.status == "error"]
        if failed:
            raise JudgeError(f"judge_vbench_semantic: {len(failed)} judge call(s) of {dimension} failed "
                             f"({failed[0].error}); the answers already given are cached, a rerun asks only these")
        ok = [a for a in answers if a.answer is not None]
        if not ok:
            raise JudgeError(f"judge_vbench_semantic: no answer to the {dimension} question(s) about {prompt[:60]!r} "
                             f"could be read as yes or no (first reply: {answers[0].raw[:80]!r})")
        self._with_logprobs += sum(a.p_yes is not None for a in ok)
        self._answered += len(ok)
        frac = sum(a.answer is True for a in ok) / len(ok)
        p_yes = sum(a.p_yes if a.p_yes is not None else float(bool(a.answer)) for a in ok) / len(ok)
        return frac, p_yes

    # NaN means "not this dimension's clip": each output is averaged over its own clips.
    def update(self, batch: ClipBatch, values: dict[str, torch.Tensor] | None = None) -> None:
        if values is None:
            values = self.sample_values(batch)
        for out in self.outputs:
            v = values[out].to(torch.float64)
            have = ~torch.isnan(v)
            setattr(self, f"sum_{out}", getattr(self, f"sum_{out}") + v[have].sum())
            setattr(self, f"n_{out}", getattr(self, f"n_{out}") + have.sum())
        self.count += len(batch)

    def compute(self) -> dict[str, torch.Tensor]:
        return {out.name: getattr(self, f"sum_{out}") / getattr(self, f"n_{out}") if getattr(self, f"n_{out}") > 0
                else torch.tensor(math.nan, dtype=torch.float64) for out in self.outputs}

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(label=NOT_COMPARABLE, comparable_with_vbench=False, dimensions=list(self.dimensions),
                 question_templates={t.id: t.digest for t in self.dimension_templates.values()},
                 p_yes_from_logprobs=f"{self._with_logprobs} of {self._answered} answers")
        return d


METRICS = [JudgeVBenchSemantic]
