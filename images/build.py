"""Build the runner image offline, in three layers tagged by content hash.

    dsr-base:<h>    Debian bookworm minbase + python3, from debootstrap + docker import
    dsr-deps:<h>    + the pinned Python packages, installed from a host wheelhouse
    dsr-runner:<h>  + this project's in-container code (runner entrypoint, SDK)

Each tag is a hash of that layer's inputs (the layer below included), so an
unchanged layer is never rebuilt and a change to the SDK rebuilds only the thin
runner layer. There is no registry: nothing is pulled, build containers have no
network, packages come from a wheelhouse made on the host with `pip download`.
`dsr-runner:latest` always points at the image of the current source.

    python images/build.py ensure [--force]   build what is missing, print the tag
    python images/build.py tag                print the tag the current source needs
    python images/build.py check              exit 0 if that image exists, else 1
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import docker
import docker.errors

ROOT = Path(__file__).resolve().parent.parent
RUNNER_DIR = ROOT / "images" / "runner"
LOCK = RUNNER_DIR / "requirements.lock"
# In-container code: everything under sandbox/container/ (the runner entrypoint,
# its guard, the SQL runner, the model fitter, the SDK and the HE products'
# evaluator), the package marker, and sandbox/sdk.py (the analysts' import
# name, which re-exports sandbox.container.sdk). Nothing host-side: never the
# trusted side's checks, ledger, views, registry or the gateway, nor the HE
# consumer's client (it makes and holds the secret keys).
# tests/security/test_runner_image.py checks this list against the import
# closure of sandbox/container/ and against the files of the built image.
IN_CONTAINER = (
    "sandbox/__init__.py",
    "sandbox/sdk.py",
    "sandbox/container",
)

SUITE = "bookworm"
VARIANT = "minbase"
INCLUDE = ("python3", "python3-venv")
# Bump when the recipe of a layer changes in a way its inputs do not show.
RECIPE = "1"

RUNNER_REPO = "dsr-runner"
WHEELHOUSE = Path(os.environ.get("DSR_WHEELHOUSE", Path.home() / ".cache" / "dsr" / "wheelhouse"))


def log(msg: str) -> None:
    print(f"image-build: {msg}", file=sys.stderr, flush=True)


def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def _files(paths: Iterable[str]) -> list[Path]:
    out: list[Path] = []
    for rel in paths:
        p = ROOT / rel
        if p.is_dir():
            out.extend(
                sorted(f for f in p.rglob("*") if f.is_file() and "__pycache__" not in f.parts)
            )
        else:
            out.append(p)
    return out


def _tree_parts(files: Iterable[Path]) -> list[bytes]:
    parts: list[bytes] = []
    for f in files:
        parts.append(str(f.relative_to(ROOT)).encode())
        parts.append(f.read_bytes())
    return parts


def base_tag() -> str:
    recipe = f"{RECIPE}|{SUITE}|{VARIANT}|{','.join(INCLUDE)}|{platform.machine()}"
    return f"dsr-base:{_digest([recipe.encode()])}"


def deps_tag() -> str:
    dockerfile = RUNNER_DIR / "Dockerfile.deps"
    return "dsr-deps:" + _digest(
        [base_tag().encode(), RECIPE.encode(), dockerfile.read_bytes(), LOCK.read_bytes()]
    )


def runner_tag() -> str:
    dockerfile = RUNNER_DIR / "Dockerfile"
    parts = [deps_tag().encode(), RECIPE.encode(), dockerfile.read_bytes()]
    parts += _tree_parts(_files(IN_CONTAINER))
    return f"{RUNNER_REPO}:{_digest(parts)}"


def _exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def debian_mirror() -> str:
    """The Debian mirror this host's apt already uses (or DSR_DEBIAN_MIRROR)."""
    if os.environ.get("DSR_DEBIAN_MIRROR"):
        return os.environ["DSR_DEBIAN_MIRROR"]
    candidates = [Path("/etc/apt/sources.list")]
    candidates += sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    candidates += sorted(Path("/etc/apt/sources.list.d").glob("*.list"))
    for path in candidates:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for m in re.finditer(r"^\s*URIs:\s*(\S+)", text, re.M):
            if m.group(1).rstrip("/").endswith("/debian"):
                return m.group(1)
        for m in re.finditer(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+" + SUITE + r"\s", text, re.M):
            if m.group(1).rstrip("/").endswith("/debian"):
                return m.group(1)
    raise SystemExit(
        "image-build: no Debian mirror found in /etc/apt sources; set DSR_DEBIAN_MIRROR"
    )


def _ensure_debootstrap() -> None:
    if shutil.which("debootstrap"):
        return
    if os.geteuid() != 0:
        raise SystemExit(
            "image-build: debootstrap is missing; install it (apt-get install debootstrap)"
        )
    log("installing debootstrap")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "debootstrap"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def build_base(tag: str) -> None:
    _ensure_debootstrap()
    mirror = debian_mirror()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dsr-rootfs-", dir="/var/tmp") as tmp:
        rootfs = Path(tmp) / "rootfs"
        log(f"debootstrap {VARIANT} {SUITE} (+{','.join(INCLUDE)}) ...")
        subprocess.run(
            [
                "debootstrap",
                f"--variant={VARIANT}",
                f"--include={','.join(INCLUDE)}",
                SUITE,
                str(rootfs),
                mirror,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        # Nothing in the sandbox needs package indexes, docs or manuals.
        for rel in (
            "var/lib/apt/lists",
            "var/cache/apt",
            "usr/share/doc",
            "usr/share/man",
            "usr/share/info",
            "var/log",
        ):
            shutil.rmtree(rootfs / rel, ignore_errors=True)
            (rootfs / rel).mkdir(parents=True, exist_ok=True)
        log(f"docker import as {tag}")
        tar = subprocess.Popen(
            ["tar", "-C", str(rootfs), "--numeric-owner", "-cf", "-", "."], stdout=subprocess.PIPE
        )
        subprocess.run(
            ["docker", "import", "-", tag], stdin=tar.stdout, check=True, stdout=subprocess.DEVNULL
        )
        if tar.wait() != 0:
            raise SystemExit("image-build: tar of the root filesystem failed")
    log(f"base image built in {time.monotonic() - started:.0f}s")


def _locked() -> list[tuple[str, str]]:
    pins = []
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins.append((name, version))
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def ensure_wheelhouse() -> None:
    """Download the pinned wheels on the host unless they are all there already."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    have = {(_norm(w.name.split("-")[0]), w.name.split("-")[1]) for w in WHEELHOUSE.glob("*.whl")}
    missing = [p for p in _locked() if (_norm(p[0]), p[1]) not in have]
    if not missing:
        return
    log(f"downloading {len(missing)} wheels into {WHEELHOUSE}")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary=:all:",
            "--no-deps",
            "--python-version",
            "3.11",
            "--dest",
            str(WHEELHOUSE),
            "-r",
            str(LOCK),
        ],
        check=True,
    )


def _build(
    client: docker.DockerClient, context: Path, dockerfile: str, tag: str, buildargs: dict[str, str]
) -> None:
    try:
        _, stream = client.images.build(
            path=str(context),
            dockerfile=dockerfile,
            tag=tag,
            buildargs=buildargs,
            network_mode="none",
            rm=True,
            forcerm=True,
            pull=False,
        )
    except docker.errors.BuildError as e:
        tail = "".join(str(c.get("stream", c.get("error", ""))) for c in e.build_log)[-3000:]
        raise SystemExit(f"image-build: building {tag} failed:\n{tail}") from e
    for _ in stream:
        pass


def build_deps(client: docker.DockerClient, tag: str) -> None:
    ensure_wheelhouse()
    started = time.monotonic()
    wanted = {(_norm(n), v) for n, v in _locked()}
    with tempfile.TemporaryDirectory(prefix="dsr-deps-", dir="/var/tmp") as tmp:
        ctx = Path(tmp)
        (ctx / "wheels").mkdir()
        for w in WHEELHOUSE.glob("*.whl"):
            if (_norm(w.name.split("-")[0]), w.name.split("-")[1]) in wanted:
                try:
                    os.link(w, ctx / "wheels" / w.name)
                except OSError:
                    shutil.copy2(w, ctx / "wheels" / w.name)
        shutil.copy2(LOCK, ctx / "requirements.lock")
        shutil.copy2(RUNNER_DIR / "Dockerfile.deps", ctx / "Dockerfile")
        log(f"building {tag} (offline pip install)")
        _build(client, ctx, "Dockerfile", tag, {"BASE": base_tag()})
    # The build stage's image (wheels and all) is left untagged: remove it.
    client.images.prune(filters={"dangling": True, "label": "dsr.stage=build"})
    log(f"deps image built in {time.monotonic() - started:.0f}s")


def build_runner(client: docker.DockerClient, tag: str) -> None:
    with tempfile.TemporaryDirectory(prefix="dsr-runner-", dir="/var/tmp") as tmp:
        ctx = Path(tmp)
        for f in _files(IN_CONTAINER):
            dest = ctx / f.relative_to(ROOT)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest)
        shutil.copy2(RUNNER_DIR / "Dockerfile", ctx / "Dockerfile")
        log(f"building {tag}")
        _build(client, ctx, "Dockerfile", tag, {"DEPS": deps_tag()})


def ensure(force: bool = False) -> str:
    client = docker.from_env(timeout=600)
    base, deps, runner = base_tag(), deps_tag(), runner_tag()
    if force or not _exists(client, base):
        build_base(base)
    if force or not _exists(client, deps):
        build_deps(client, deps)
    if force or not _exists(client, runner):
        build_runner(client, runner)
    else:
        log(f"{runner} is up to date")
    client.images.get(runner).tag(RUNNER_REPO, "latest")
    _untag_superseded(client, runner)
    return runner


def _untag_superseded(client: docker.DockerClient, current: str) -> None:
    """Drop runner tags of earlier sources (an image still in use stays)."""
    for image in client.images.list(name=RUNNER_REPO):
        for tag in image.tags:
            if tag in (current, f"{RUNNER_REPO}:latest"):
                continue
            # An image used by a container, or already gone, stays as it is.
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(tag)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_ensure = sub.add_parser("ensure", help="build what is missing and print the runner tag")
    p_ensure.add_argument("--force", action="store_true", help="rebuild every layer")
    sub.add_parser("tag", help="print the runner tag of the current source")
    sub.add_parser("check", help="exit 0 when the runner image of the current source exists")
    args = parser.parse_args(argv)
    if args.cmd == "tag":
        print(runner_tag())
        return 0
    if args.cmd == "check":
        return 0 if _exists(docker.from_env(), runner_tag()) else 1
    print(ensure(force=args.force))
    return 0


if __name__ == "__main__":
    sys.exit(main())
