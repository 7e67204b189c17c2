"""Large prompt lists kept out of Hydra's composition, and put back after it.

OmegaConf wraps every value of a config in a node object: a suite of 10,000 prompts costs about
20 s per composition on a 2-core machine, and `vdmbench run` composes twice (Hydra's get_mode,
then the job). So a suite file with many prompts reaches Hydra as a light copy, written to a
temporary search-path folder, in which the prompt list is one placeholder string; the runner
puts the list back after composition (`HeldPrompts.restore`). Nothing else of the file changes.

Held back only where that is invisible: not when the command line touches `suite.prompts`, not for
files that Hydra would change before use (interpolations, a defaults list, a @package line), not
for `--cfg`/`--info` (they print the composed config, prompts included). The placeholder names the
file, so Hydra's own record of the job (.hydra/config.yaml) says where the prompts came from.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vdmbench.config.schema import dump_yaml_as_hydra

# Below this, composition costs well under a second and Hydra's record keeps the whole suite.
MIN_PROMPTS = 256


@dataclass
class HeldPrompts:
    """Prompt lists by placeholder, and the folder holding the light suite files."""

    folder: Path
    lists: dict[str, list[Any]] = field(default_factory=dict)

    def hold(self, name: str, path: Path, data: Any) -> bool:
        """Write the light copy of suite file `path` (content `data`, as Hydra reads it) as
        suites/<name>.yaml; False where holding back would be visible (see the module doc)."""
        if not isinstance(data, dict) or "defaults" in data:
            return False
        prompts = data.get("prompts")
        if not isinstance(prompts, list) or len(prompts) < MIN_PROMPTS:
            return False
        text = path.read_text(encoding="utf-8", errors="replace")
        if "${" in text or "@package" in text:
            return False
        placeholder = f"<{len(prompts)} prompts of {path}, held back from Hydra and restored after composition>"
        light = {k: (placeholder if k == "prompts" else v) for k, v in data.items()}
        target = self.folder / "suites" / f"{name}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dump_yaml_as_hydra(light), encoding="utf-8")
        self.lists[placeholder] = prompts
        return True

    @property
    def active(self) -> bool:
        return bool(self.lists)

    def restore(self, suite: dict[str, Any]) -> dict[str, Any]:
        """The composed suite with its prompt list back in place (same key order)."""
        prompts = suite.get("prompts")
        if isinstance(prompts, str) and prompts in self.lists:
            return {k: (self.lists[prompts] if k == "prompts" else v) for k, v in suite.items()}
        return suite


@contextlib.contextmanager
def held_prompts() -> Iterator[HeldPrompts]:
    """A HeldPrompts whose folder lives as long as the command."""
    with tempfile.TemporaryDirectory(prefix="vdmbench-suites-") as folder:
        yield HeldPrompts(Path(folder))
