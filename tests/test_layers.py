"""The package's layers: a module imports only from its own layer or the ones below it.

Walks every import statement of the package (including imports inside functions; imports only
for type checking, under `if TYPE_CHECKING:`, are not runtime dependencies and are skipped).
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "vdmbench"

# Bottom to top; a layer may import from any layer at or below its own rank.
LAYERS = [
    ("core",),
    ("config",),
    ("store",),
    ("data", "reference"),
    ("features",),
    ("judges",),  # a metric uses a judge; a judge knows no metric, database, run or generator
    ("metrics",),
    ("adapters",),
    ("interop",),
    ("run",),
    ("gate",),
    ("dashboard",),
    ("cli",),
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "vdmbench" and parts[1] in RANK else None


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    skip: set[int] = set()
    for node in ast.walk(tree):  # `if TYPE_CHECKING:` blocks
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for child in node.body for n in ast.walk(child)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against this module's package
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            if target == "vdmbench":  # `from vdmbench import run`
                found += [(node.lineno, f"vdmbench.{a.name}") for a in node.names]
    return found


def test_every_subpackage_is_a_known_layer():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(RANK), f"give these packages a layer in LAYERS: {sorted(packages - set(RANK))}"


def test_imports_only_point_down():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        own = layer_of(module)
        if own is None:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for line, target in runtime_imports(tree, module, path.name == "__init__.py"):
            other = layer_of(target)
            if other is not None and RANK[other] > RANK[own]:
                violations.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {own} imports {target} ({other} is above)")
    assert not violations, "imports against the layering:\n" + "\n".join(sorted(set(violations)))


def test_the_check_sees_a_violation():
    # The walker itself: an import from a higher layer, also inside a function, is reported.
    tree = ast.parse("def f():\n    from vdmbench.run.runner import Runner\n")
    assert (2, "vdmbench.run.runner") in runtime_imports(tree, "vdmbench.core.video", False)
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from vdmbench.run import x\n")
    assert all(t != "vdmbench.run" for _, t in runtime_imports(tree, "vdmbench.core.video", False))
