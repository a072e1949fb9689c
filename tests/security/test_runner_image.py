"""Job code against the trusted side: the runner image holds only container code.

Whatever the image holds, job code can read (and, with a bug in the guard or
a runtime, perhaps run): the output checks' thresholds and detectors, the
ledger, the view builder's pseudonymisation, the registry or the gateway
would tell an attacker how to shape an output that passes. So the image holds
the code that runs inside the container and nothing else: the runner, its
guard, the SQL runner, the SDK and the HE evaluator.

Real Docker: a job run by the backend under its hardened flags (on runc and
on runsc) lists every file under ``/opt/dsr`` and tries to import the trusted
side's modules. The list must be exactly ``sandbox/container/``, the
analysts' import name ``sandbox/sdk.py`` and what they import, computed
here from the source rather than read from ``images/build.py``: container
code that imports a host-side module fails
``test_container_code_imports_nothing_of_the_trusted_side`` before the image
would carry it.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
from pathlib import Path

import pytest

from tests.support.engine import ROOT
from tests.support.jobs import run_code, stdout_json

pytestmark = [pytest.mark.docker]

# The analysts' import name, outside container/ on purpose (DESIGN.md: `from sandbox.sdk import`).
PUBLIC_NAME = "sandbox/sdk.py"
# The trusted side: none of it may be in the image, nor importable there.
TRUSTED = (
    "gateway",
    "sandbox.judge.rules",
    "sandbox.judge.verdict",
    "sandbox.judge.ledger",
    "sandbox.views.build",
    "sandbox.intake.registry",
    "sandbox.pipeline",
    "sandbox.precheck.sql",
    "sandbox.intake.policy",
    "sandbox.judge.ledger_keys",
    "sandbox.run.backends",
    "sandbox.he.client",
    "sandbox.judge",
    "sandbox.intake",
    "sandbox.precheck",
    "sandbox.run",
    "sandbox.views",
    "sandbox.synthetic",
    "sandbox.errors",
)
MUST_IMPORT = (
    "sandbox.container.runner",
    "sandbox.container.guard",
    "sandbox.container.sqlrun",
    "sandbox.container.modelfit",
    "sandbox.sdk",
    "sandbox.container.sdk.specs",
    "sandbox.container.he.server",
)

PROBE = f"""
import importlib, json, os
files = []
for top, dirs, names in os.walk("/opt/dsr"):
    files += [os.path.relpath(os.path.join(top, n), "/opt/dsr") for n in names]
imports = {{}}
for name in {list(TRUSTED + MUST_IMPORT)!r}:
    try:
        importlib.import_module(name)
        imports[name] = "imported"
    except ModuleNotFoundError:
        imports[name] = "missing"
    except BaseException as e:
        imports[name] = type(e).__name__
print(json.dumps({{"files": sorted(files), "imports": imports}}))
"""


def _imports_of(path: Path) -> set[str]:
    """The ``sandbox`` modules a source file imports (the project imports absolutely only)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "sandbox")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sandbox":
            assert node.module is not None
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _source_of(module: str) -> Path | None:
    base = ROOT / module.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None  # a name imported from a module, not a module


@functools.cache
def container_closure() -> frozenset[str]:
    """``sandbox/container/``, the analysts' import name, and every module they import.

    Computed from the source (not from the image recipe): a module outside
    container/ lands in the image only because container code imports it, and
    then this set names it.
    """
    todo = [*sorted((ROOT / "sandbox" / "container").rglob("*.py")), ROOT / PUBLIC_NAME]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for parent in path.relative_to(ROOT).parents:
            init = ROOT / parent / "__init__.py"
            if init.is_file() and init not in seen:
                todo.append(init)
        for module in _imports_of(path):
            source = _source_of(module)
            if source is not None and source not in seen:
                todo.append(source)
    return frozenset(str(p.relative_to(ROOT)) for p in seen)


def allowed(path: str) -> bool:
    return path in container_closure()


def module_source(path: str) -> str:
    """``sdk/__pycache__/publish.cpython-311.pyc`` -> ``sdk/publish.py``."""
    p = Path(path)
    if p.parent.name == "__pycache__" and p.suffix == ".pyc":
        return str(p.parent.parent / (p.name.split(".")[0] + ".py"))
    return path


def expected_sources() -> set[str]:
    return set(container_closure())


def test_container_code_imports_nothing_of_the_trusted_side() -> None:
    outside = {
        f
        for f in container_closure()
        if not f.startswith("sandbox/container/") and f not in (PUBLIC_NAME, "sandbox/__init__.py")
    }
    assert not outside, f"container code imports host-side modules: {sorted(outside)}"


def test_the_allowlist_is_the_image_recipe() -> None:
    spec = importlib.util.spec_from_file_location("dsr_image_build", ROOT / "images" / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    recipe = {str(f.relative_to(ROOT)) for f in build._files(build.IN_CONTAINER)}
    assert recipe == expected_sources()
    assert not [f for f in recipe if not allowed(f)]


def test_the_image_holds_only_container_code(backend, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run_code(backend, tmp_path, PROBE)
    assert result.execution.exit_class == "succeeded", result.execution.stderr.data[-2000:]
    seen = stdout_json(result)
    files = [f"{f}" for f in seen["files"]]
    sources = {module_source(f) for f in files}
    # Nothing but Python modules (and their compiled forms) of the allowlist.
    assert not [f for f in files if not f.endswith((".py", ".pyc"))], files
    assert not [s for s in sources if not allowed(s)], sorted(sources)
    assert {s for s in sources if s.endswith(".py")} == expected_sources()
    for trusted in (
        "sandbox/judge",
        "sandbox/intake",
        "sandbox/run",
        "sandbox/judge/ledger.py",
        "sandbox/views/build.py",
        "sandbox/intake/registry.py",
        "sandbox/judge/verdict.py",
        "gateway",
    ):
        assert not [s for s in sources if s.startswith(trusted)], trusted
    imports = seen["imports"]
    assert {m: imports[m] for m in TRUSTED} == dict.fromkeys(TRUSTED, "missing"), json.dumps(
        imports
    )
    assert {m: imports[m] for m in MUST_IMPORT} == dict.fromkeys(MUST_IMPORT, "imported")
