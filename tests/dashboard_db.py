"""A results database filled by the real runner with toy callable models, for the dashboard tests."""

from __future__ import annotations

from pathlib import Path

from vdmbench.config.suite import Suite, parse_suite
from vdmbench.run.runner import Runner, RunOptions

APP = Path(__file__).resolve().parents[1] / "dashboards" / "app.py"

SUITE = {
    "name": "dash", "version": 1, "task": "t2v", "num_frames": 6, "height": 16, "width": 16, "fps": 8,
    "seeds": [0, 1], "metrics": ["flicker"],
    "prompts": [
        {"id": "a", "text": "a red circle moving right", "tags": ["color", "motion"]},
        {"id": "b", "text": "a blue square moving up", "tags": ["motion"]},
        {"id": "c", "text": "a green triangle moving left", "tags": ["color"]},
        {"id": "d", "text": "a square that will fail", "tags": ["motion"]},
    ],
}

# name -> generator in tests/fixtures/generators.py; toy-square runs twice (a history of two runs).
MODELS = [("toy-noise", "noise"), ("toy-square", "moving_square"), ("toy-flaky", "flaky"),
          ("toy-square", "moving_square")]


def suite() -> Suite:
    return parse_suite(SUITE, source="tests/dashboard_db.py")


def adapter(name: str, target: str) -> dict:
    return {"name": name, "adapter": "callable", "params": {"target": f"tests.fixtures.generators:{target}"}}


def fill(results_dir: Path, models=MODELS) -> dict[str, str]:
    """Run every model on the suite; returns model -> its latest run id."""
    out = {}
    for name, target in models:
        summary = Runner(suite(), adapter(name, target),
                         RunOptions(results_dir=results_dir, progress=False, workers=0)).run()
        out[name] = summary.run_id
    return out


def cut_down_suite() -> Suite:
    """The same suite name and version with overrides: one prompt, steps=3 (a quick try-out run)."""
    return parse_suite({**SUITE, "prompts": SUITE["prompts"][:1], "steps": 3}, source="tests/dashboard_db.py")


def fill_cut_down(results_dir: Path, name: str = "toy-square", target: str = "moving_square") -> str:
    """A cut-down run, newer than every full run: it must not replace the model's full run."""
    return Runner(cut_down_suite(), adapter(name, target),
                  RunOptions(results_dir=results_dir, progress=False, workers=0)).run().run_id
