"""Stage 2 of the data flow, for Python jobs: an early, friendly lint.

This is a lint, not a security boundary. The container (stage 4: no
network, read-only root, non-root user, no capabilities, gVisor where the
engine has it) is the boundary; a job this screen passes can still try
anything, and the container must contain it
(``tests/sandbox/precheck/test_screen_containment.py`` proves that with an escape
attempt the screen misses). What the screen buys is a quick, plain answer
before a job is queued: "line 4: `os.system` starts a process; jobs cannot
start programs -- use the SDK" instead of a failed run ten minutes later.

Two passes over the source, both reporting every finding at once:

1. RestrictedPython's restricted compiler (used as a lint, the code it
   produces is thrown away): names and attributes starting with ``_``,
   ``exec``/``eval``, and the constructs it does not allow (``async``,
   ``match``, ``except*``, ``*`` imports, ...).
2. Our own ``ast`` rules, on top: ``exec``/``eval``/``compile``/
   ``__import__``; ``open`` of a string-literal path outside /data, /output,
   /tmp and /job (computed paths are left to the container); imports of
   ``ctypes``, ``subprocess``, ``pty``, ``socket``, ``importlib``; process
   spawning through ``os`` (``os.system``, ``os.popen``, ``os.exec*``,
   ``os.spawn*``, ``os.fork``, ...); ``sys.modules``; frame and object
   walking (``sys._getframe``, ``inspect.currentframe``, ``gc.get_referrers``,
   ``f_back``, ...). Import aliases are followed (``import os as o;
   o.system``); anything computed at run time (``getattr`` with a built
   string) is not -- by design, see above.

Invariants:
- A syntax error is a finding with its line, never an exception.
- Lines are 1-based; columns are 1-based (as editors show them) or None
  when RestrictedPython does not say.
- Each rule id is stable (``RULES``); messages say what is wrong and what
  to do instead, and never claim the code is safe.
"""

from __future__ import annotations

import ast
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass

from RestrictedPython.compile import compile_restricted_exec

from sandbox.errors import ScreenRejected

# Where a job may read and write (DESIGN.md stage 4); the working directory
# of a job is /tmp, so a relative literal path is resolved against it.
ALLOWED_ROOTS = ("/data", "/output", "/tmp", "/job")
WORKING_DIR = "/tmp"

RULES: dict[str, str] = {
    "syntax_error": "the code does not parse or compile",
    "underscore_name": "a name or attribute starts with `_` (RestrictedPython)",
    "restricted_construct": "a construct RestrictedPython does not allow",
    "exec_eval": "exec, eval, compile or __import__: code or imports built at run time",
    "open_path": "open() of a literal path outside /data, /output, /tmp and /job",
    "process_spawn": "starting processes (subprocess, pty, os.system, os.exec*, os.fork, ...)",
    "network": "network access (socket)",
    "native_code": "loading native code (ctypes)",
    "module_registry": "reaching into sys.modules",
    "frame_walk": "walking interpreter frames or the object graph (sys._getframe, inspect, gc)",
    "dynamic_import": "importing through importlib",
}


@dataclass(frozen=True)
class ScreenFinding:
    """One problem: where (1-based line and column, when known), which rule, what to do."""

    line: int | None
    column: int | None
    rule: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "somewhere"
        return f"{where}: {self.message} [{self.rule}]"


@dataclass(frozen=True)
class ScreenReport:
    """The screen's answer: ``ok`` exactly when there are no findings."""

    ok: bool
    findings: tuple[ScreenFinding, ...]


def screen_python(source: str, filename: str = "main.py") -> ScreenReport:
    """Lint ``source`` with RestrictedPython and our ``ast`` rules; report every finding."""
    try:
        tree = ast.parse(source, filename)
    except (SyntaxError, ValueError) as e:  # ValueError: null bytes, on older 3.11
        return _report([_syntax_finding(e, source)])
    ours = list(_ast_findings(tree))
    findings = [f for f, _ in ours]
    covered = {(f.line, subject) for f, subject in ours}
    for finding, subject in _restricted_findings(source, filename):
        if (finding.line, subject) not in covered:
            findings.append(finding)
    return _report(findings)


def check_python(source: str, filename: str = "main.py") -> None:
    """A Python job passes the screen when the lint finds nothing; else raise ScreenRejected."""
    report = screen_python(source, filename)
    if not report.ok:
        raise ScreenRejected(report.findings)


def can_run_python(source: str, filename: str = "main.py") -> bool:
    """A Python job passes the screen when the lint finds nothing (``check_python``'s pair)."""
    return screen_python(source, filename).ok


