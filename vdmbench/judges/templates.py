"""Prompt templates as data: YAML files under templates/, each with a name and a version.

A template holds a system message, the user message and a stricter user message sent once when
the first answer cannot be read. Placeholders are `str.format` fields ({question}, {n_frames},
...). A question template (the judge's VBench dimensions) also holds `questions`: the wording of
its yes/no questions, with fields of the prompt's structured info ({object}, {color}, ...). The version is part of every cache key, so editing a template without bumping it is the one
way to get stale answers: `Template.digest` (a hash of the texts) is recorded next to it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vdmbench.config.schema import read_yaml_file
from vdmbench.core.errors import ConfigError

TEMPLATE_DIR = Path(__file__).with_name("templates")


@dataclass(frozen=True)
class Template:
    name: str
    version: int
    system: str
    user: str
    strict: str
    questions: tuple[str, ...] = ()  # question wordings with placeholders (question templates only)

    @property
    def id(self) -> str:
        return f"{self.name}-v{self.version}"

    @property
    def digest(self) -> str:
        texts = [self.system, self.user, self.strict] + ([list(self.questions)] if self.questions else [])
        return hashlib.sha256(json.dumps(texts).encode()).hexdigest()[:16]

    def questions_for(self, **fields: Any) -> list[str]:
        """The template's questions with the fields filled in."""
        try:
            return [q.format(**fields) for q in self.questions]
        except (KeyError, IndexError) as e:
            raise ConfigError(f"judge template {self.id}: question placeholder {e} has no value; "
                              f"it is given {sorted(fields)}") from None

    def render(self, strict: bool = False, **fields: Any) -> tuple[str, str]:
        """(system, user) with the fields filled in."""
        try:
            return self.system.format(**fields), (self.strict if strict else self.user).format(**fields)
        except (KeyError, IndexError) as e:
            raise ConfigError(f"judge template {self.id}: placeholder {e} has no value; "
                              f"it is given {sorted(fields)}") from None


def load_template(name_or_path: str | Path) -> Template:
    """A shipped template by name (`yes_no`, `pairwise`, `decompose`) or a YAML file of one."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = TEMPLATE_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in TEMPLATE_DIR.glob("*.yaml"))
        raise ConfigError(f"unknown judge template {str(name_or_path)!r}; shipped: {', '.join(known)} "
                          "(or give the path of a YAML file)")
    data = read_yaml_file(path)
    need = ("name", "version", "system", "user", "strict")
    if not isinstance(data, dict) or any(k not in data for k in need):
        raise ConfigError(f"{path}: a judge template needs the keys {', '.join(need)}")
    if not isinstance(data["version"], int) or isinstance(data["version"], bool):
        raise ConfigError(f"{path}: 'version' must be an integer, got {data['version']!r}")
    questions = data.get("questions", [])
    if not isinstance(questions, list) or not all(isinstance(q, str) and q.strip() for q in questions):
        raise ConfigError(f"{path}: 'questions' must be a list of non-empty question texts")
    return Template(str(data["name"]), int(data["version"]), str(data["system"]), str(data["user"]),
                    str(data["strict"]), tuple(q.strip() for q in questions))
