"""Stage 4, optional second layer: run a Python job under RestrictedPython's guards.

(Long on purpose: the compile-time policy, the run-time guards and the
stand-in modules are one security boundary, read and reviewed together.)

Runs inside the container, called by ``sandbox/container/runner.py`` when ``job.json``
says ``"guard": "restricted"``. The job's source is compiled with
RestrictedPython's restricted compiler and executed with guarded builtins and
hooks, so the early, friendly answers of the host-side screen
(``sandbox/precheck/screen.py``) are also enforced while the code runs: attribute names
starting with ``_``, imports outside an allowlist, writes to modules.

This is a lint that runs, **not** a security boundary. The container (no
network, read-only root, non-root user, no capabilities, gVisor where the
engine has it) is the boundary. The guard does not vet the third-party
packages it lets a job import, and they are full of ways out: pickle loaders
(``pandas.read_pickle``, ``numpy.load(allow_pickle=True)``) call any function
by name, formula interfaces ``eval`` strings, file readers and writers reach
the whole file system. ``tests/sandbox/container/test_guard.py`` runs such an escape
and shows the container still holds it.

What the guard enforces:

- Compile time (RestrictedPython, all findings at once, with line numbers):
  names and attributes starting with ``_`` (except reading ``__name__`` and
  defining magic methods), ``exec``/``eval``, ``async``, ``match``,
  ``nonlocal``, ``except*``, ``*`` imports. On top of RestrictedPython's own
  policy, annotated assignments (``x: int = 1``, dataclass fields) and
  augmented assignment of items and attributes with side-effect-free targets
  (``counts[key] += 1``) are allowed: analysis code uses both everywhere.
- Run time: ``import`` only of ``ALLOWED_MODULES`` and ``sandbox.sdk`` (``io``
  is a stand-in with ``StringIO`` and ``BytesIO`` only); no module outside the
  allowlist reachable as an attribute, an item or ``from m import name`` (so
  ``dataclasses.sys`` is refused); the stdlib gadgets that undo the
  underscore rule (``operator.attrgetter``, ``operator.methodcaller``,
  ``typing.get_type_hints``, ``str.format``, ``string.Formatter``) refused;
  no ``open``, ``vars``, ``dir``, ``globals``, ``locals``, ``input``; modules
  cannot be written to.

A guarded job is a single file: job-local modules would be imported by the
ordinary, unguarded import system, so they are refused.

Invariants:
- Exit status as in ``sandbox/container/runner.py``: 0 success, the job's own
  ``SystemExit`` status, 1 for an uncaught exception (traceback from the job's
  first frame on stderr) and 1 for a guard finding, reported as one plain line
  ``guard: <file>, line <n>: <what> -- <what to do instead>``.
- Standard library and RestrictedPython only at import time.
"""

from __future__ import annotations

import ast
import builtins
import copy
import io
import operator
import re
import sys
import traceback
import types
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from RestrictedPython.compile import compile_restricted_exec
from RestrictedPython.Guards import (
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safe_builtins,
    safer_getattr_raise,
)
from RestrictedPython.transformer import (
    INSPECT_ATTRIBUTES,
    IOPERATOR_TO_STR,
    RestrictingNodeTransformer,
)

EXIT_FAILED = 1