def _report(findings: list[ScreenFinding]) -> ScreenReport:
    ordered = sorted(set(findings), key=lambda f: (f.line or 0, f.column or 0, f.rule, f.message))
    return ScreenReport(ok=not ordered, findings=tuple(ordered))


def _syntax_finding(e: SyntaxError | ValueError, source: str) -> ScreenFinding:
    line = e.lineno if isinstance(e, SyntaxError) else None
    column = e.offset if isinstance(e, SyntaxError) else None
    if line is None and "\0" in source:  # the parser gives no line for a null byte
        line = source[: source.index("\0")].count("\n") + 1
    message = e.msg if isinstance(e, SyntaxError) else str(e)
    return ScreenFinding(line, column, "syntax_error", f"syntax error: {message} -- fix it first")


# -- pass 1: RestrictedPython -----------------------------------------------------

_RP_LINE = re.compile(r"^Line (\d+|None): (.*)$", re.DOTALL)
_RP_UNDERSCORE = re.compile(
    r'^"([^"]+)" is an invalid (?:variable|attribute) name because it starts with "_"'
)
_RP_EXEC_EVAL = re.compile(r"^(Exec|Eval) calls are not allowed")


class _AnnotationsAsAssignments(ast.NodeTransformer):
    """RestrictedPython rejects ``x: int = 1`` (and so every dataclass) without
    looking inside. Annotated assignments are ordinary analysis code, so we
    show it ``x = (int, 1)`` instead: it still checks the target, annotation
    and value for everything else."""

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.Assign:
        value = node.value if node.value is not None else ast.Constant(None)
        pair = ast.Tuple(elts=[node.annotation, value], ctx=ast.Load())
        return ast.copy_location(ast.Assign(targets=[node.target], value=pair), node)


def _restricted_findings(source: str, filename: str) -> Iterator[tuple[ScreenFinding, str]]:
    tree = _AnnotationsAsAssignments().visit(ast.parse(source, filename))
    ast.fix_missing_locations(tree)
    try:
        result = compile_restricted_exec(tree, filename)
    except SyntaxError as e:  # raised by compile(): 'return' outside function, ...
        yield _syntax_finding(e, source), ""
        return
    # result.warnings are about RestrictedPython's own runtime (``printed``): not ours.
    for error in result.errors:
        yield _from_restricted(str(error))


def _from_restricted(error: str) -> tuple[ScreenFinding, str]:
    m = _RP_LINE.match(error)
    line = int(m.group(1)) if m and m.group(1) != "None" else None
    text = m.group(2) if m else error
    if u := _RP_UNDERSCORE.match(text):
        name = u.group(1)
        message = (
            f"`{name}` starts with `_`; jobs may not use names or attributes starting "
            "with an underscore -- rename it, or use the public API instead of internals"
        )
        return ScreenFinding(line, None, "underscore_name", message), name
    if x := _RP_EXEC_EVAL.match(text):
        name = x.group(1).lower()
        return ScreenFinding(line, None, "exec_eval", _BUILTIN_MESSAGES[name]), name
    message = f"{text.rstrip('.')} -- rewrite this part with plain statements"
    return ScreenFinding(line, None, "restricted_construct", message), ""


# -- pass 2: our ast rules ------------------------------------------------------------

_RUN_CODE = "runs code built at run time; jobs cannot run generated code -- write the code out"
_BUILTIN_MESSAGES = {
    "exec": f"`exec` {_RUN_CODE}",
    "eval": f"`eval` {_RUN_CODE}",
    "compile": f"`compile` {_RUN_CODE}",
    "__import__": "`__import__` imports a module by a computed name -- use a plain `import`",
}
_SPAWN = "starts a process; jobs cannot start programs -- use the SDK"

_NETWORK = "opens network connections; jobs have no network -- read data with the SDK"
_NATIVE = "calls native code directly; jobs cannot -- use pandas, numpy or duckdb"
# Whole modules, flagged where imported.
_MODULES: dict[str, tuple[str, str]] = {
    "subprocess": ("process_spawn", _SPAWN),
    "pty": ("process_spawn", _SPAWN),
    "socket": ("network", _NETWORK),
    "_socket": ("network", _NETWORK),
    "ctypes": ("native_code", _NATIVE),
    "_ctypes": ("native_code", _NATIVE),
    "importlib": ("dynamic_import", "imports modules by computed name -- use a plain `import`"),
}

