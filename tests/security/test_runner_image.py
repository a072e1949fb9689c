"""Job code against the trusted side: the runner image holds only container code.

Whatever the image holds, job code can read (and, with a bug in the guard or
a runtime, perhaps run): the output checks' thresholds and detectors, the
ledger, the view builder's pseudonymisation, the registry or the gateway
would tell an attacker how to shape an output that passes. So the image holds
the code that runs inside the container and nothing else: the runner, its
guard, the SQL runner, the SDK and the HE evaluator.

Real Docker: a job run by the backend under its hardened flags (on runc and
on runsc) lists every file under ``/opt/dsr`` and tries to import the trusted
side's modules. The list must be exactly the allowlist below, which is kept
here on purpose rather than read from ``images/build.py``: widening what the
image holds takes a change to this test too.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_code, stdout_json

pytestmark = [pytest.mark.docker]

# Modules the image may hold: (source path, importable in the container).
ALLOWED_FILES = frozenset(
    {
        "sandbox/__init__.py",
        "sandbox/errors.py",
        "sandbox/runner.py",
        "sandbox/guard.py",
        "sandbox/sqlrun.py",
        "sandbox/modelfit.py",
        "sandbox/he/__init__.py",
        "sandbox/he/errors.py",
        "sandbox/he/params.py",
        "sandbox/he/protocol.py",
        "sandbox/he/score.py",
        "sandbox/he/server.py",
        "sandbox/he/verify.py",
        "sandbox/he/wire.py",
    }
)
ALLOWED_PACKAGES = ("sandbox/sdk/",)  # every module of the SDK
# The trusted side: none of it may be in the image, nor importable there.
TRUSTED = (
    "gateway",
    "sandbox.checks",
    "sandbox.checking",
    "sandbox.ledger",
    "sandbox.views",
    "sandbox.registry",
    "sandbox.pipeline",
    "sandbox.sqlcheck",
    "sandbox.policy",
    "sandbox.entitymap",
    "sandbox.backends",
    "sandbox.he.client",
)
MUST_IMPORT = (
    "sandbox.runner",
    "sandbox.guard",
    "sandbox.sqlrun",
    "sandbox.modelfit",
    "sandbox.sdk",
    "sandbox.sdk.specs",
    "sandbox.he.server",
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


def allowed(path: str) -> bool:
    return path in ALLOWED_FILES or path.startswith(ALLOWED_PACKAGES)


def module_source(path: str) -> str:
    """``sandbox/sdk/__pycache__/publish.cpython-311.pyc`` -> ``sandbox/sdk/publish.py``."""
    p = Path(path)
    if p.parent.name == "__pycache__" and p.suffix == ".pyc":
        return str(p.parent.parent / (p.name.split(".")[0] + ".py"))
    return path


def expected_sources() -> set[str]:
    """The allowlisted modules as the source tree has them now."""
    found = {str(p.relative_to(ROOT)) for p in (ROOT / "sandbox").rglob("*.py")}
    return {f for f in found if allowed(f)}


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
        "sandbox/checks",
        "sandbox/ledger.py",
        "sandbox/views.py",
        "sandbox/registry.py",
        "sandbox/checking.py",
        "gateway",
    ):
        assert not [s for s in sources if s.startswith(trusted)], trusted
    imports = seen["imports"]
    assert {m: imports[m] for m in TRUSTED} == dict.fromkeys(TRUSTED, "missing"), json.dumps(
        imports
    )
    assert {m: imports[m] for m in MUST_IMPORT} == dict.fromkeys(MUST_IMPORT, "imported")
