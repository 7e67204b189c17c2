"""The yes/no questions a judge is asked for VBench's detector-based semantic dimensions, built from
a prompt's VBench auxiliary info (what `vdmbench vbench import` keeps under `params.vbench`).

VBench_full_info.json gives, per prompt, `auxiliary_info[dimension]`:

    object_class          {"object": "giraffe"}
    multiple_objects      {"object": "bird and cat"}                       (split at " and ", as VBench)
    color                 {"color": "red"}                                 (the object: the prompt without
                                                                            its article and colour word)
    spatial_relationship  {"spatial_relationship": {"object_a": "bicycle", "object_b": "car",
                                                     "relationship": "on the left of"}}
    scene                 {"scene": {"scene": "alley"}}
    human_action          none: the prompt is "A person is <action>" (VBench takes the action from
                          the file name, after "person is ")

The wording of each dimension's questions is data: template `vbench_<dimension>` (its `questions`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vdmbench.core.errors import MetricInputError
from vdmbench.judges.templates import Template, load_template

DIMENSIONS = ("object_class", "multiple_objects", "color", "spatial_relationship", "scene", "human_action")

_ARTICLE = re.compile(r"^\s*(a|an|the)\s+", re.IGNORECASE)
_PERSON_IS = re.compile(r"^\s*an?\s+person\s+is\s+(.+?)[\s.]*$", re.IGNORECASE)


def template_of(dimension: str) -> Template:
    return load_template(f"vbench_{dimension}")


def vbench_info(params: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The prompt's VBench auxiliary info ({} when it has none)."""
    aux = params.get("vbench") if isinstance(params, Mapping) else None
    return aux if isinstance(aux, Mapping) else {}


def _text(value: Any, what: str, prompt: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MetricInputError(f"VBench auxiliary info of {prompt!r}: {what} must be a non-empty text, got {value!r} "
                               "(re-import the prompts with `vdmbench vbench import`)")
    return value.strip()


def _unnest(entry: Any, key: str) -> Any:
    """VBench nests some entries once more under the same key ({"scene": {"scene": "alley"}})."""
    while isinstance(entry, Mapping) and key in entry:
        entry = entry[key]
    return entry


def color_object(prompt: str, color: str) -> str:
    """The object of a colour prompt: the prompt without its article and its colour word
    ("an orange car", "orange" -> "car"), as VBench's color.py takes it (word-wise here)."""
    words = _ARTICLE.sub("", prompt).split()
    rest = [w for w in words if w.lower() != color.lower()]
    return " ".join(rest).strip(" .,")


def person_action(prompt: str) -> str | None:
    """The action of a human_action prompt "A person is riding a bike" -> "riding a bike"; None for
    a prompt of another form."""
    found = _PERSON_IS.match(prompt)
    return found.group(1) if found else None


def dimension_fields(dimension: str, prompt: str, params: Mapping[str, Any] | None) -> dict[str, str] | None:
    """The fields of `dimension`'s questions for this prompt, or None when the prompt does not
    belong to the dimension. Malformed auxiliary info is a MetricInputError."""
    aux = vbench_info(params)
    if dimension == "human_action":
        action = person_action(prompt)
        return {"action": action} if action else None
    if dimension not in aux:
        return None
    entry = aux[dimension]
    if dimension == "object_class":
        return {"object": _text(_unnest(entry, "object"), "object_class.object", prompt)}
    if dimension == "multiple_objects":
        objects = _text(_unnest(entry, "object"), "multiple_objects.object", prompt)
        parts = [p.strip() for p in objects.split(" and ")]
        if len(parts) != 2 or not all(parts):
            raise MetricInputError(f"VBench auxiliary info of {prompt!r}: multiple_objects.object must read "
                                   f"'A and B', got {objects!r}")
        return {"object_a": parts[0], "object_b": parts[1]}
    if dimension == "color":
        color = _text(_unnest(entry, "color"), "color.color", prompt)
        obj = color_object(prompt, color)
        if not obj:
            raise MetricInputError(f"color prompt {prompt!r} names no object besides the colour {color!r}")
        return {"color": color, "object": obj}
    if dimension == "spatial_relationship":
        rel = _unnest(entry, "spatial_relationship")
        if not isinstance(rel, Mapping):
            raise MetricInputError(f"VBench auxiliary info of {prompt!r}: spatial_relationship must map object_a, "
                                   f"object_b and relationship, got {rel!r}")
        return {k: _text(rel.get(k), f"spatial_relationship.{k}", prompt)
                for k in ("object_a", "relationship", "object_b")}
    if dimension == "scene":
        return {"scene": _text(_unnest(entry, "scene"), "scene.scene", prompt)}
    raise KeyError(f"{dimension!r} is not one of the judge's VBench dimensions {DIMENSIONS}")


def dimension_questions(prompt: str, params: Mapping[str, Any] | None,
                        templates: Mapping[str, Template] | None = None,
                        dimensions: tuple[str, ...] = DIMENSIONS) -> dict[str, list[str]]:
    """{dimension: its questions} for every dimension of `dimensions` this prompt belongs to;
    `templates` ({dimension: template}, loaded when not given) word them."""
    out = {}
    for d in dimensions:
        fields = dimension_fields(d, prompt, params)
        if fields is not None:
            template = templates[d] if templates is not None else template_of(d)
            out[d] = template.questions_for(**fields)
    return out
