"""Prompt templates as data: YAML files under templates/, each with a name and a version.

A template holds a system message, the user message and a stricter user message sent once when
the first answer cannot be read. Placeholders are `str.format` fields ({question}, {n_frames},
...). The version is part of every cache key, so editing a template without bumping it is the one
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

    @property
    def id(self) -> str:
        return f"{self.name}-v{self.version}"

    @property
    def digest(self) -> str:
        text = json.dumps([self.system, self.user, self.strict])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

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
    return Template(str(data["name"]), int(data["version"]), str(data["system"]), str(data["user"]),
                    str(data["strict"]))
