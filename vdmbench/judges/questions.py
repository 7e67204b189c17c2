"""Where a prompt's yes/no questions come from, so that every model is asked the same ones.

1. Given: a mapping prompt text -> questions (a metric option, or a YAML/JSON file a suite ships);
   each question a string or {category, question}.
2. Generated: asked once of the judge's own backend (template `decompose`) and stored in a question
   bank, a JSON file keyed by the template's id and digest and then by the prompt text. A later run,
   of any model, reads the bank and asks nothing; the bank is written atomically after each new prompt.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Callable

from vdmbench.config.schema import read_yaml_file
from vdmbench.core import atomic
from vdmbench.core.errors import ConfigError
from vdmbench.judges.templates import Template

Question = dict[str, str]  # {"category": ..., "question": ...}


def normalize(items: Any, where: str) -> list[Question]:
    """A list of strings or {category, question} mappings; anything else is a ConfigError."""
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{where}: questions must be a non-empty list, got {items!r}")
    out = []
    for item in items:
        if isinstance(item, str) and item.strip():
            out.append({"category": "other", "question": item.strip()})
        elif isinstance(item, dict) and isinstance(item.get("question"), str) and item["question"].strip():
            out.append({"category": str(item.get("category") or "other"), "question": item["question"].strip()})
        else:
            raise ConfigError(f"{where}: each question must be a string or {{category, question}}, got {item!r}")
    return out


def read_given(mapping: dict[str, Any] | None, path: str | Path | None) -> dict[str, list[Question]]:
    """The given questions, from an option mapping and/or a file (the option wins for a prompt)."""
    given: dict[str, list[Question]] = {}
    if path is not None:
        p = Path(path)
        data = json.loads(p.read_text(encoding="utf-8")) if p.suffix == ".json" else read_yaml_file(p)
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: a questions file must map prompt text -> list of questions")
        given.update({str(k): normalize(v, f"{p}: prompt {k!r}") for k, v in data.items()})
    for k, v in (mapping or {}).items():
        given[str(k)] = normalize(v, f"questions for prompt {k!r}")
    return given


class QuestionBank:
    """Generated questions, stored per (template id + digest, prompt text)."""

    def __init__(self, path: Path | None, template: Template) -> None:
        self.path, self.template = path, template
        self._lock = threading.Lock()
        self._section = f"{template.id}:{template.digest}"
        self._data: dict[str, Any] = self._read()

    def _read(self) -> dict[str, Any]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"{self.path}: the question bank cannot be read ({e}); repair or delete it "
                              "(deleting it asks the judge for new questions)") from None
        return data if isinstance(data, dict) else {}

    def get(self, prompt: str) -> list[Question] | None:
        entry = self._data.get(self._section, {}).get(prompt)
        return list(entry["questions"]) if entry else None

    def get_or_make(self, prompt: str, make: Callable[[str], list[Question]], made_by: str) -> list[Question]:
        """The stored questions of a prompt, else `make(prompt)`'s, stored. Threads may make the
        questions of different prompts at once; the file is rewritten under a lock."""
        with self._lock:
            found = self.get(prompt)
        if found is not None:
            return found
        if self.path is None:
            raise ConfigError("judge_adherence: questions must be generated, but there is nowhere to store them; "
                              "give question_bank (a file path) or run with a cache folder")
        questions = normalize(make(prompt), f"questions generated for {prompt[:60]!r}")
        with self._lock:
            self._data.setdefault(self._section, {})[prompt] = {"questions": questions, "made_by": made_by}
            atomic.write_text(self.path, json.dumps(self._data, indent=1, sort_keys=True), fsync=True)
        return questions
