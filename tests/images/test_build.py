"""images/build.py: content-hash tags, and what the runner image holds."""

from __future__ import annotations

import importlib.util
import shutil
import sys

import pytest

from tests.support.engine import ROOT


def load_build(root=ROOT):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("image_build", ROOT / "images" / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["image_build"] = module
    spec.loader.exec_module(module)
    if root != ROOT:
        module.ROOT = root
        module.RUNNER_DIR = root / "images" / "runner"
        module.LOCK = module.RUNNER_DIR / "requirements.lock"
    return module


def copy_inputs(dst):  # type: ignore[no-untyped-def]
    for rel in ("images/runner", "sandbox"):
        shutil.copytree(ROOT / rel, dst / rel, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def test_tags_are_stable(tmp_path):
    build = load_build(copy_inputs(tmp_path))
    assert build.runner_tag() == build.runner_tag()
    assert build.runner_tag().startswith("dsr-runner:")
    assert build.runner_tag() == load_build().runner_tag()  # same inputs, same tag


def test_sdk_change_rebuilds_only_the_runner_layer(tmp_path):
    build = load_build(copy_inputs(tmp_path))
    base, deps, runner = build.base_tag(), build.deps_tag(), build.runner_tag()
    sdk = tmp_path / "sandbox" / "container" / "sdk" / "__init__.py"
    sdk.write_text(sdk.read_text() + "\n# changed\n")
    assert (build.base_tag(), build.deps_tag()) == (base, deps)
    assert build.runner_tag() != runner


def test_lock_change_rebuilds_deps(tmp_path):
    build = load_build(copy_inputs(tmp_path))
    deps, runner = build.deps_tag(), build.runner_tag()
    build.LOCK.write_text(build.LOCK.read_text() + "six==1.17.0\n")
    assert build.deps_tag() != deps and build.runner_tag() != runner


def test_host_only_code_does_not_change_the_image(tmp_path):
    build = load_build(copy_inputs(tmp_path))
    runner = build.runner_tag()
    backend = tmp_path / "sandbox" / "run" / "backends" / "docker.py"
    backend.write_text(backend.read_text() + "\n# host side only\n")
    assert build.runner_tag() == runner


def test_mirror_comes_from_apt_sources_or_the_environment(monkeypatch):
    build = load_build()
    monkeypatch.setenv("DSR_DEBIAN_MIRROR", "http://mirror.invalid/debian")
    assert build.debian_mirror() == "http://mirror.invalid/debian"


def test_lock_pins_every_package():
    build = load_build()
    pins = dict(build._locked())
    for needed in (
        "duckdb",
        "pyarrow",
        "pandas",
        "numpy",
        "scipy",
        "statsmodels",
        "scikit-learn",
        "matplotlib",
    ):
        assert needed in pins


@pytest.mark.docker
def test_runner_image_of_this_source_exists_and_is_lean(docker_client):
    build = load_build()
    image = docker_client.images.get(build.runner_tag())
    assert build.runner_tag() in image.tags
    config = image.attrs["Config"]
    assert config["User"] == "65534:65534"
    assert config["Cmd"] == ["sleep", "infinity"]
    assert not any(e.startswith(("DSR_", "PYTHONUNBUFFERED")) for e in config["Env"])
    listing = docker_client.containers.run(
        image.id,
        [
            "sh",
            "-c",
            "ls -1 /opt/dsr/sandbox; echo --; ls -1 /opt/dsr/sandbox/container; echo --; "
            "ls /wheels 2>&1; ls /opt/venv/bin/pip 2>&1; true",
        ],
        network_mode="none",
        remove=True,
        user="65534:65534",
    ).decode()
    top, container, rest = listing.split("--\n", 2)
    assert set(top.split()) == {"__init__.py", "__pycache__", "container", "sdk.py"}, top
    assert {"runner.py", "sdk", "guard.py", "sqlrun.py"} <= set(container.split())
    assert "No such file" in rest  # no wheelhouse, no pip left in the image