_FRAMES = (
    "walks the interpreter's frames or objects; analysis does not need it -- pass values explicitly"
)
# Qualified names (after following import aliases), flagged where used or imported.
_NAMES: dict[str, tuple[str, str]] = {
    **{
        f"os.{n}": ("process_spawn", _SPAWN)
        for n in ("system", "popen", "fork", "forkpty", "posix_spawn", "posix_spawnp")
    },
    "sys.modules": (
        "module_registry",
        "reaches into loaded modules -- import what you need with `import`",
    ),
    **{
        name: ("frame_walk", _FRAMES)
        for name in (
            "sys._getframe",
            "sys._current_frames",
            "inspect.currentframe",
            "inspect.stack",
            "inspect.trace",
            "inspect.getouterframes",
            "inspect.getinnerframes",
            "gc.get_objects",
            "gc.get_referrers",
            "gc.get_referents",
        )
    },
    **{f"builtins.{n}": ("exec_eval", m) for n, m in _BUILTIN_MESSAGES.items()},
}
_OS_PREFIXES = ("os.exec", "os.spawn")
# Frame attributes: whatever object they are read from, they lead to other frames' globals.
_FRAME_ATTRIBUTES = frozenset(
    {
        "f_back",
        "f_globals",
        "f_locals",
        "f_builtins",
        "tb_frame",
        "gi_frame",
        "cr_frame",
        "ag_frame",
    }
)
_OPENERS = frozenset({"open", "io.open", "builtins.open"})


def _lookup(qualified: str) -> tuple[str, str] | None:
    if qualified in _NAMES:
        return _NAMES[qualified]
    if qualified.startswith(_OS_PREFIXES):
        return ("process_spawn", _SPAWN)
    return None


class _Rules(ast.NodeVisitor):
    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}  # local name -> qualified name
        self.found: list[tuple[ScreenFinding, str]] = []

    def add(self, node: ast.AST, rule: str, subject: str, message: str) -> None:
        line = getattr(node, "lineno", None)
        column = getattr(node, "col_offset", None)
        finding = ScreenFinding(line, column + 1 if column is not None else None, rule, message)
        self.found.append((finding, subject))

    def qualified(self, node: ast.expr) -> str | None:
        """``o.system`` -> ``os.system`` after ``import os as o``; None when not a dotted name."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.qualified(node.value)
            return f"{base}.{node.attr}" if base is not None else None
        return None

    def check_module(self, node: ast.AST, module: str) -> None:
        top = module.split(".")[0]
        if top in _MODULES:
            rule, message = _MODULES[top]
            self.add(node, rule, top, f"`{module}` {message}")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.check_module(node, alias.name)
            if alias.asname:
                self.aliases[alias.asname] = alias.name
            else:
                top = alias.name.split(".")[0]
                self.aliases[top] = top

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module:
            return  # relative imports stay inside the job's own files
        self.check_module(node, node.module)
        for alias in node.names:
            qualified = f"{node.module}.{alias.name}"
            self.aliases[alias.asname or alias.name] = qualified
            if found := _lookup(qualified):
                self.add(node, found[0], alias.name, f"`{qualified}` {found[1]}")

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load) and node.id not in self.aliases:
            if node.id in _BUILTIN_MESSAGES:
                self.add(node, "exec_eval", node.id, _BUILTIN_MESSAGES[node.id])
        elif isinstance(node.ctx, ast.Load):
            qualified = self.aliases[node.id]
            if found := _lookup(qualified):
                self.add(node, found[0], qualified.rsplit(".", 1)[-1], f"`{qualified}` {found[1]}")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        qualified = self.qualified(node)
        if qualified is not None and (found := _lookup(qualified)):
            self.add(node, found[0], node.attr, f"`{qualified}` {found[1]}")
        elif node.attr in _FRAME_ATTRIBUTES:
            self.add(node, "frame_walk", node.attr, f"`.{node.attr}` {_FRAMES}")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if self.qualified(node.func) in _OPENERS:
            path = node.args[0] if node.args else None
            for keyword in node.keywords:
                if keyword.arg == "file":
                    path = keyword.value
            if isinstance(path, ast.Constant) and isinstance(path.value, (str, bytes)):
                literal = (
                    path.value.decode(errors="replace")
                    if isinstance(path.value, bytes)
                    else path.value
                )
                if not _inside_allowed(literal):
                    message = (
                        f"`open({literal!r})` is outside the job's folders; jobs can use only "
                        "/data, /output, /tmp and /job -- read views with the SDK, "
                        "write results to /output"
                    )
                    self.add(node, "open_path", "open", message)
        self.generic_visit(node)


def _inside_allowed(path: str) -> bool:
    resolved = posixpath.normpath(posixpath.join(WORKING_DIR, path))
    return any(resolved == root or resolved.startswith(root + "/") for root in ALLOWED_ROOTS)


def _ast_findings(tree: ast.Module) -> Iterator[tuple[ScreenFinding, str]]:
    rules = _Rules()
    rules.visit(tree)
    yield from rules.found
