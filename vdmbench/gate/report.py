"""The gate's outputs: a terminal table, Markdown (for pull requests and $GITHUB_STEP_SUMMARY),
JUnit XML (one test case per metric, for CI test tabs) and JSON (everything, for tools)."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from vdmbench.core import atomic
from vdmbench.core.formatting import format_number, format_p, make_console
from vdmbench.gate.compare import GateResult, MetricResult

_ICON = {"pass": "✅", "regression": "❌", "improvement": "🚀", "inconclusive": "⚠️"}
_STYLE = {"pass": "green", "regression": "bold red", "improvement": "cyan", "inconclusive": "yellow"}


def _ci(m: MetricResult) -> str:
    return "-" if m.ci_low is None else f"[{format_number(m.ci_low)}, {format_number(m.ci_high)}]"


def _rel(m: MetricResult) -> str:
    return "-" if m.rel_change is None else f"{100 * m.rel_change:+.1f}%"


def _tol(m: MetricResult) -> str:
    return f"±{format_number(m.tolerance)}" if m.tolerance else "0"


def _headline(result: GateResult, failed: bool) -> str:
    c = result.counts()
    parts = [f"{n} {v}" for v, n in c.items() if n]
    return f"{'FAIL' if failed else 'PASS'}: " + ", ".join(parts)


def _columns(m: MetricResult) -> list[str]:
    arrow = "↑" if m.higher_is_better else "↓"
    return [f"{m.metric} {arrow}", format_number(m.baseline), format_number(m.candidate), f"{format_number(m.delta)} ({_rel(m)})", _ci(m),
            format_p(m.p_value), format_number(m.effect_size, 2), _tol(m), str(m.n)]


HEADERS = ["metric", "baseline", "candidate", "Δ (rel)", "CI of Δ", "p (regr., adj.)", "effect d", "tolerance", "n"]


def print_table(result: GateResult, failed: bool) -> None:
    from rich.table import Table


    console = make_console()
    b, c = result.baseline, result.candidate
    table = Table("verdict", *HEADERS, "note",
                  title=f"vdmbench gate — {b.get('suite')}: {c.get('model')} ({c.get('run_id')}) "
                        f"vs {b.get('model')} ({b.get('run_id')})")
    for m in result.metrics:
        table.add_row(f"[{_STYLE[m.verdict]}]{m.verdict}[/]", *_columns(m), m.reason)
    console.print(table)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    if result.not_gated:
        console.print(f"not gated by policy {result.policy['name']}: {', '.join(result.not_gated)}")
    style = "bold red" if failed else "bold green"
    console.print(f"[{style}]{_headline(result, failed)}[/] (policy {result.policy['name']}, "
                  f"alpha {result.policy['alpha']}, {result.policy['correction']} across {len(result.metrics)} metrics)")


def to_markdown(result: GateResult, failed: bool) -> str:
    b, c, p = result.baseline, result.candidate, result.policy
    icon = "❌" if failed else "✅"
    lines = [
        f"### {icon} vdmbench gate: {_headline(result, failed)}",
        "",
        f"Suite **{b.get('suite')}** (hash `{b.get('suite_hash')}`) · candidate **{c.get('model')}** "
        f"(`{c.get('run_id')}`) vs baseline **{b.get('model')}** (`{b.get('run_id')}`)",
        "",
        "| | " + " | ".join(HEADERS) + " | note |",
        "|---|" + "---|" * (len(HEADERS) + 1),
    ]
    for m in result.metrics:
        cells = [f"{_ICON[m.verdict]} {m.verdict}", *_columns(m), m.reason]
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    lines += [
        "",
        f"Policy `{p['name']}`: alpha {p['alpha']} with {p['correction']} correction across metrics; "
        f"{p['confidence']:.0%} intervals from {p['n_boot']} bootstrap resamples ({p['resample']}); "
        f"fails on: {', '.join(p['fail_on'])}. ↑/↓: higher/lower is better; Δ = candidate − baseline.",
    ]
    if result.not_gated:
        lines += ["", f"Not gated: {', '.join(result.not_gated)}"]
    for w in result.warnings:
        lines += ["", f"> ⚠️ {w}"]
    return "\n".join(lines) + "\n"


def to_junit(result: GateResult, failed: bool) -> str:
    """JUnit XML: a regression is a <failure>, an inconclusive verdict a <skipped> with its reason."""
    c = result.counts()
    suite = ET.Element("testsuite", {
        "name": f"vdmbench gate {result.baseline.get('suite')}", "tests": str(len(result.metrics)),
        "failures": str(c["regression"]), "errors": "0", "skipped": str(c["inconclusive"]),
    })
    props = ET.SubElement(suite, "properties")
    for key, value in (("baseline", result.baseline.get("run_id")), ("candidate", result.candidate.get("run_id")),
                       ("suite_hash", result.baseline.get("suite_hash")), ("policy", result.policy["name"]),
                       ("verdict", result.verdict)):
        ET.SubElement(props, "property", {"name": key, "value": str(value)})
    for m in result.metrics:
        case = ET.SubElement(suite, "testcase", {"classname": f"vdmbench.cli.gate.{result.baseline.get('suite')}",
                                                 "name": m.metric, "time": "0"})
        text = (f"{m.metric}: baseline {format_number(m.baseline)}, candidate {format_number(m.candidate)}, delta {format_number(m.delta)} "
                f"({_rel(m)}), CI {_ci(m)}, p {format_p(m.p_value)}, tolerance {_tol(m)}, n {m.n}"
                + (f"; {m.reason}" if m.reason else ""))
        if m.verdict == "regression":
            ET.SubElement(case, "failure", {"message": f"regression: {text}", "type": "regression"}).text = text
        elif m.verdict == "inconclusive":
            ET.SubElement(case, "skipped", {"message": f"inconclusive: {m.reason or text}"})
        ET.SubElement(case, "system-out").text = f"{m.verdict}: {text}"
    root = ET.Element("testsuites", {"name": "vdmbench gate", "tests": suite.get("tests", "0"),
                                     "failures": suite.get("failures", "0"), "errors": "0"})
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def to_json(result: GateResult, failed: bool, exit_code: int) -> str:
    doc = {**result.to_dict(), "failed": failed, "exit_code": exit_code}
    return json.dumps(doc, indent=2, default=str, allow_nan=False) + "\n"


def write_text(path: str | Path, text: str) -> None:
    atomic.write_text(path, text)


def append_step_summary(markdown: str) -> Path | None:
    """Append to GitHub Actions' job summary file when the job provides one."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    with open(target, "a", encoding="utf-8") as f:
        f.write(markdown + "\n")
    return Path(target)
