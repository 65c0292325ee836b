"""The code's layout promises: no import cycle, one place for each path a clip's files live at.

Read from the source with :mod:`ast`, so they fail the moment someone spells
``clips/<id>.mp4`` again outside :mod:`processing.clip.files`, or closes an
import cycle (``TYPE_CHECKING`` imports included: they hide a cycle, they do
not remove it).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: A TYPE_CHECKING-only pair that predates this test (a type used for a hint);
#: listed so the test guards every other module.
KNOWN = {frozenset({"processing.anonymize", "processing.faces.uncertain"})}
PATH_IN_FSTRING = re.compile(r"\b(clips|logs)/\{\}")
PATH_IN_PERCENT = re.compile(r"\b(clips|logs)/%s")


def _modules() -> dict[str, Path]:
    found = {}
    for path in (ROOT / "processing").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Modules of ``processing`` that ``name`` imports at module level (TYPE_CHECKING too)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    nodes: list[ast.stmt] = []
    for node in ast.parse(path.read_text("utf-8")).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            nodes += node.body
        else:
            nodes.append(node)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(max(0, node.level - 1)):
                base = base.rsplit(".", 1)[0]
            mod = node.module or ""
            mod = (f"{base}.{mod}" if mod else base) if node.level else mod
            for a in node.names:
                target = f"{mod}.{a.name}"
                found.add(target if target in modules else mod)
    return found & set(modules)


def _cycles() -> list[list[str]]:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    cycles = []

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt == start:
                cycles.append([*path, start])
            elif nxt > start and nxt not in path:
                walk(start, nxt, [*path, nxt])

    for name in sorted(graph):
        walk(name, name, [name])
    return [c for c in cycles if frozenset(c) not in KNOWN]


def test_processing_has_no_import_cycle() -> None:
    cycles = _cycles()
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles[:5])


def _spelled_paths(path: Path) -> list[str]:
    """Where ``path`` spells a clip's or a log's path itself (``clips/{id}``, ``/ "clips"``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            if PATH_IN_FSTRING.search(str(text)):
                found.append(f"{path.name}:{node.lineno}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if PATH_IN_PERCENT.search(node.value) or node.value == "review/index.html":
                found.append(f"{path.name}:{node.lineno}")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            right = node.right
            if isinstance(right, ast.Constant) and right.value in ("clips", "logs"):
                found.append(f"{path.name}:{node.lineno}")
    return found


def test_a_clips_paths_are_spelled_only_by_clip_files() -> None:
    owners = {ROOT / "processing" / "clip" / "files.py", ROOT / "processing" / "review.py"}
    spelled = [
        where
        for folder in ("processing", "flows")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path not in owners
        for where in _spelled_paths(path)
    ]
    assert not spelled, f"paths spelled outside processing/clip/files.py: {spelled}"


#: The one owner of report.json's bytes (:mod:`processing.state.store`) and its one
#: typed reader (:func:`processing.report.read_report`).
REPORT_OWNERS = {ROOT / "processing" / "state" / "store.py", ROOT / "processing" / "report.py"}
JSON_READS = {"json.loads", "json.load", "untrusted_json.load"}


def _names_report(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return node.value == "report.json"
    return isinstance(node, ast.Name | ast.Attribute) and ast.unparse(node).endswith("REPORT")


def _report_readers(path: Path) -> list[str]:
    """Where ``path`` reads report.json itself rather than through :func:`read_report`.

    Two ways: calling the store's raw reader (``read_report_document``), or a
    function that both names the report (``"report.json"``, ``REPORT``) and
    parses JSON.
    """
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Attribute | ast.Name) and ast.unparse(node).endswith(
            "read_report_document"
        ):
            found.append(f"{path.name}:{node.lineno} read_report_document")
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        inside = list(ast.walk(node))
        parses = any(isinstance(n, ast.Call) and ast.unparse(n.func) in JSON_READS for n in inside)
        if parses and any(_names_report(n) for n in inside):
            found.append(f"{path.name}:{node.lineno} parses report.json")
    return sorted(set(found))


def test_report_json_is_read_only_through_the_typed_reader() -> None:
    readers = [
        where
        for folder in ("processing", "flows", "bench")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path not in REPORT_OWNERS
        for where in _report_readers(path)
    ]
    assert not readers, f"report.json read outside processing.report.read_report: {readers}"
