"""Services depend on `shared/` only; `services/runtime/` alone wires them; `shared/` holds
contracts and imports no service. Read from the source, so a new import anywhere is caught."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "app.py").exists())


def imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (imports inside functions count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def crossings(folder: Path, allowed: str | None) -> list[str]:
    wrong = []
    for path in sorted(folder.rglob("*.py")):
        for module in imports(path):
            parts = module.split(".")
            if parts[0] == "services" and len(parts) > 1 and parts[1] != allowed:
                wrong.append(f"{path.relative_to(folder.parent)} imports {module}")
    return wrong


def test_the_six_services_are_all_checked() -> None:
    assert SERVICES == ["auditor", "executor", "gateway", "guardian", "notifier", "planner"]


def test_no_service_imports_another_service_or_the_runtime() -> None:
    wrong = [line for service in SERVICES for line in crossings(ROOT / "services" / service, service)]
    assert wrong == []


def test_shared_imports_no_service() -> None:
    assert crossings(ROOT / "shared", None) == []


def test_the_check_catches_a_crossing_even_inside_a_function(tmp_path: Path) -> None:
    gateway = tmp_path / "gateway"
    gateway.mkdir()
    (gateway / "lifecycle.py").write_text("def f():\n    from services.planner.intent import parse\n")
    (gateway / "fine.py").write_text("from services.gateway.api import router\nfrom shared.models import Env\n")
    assert crossings(gateway, "gateway") == ["gateway/lifecycle.py imports services.planner.intent"]