SDK = "sandbox.sdk"  # the analysts' import name (sandbox/sdk.py)
SDK_PACKAGE = "sandbox.container.sdk"  # where it lives; its modules may be imported too
# Top-level modules a guarded job may import (and reach through attributes).
ALLOWED_MODULES = frozenset(
    [
        "duckdb",
        "pandas",
        "numpy",
        "pyarrow",
        "scipy",
        "statsmodels",
        "sklearn",
        "matplotlib",
        "math",
        "statistics",
        "json",
        "csv",
        "datetime",
        "collections",
        "itertools",
        "functools",
        "re",
        "decimal",
        "fractions",
        "random",
        "string",
        "textwrap",
        "typing",
        "dataclasses",
        "operator",
    ]
)
# Stdlib attributes that would undo the guard's own rules: they reach attributes
# by a computed name, or evaluate strings as unguarded code.
DENIED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "operator": frozenset({"attrgetter", "methodcaller"}),
    "typing": frozenset({"get_type_hints"}),
    "string": frozenset({"Formatter"}),
}
# Builtins a job may not have, and what to do instead.
UNAVAILABLE_BUILTINS: dict[str, str] = {
    "open": "read views with `sandbox.sdk.connect()`, publish with `sandbox.sdk.publish_*`",
    "vars": "use the object's public attributes",
    "dir": "use the object's documented public attributes",
    "globals": "pass values explicitly",
    "locals": "pass values explicitly",
    "input": "jobs have no terminal; put parameters in the code",
    "breakpoint": "jobs cannot be debugged interactively; run them on dummy data",
    "compile": "write the code out",
    "exec": "write the code out",
    "eval": "write the code out",
    "memoryview": "use bytes or numpy arrays",
}
# Ordinary builtins that RestrictedPython leaves out for Zope's per-object
# security (they iterate in C, past ``_getiter_``); our ``_getiter_`` checks
# nothing per item, so they lose nothing here and analysis code needs them.
_PLAIN_BUILTINS = [
    "all",
    "any",
    "ascii",
    "bin",
    "bytearray",
    "bytes",
    "classmethod",
    "dict",
    "enumerate",
    "filter",
    "format",
    "frozenset",
    "iter",
    "list",
    "map",
    "max",
    "min",
    "next",
    "NotImplemented",
    "object",
    "property",
    "reversed",
    "set",
    "sorted",
    "staticmethod",
    "sum",
    "super",
    "tuple",
    "type",
    "zip",
]
_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": operator.ipow,
    "<<=": operator.ilshift,
    ">>=": operator.irshift,
    "|=": operator.ior,
    "^=": operator.ixor,
    "&=": operator.iand,
    "@=": operator.imatmul,
}


class GuardViolation(Exception):
    """Raised when a guarded job does something the guard refuses."""


class ForbiddenImport(GuardViolation, ImportError):
    """An import outside the allowlist (an ImportError, so ``except ImportError`` works)."""


class ForbiddenAttribute(GuardViolation, AttributeError):
    """A refused attribute: ``_`` names, frame attributes, modules outside the allowlist."""


class ForbiddenWrite(GuardViolation, TypeError):
    """A write to a module."""


class ForbiddenName(GuardViolation, NameError):
    """A builtin the guard does not provide (``open``, ``vars``, ...)."""


# -- compile -------------------------------------------------------------------------


def _pure(node: ast.expr) -> bool:
    """An expression that may be evaluated twice: names, constants and their items/attributes."""
    if isinstance(node, (ast.Name, ast.Constant)):
        return True
    if isinstance(node, ast.Attribute):
        return _pure(node.value)
    if isinstance(node, ast.Subscript):
        return _pure(node.value) and _pure(node.slice)
    if isinstance(node, ast.Tuple):
        return all(_pure(e) for e in node.elts)
    if isinstance(node, ast.Slice):
        return all(p is None or _pure(p) for p in (node.lower, node.upper, node.step))
    if isinstance(node, ast.UnaryOp):
        return _pure(node.operand)
    return False


class JobPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy, plus three things ordinary analysis code does."""

    def visit_Name(self, node: ast.Name) -> ast.AST | Iterable[ast.AST] | None:
        # ``if __name__ == "__main__":`` reads a string the guard sets itself.
        if node.id == "__name__" and isinstance(node.ctx, ast.Load):
            return node
        return super().visit_Name(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        # ``x: int = 1`` and dataclass fields: target, annotation and value are
        # visited (and guarded) like any other code.
        return self.node_contents_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST | Iterable[ast.AST] | None:
        target = node.target
        if not isinstance(target, (ast.Attribute, ast.Subscript)) or not _pure(target):
            return super().visit_AugAssign(node)
        # ``t[k] += v`` -> ``_write_(t)[k] = _inplacevar_("+=", _getitem_(t, k), v)``: the
        # target is evaluated twice, which is why it must be free of side effects.
        current = copy.deepcopy(target)
        current.ctx = ast.Load()
        loaded = self.visit(current)
        value = self.visit(node.value)
        stored = self.visit(target)
        call = ast.Call(
            func=ast.Name("_inplacevar_", ast.Load()),
            args=[ast.Constant(IOPERATOR_TO_STR[type(node.op)]), loaded, value],
            keywords=[],
        )
        assign = ast.copy_location(ast.Assign(targets=[stored], value=call), node)
        return ast.fix_missing_locations(assign)


_RP_LINE = re.compile(r"^Line (\d+|None): (.*)$", re.DOTALL)


def compile_job(source: str, filename: str) -> tuple[types.CodeType | None, list[str]]:
    """Compile ``source`` restricted; return the code, or None and every finding as text."""
    result = compile_restricted_exec(source, filename, policy=JobPolicy)
    name = Path(filename).name
    findings: list[str] = []
    for error in result.errors:
        m = _RP_LINE.match(error)
        where = f"line {m.group(1)}" if m and m.group(1) != "None" else "somewhere"
        text = (m.group(2) if m else error).rstrip(".")
        if "starts with" in text:
            text += " -- use the public API instead of internals"
        elif text.startswith("Augmented assignment of"):
            text += " -- unless its target is plain names and constants; use `x = x + y`"
        finding = f"{name}, {where}: {text}"
        if finding not in findings:  # a rewritten ``t.x += 1`` reports its target twice
            findings.append(finding)
    return (result.code if not findings else None), findings


# -- the guards ----------------------------------------------------------------------


def module_allowed(name: str) -> bool:
    """A module a guarded job may import: the SDK or one under ``ALLOWED_MODULES``."""
    if name in (SDK, SDK_PACKAGE) or name.startswith(SDK_PACKAGE + "."):
        return True
    return name.partition(".")[0] in ALLOWED_MODULES


def _io_stand_in() -> types.ModuleType:
    stand_in = types.ModuleType("io", "In-memory streams only (the guard's stand-in for io).")

    def refuse(name: str) -> Any:
        raise ForbiddenAttribute(
            f"`io.{name}` is not available under the guard -- only io.StringIO and io.BytesIO"
        )

    vars(stand_in).update(StringIO=io.StringIO, BytesIO=io.BytesIO, __getattr__=refuse)
    return stand_in


_STAND_INS = {"io": _io_stand_in()}


def _no_module(value: object, what: str) -> None:
    if (
        isinstance(value, types.ModuleType)
        and value not in _STAND_INS.values()
        and not module_allowed(value.__name__)
    ):
        raise ForbiddenAttribute(
            f"{what} is the module `{value.__name__}`, which guarded jobs cannot use -- "
            "import what you need from the allowed modules"
        )


_MISSING = object()


def _check_attribute(obj: object, name: object) -> None:
    """The rules for an attribute name, read or written."""
    if not isinstance(name, str):
        raise TypeError("attribute name must be a string")
    if name.startswith("_"):
        raise ForbiddenAttribute(
            f"`{name}` starts with `_`; guarded jobs may not use names or attributes "
            "starting with an underscore -- use the public API instead of internals"
        )
    if name in INSPECT_ATTRIBUTES:
        raise ForbiddenAttribute(f"`{name}` reaches interpreter internals -- pass values instead")
    if isinstance(obj, types.ModuleType) and name in DENIED_ATTRIBUTES.get(obj.__name__, ()):
        raise ForbiddenAttribute(
            f"`{obj.__name__}.{name}` reaches attributes or code by a computed name -- "
            "write the access out"
        )


def guarded_getattr(obj: object, name: str, default: object = _MISSING) -> Any:
    """``obj.name`` for restricted code (also its ``getattr``); a missing attribute
    raises AttributeError unless a default is given, as in plain Python."""
    _check_attribute(obj, name)
    try:
        value = safer_getattr_raise(obj, name)  # type: ignore[no-untyped-call]
    except NotImplementedError as e:  # str.format and string.Formatter
        raise ForbiddenAttribute(f"{e} under the guard -- use an f-string") from None
    except AttributeError:
        if default is _MISSING:
            raise
        return default
    _no_module(value, f"`{name}`")
    return value


def guarded_hasattr(obj: object, name: str) -> bool:
    """``hasattr`` for restricted code: refused names raise instead of answering False."""
    try:
        guarded_getattr(obj, name)
    except GuardViolation:
        raise
    except AttributeError:
        return False
    return True


def guarded_getitem(obj: Any, key: Any) -> Any:
    """``obj[key]`` for restricted code."""
    value = obj[key]
    _no_module(value, "the item")
    return value


def guarded_write(obj: Any) -> Any:
    """The object restricted code assigns an attribute or item of: anything but a module."""
    if isinstance(obj, types.ModuleType):
        raise ForbiddenWrite("modules cannot be changed by a guarded job")
    return obj


def guarded_setattr(obj: object, name: str, value: object) -> None:
    _check_attribute(obj, name)
    setattr(guarded_write(obj), name, value)


def guarded_delattr(obj: object, name: str) -> None:
    _check_attribute(obj, name)
    delattr(guarded_write(obj), name)


def inplace(op: str, target: Any, value: Any) -> Any:
    """``target op= value`` (RestrictedPython's ``_inplacevar_``)."""
    if op not in _INPLACE:
        raise ForbiddenWrite(f"unknown augmented assignment {op!r}")
    return _INPLACE[op](target, value)


def apply(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``f(*args, **kwargs)`` (RestrictedPython's ``_apply_``)."""
    return function(*args, **kwargs)


def guarded_import(
    name: str,
    scope: object = None,
    local_scope: object = None,
    fromlist: Sequence[str] | None = (),
    level: int = 0,
) -> types.ModuleType:
    """``import`` for restricted code: only the allowlist, and ``from m import n``
    checked like ``m.n``."""
    if level != 0:
        raise ForbiddenImport("relative imports are not available: a guarded job is one file")
    if name in _STAND_INS:
        module = leaf = _STAND_INS[name]
    elif module_allowed(name):
        module = builtins.__import__(name, None, None, fromlist or (), 0)
        leaf = sys.modules[name]
    else:
        allowed = ", ".join(sorted([*ALLOWED_MODULES, "io", SDK]))
        raise ForbiddenImport(
            f"import of `{name}` is not allowed under the guard -- guarded jobs may import "
            f"{allowed}",
            name=name,
        )
    for item in fromlist or ():
        try:
            guarded_getattr(leaf, item)
        except GuardViolation:
            raise
        except AttributeError:
            pass  # the import statement itself reports a missing name
    return module


def _unavailable(name: str, instead: str) -> Callable[..., Any]:
    def refuse(*args: object, **kwargs: object) -> Any:
        raise ForbiddenName(f"`{name}` is not available under the guard -- {instead}")

    return refuse


class Printer:
    """``print`` for restricted code (``_print_``): straight to stdout, as in plain Python."""

    def __init__(self, getattr_hook: object = None) -> None:
        self.getattr_hook = getattr_hook

    def __call__(self) -> str:
        return ""  # ``printed``: the output went to stdout, not here

    def _call_print(self, *objects: object, **kwargs: Any) -> None:
        if kwargs.get("file") is None:
            kwargs["file"] = sys.stdout
        print(*objects, **kwargs)


def job_builtins() -> dict[str, Any]:
    """RestrictedPython's safe builtins, the plain ones analysis needs, and guarded ones."""
    names: dict[str, Any] = dict(safe_builtins)
    names.update({n: getattr(builtins, n) for n in _PLAIN_BUILTINS})
    names.update(
        __import__=guarded_import,
        getattr=guarded_getattr,
        hasattr=guarded_hasattr,
        setattr=guarded_setattr,
        delattr=guarded_delattr,
    )
    names.update({n: _unavailable(n, instead) for n, instead in UNAVAILABLE_BUILTINS.items()})
    return names


def job_globals() -> dict[str, Any]:
    """The module scope a guarded job runs in: builtins and RestrictedPython's hooks."""
    return {
        "__builtins__": job_builtins(),
        "__name__": "__main__",
        "__metaclass__": type,
        "_getattr_": guarded_getattr,
        "_getitem_": guarded_getitem,
        "_getiter_": iter,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_write_": guarded_write,
        "_inplacevar_": inplace,
        "_apply_": apply,
        "_print_": Printer,
    }


# -- run -----------------------------------------------------------------------------


def _job_line(error: BaseException, filename: str) -> int | None:
    """The last line of the job's own code the exception passed through."""
    line = None
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename == filename:
            line = frame.lineno
    return line


def _job_traceback(error: BaseException, filename: str) -> str:
    """The traceback from the job's first frame on (the guard's frames say nothing)."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb or error.__traceback__))


def run_restricted(script: Path, argv: Sequence[str] | None = None) -> int:
    """Compile ``script`` restricted and run it under the guards; return the exit status."""
    filename = str(script)
    try:
        source = script.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        print(f"guard: cannot read {script.name}: {e}", file=sys.stderr)
        return EXIT_FAILED
    code, findings = compile_job(source, filename)
    if code is None:
        for finding in findings:
            print(f"guard: {finding}", file=sys.stderr)
        return EXIT_FAILED
    sys.argv = list(argv) if argv is not None else [filename]
    try:
        exec(code, job_globals())  # noqa: S102 -- the restricted code object, with the guards
    except SystemExit as e:
        if e.code is None:
            return 0
        if isinstance(e.code, int):
            return e.code
        print(e.code, file=sys.stderr)
        return EXIT_FAILED
    except GuardViolation as e:
        line = _job_line(e, filename)
        where = f"line {line}" if line is not None else "somewhere"
        print(f"guard: {script.name}, {where}: {e}", file=sys.stderr)
        return EXIT_FAILED
    except BaseException as e:
        print(_job_traceback(e, filename), end="", file=sys.stderr)
        return EXIT_FAILED
    return 0
