"""The scope policy (Casbin): may this operator, under this grant, use this data for this action?

Stage: data flow step 1 (at submission, every dataset and column the job
needs) and step 5 (at release, every column each output derives from). The
model is ``policies/model.conf``; its comments define objects, actions and
patterns (``gateway.scope.objects``).

Invariants:

- Deny by default: a request no policy line allows is denied; one deny line
  beats any allow line; a malformed request is denied before Casbin sees it
  (so no request can carry a "*" pattern).
- Every ``Decision`` carries its reason: the policy line that decided it
  (Casbin's ``enforce_ex``), or "no rule matched: denied by default", or why
  the request was malformed. The caller writes it to the audit log.
- Policy lines are checked when loaded and when written: a line this module
  would refuse to write stops the load (fail fast).
- Minimum necessary: ``grant_rules`` writes exactly the grant's datasets and
  columns, one line per object and action, nothing wider.
- Suspension is an explicit deny line per action (object "*"), not a removal:
  the grant's scope stays in place for ``resume``, and every decision taken
  while suspended names the deny line as its reason. Revocation removes every
  line of the grant.
- Thread-safe: one lock around every decision and change. Casbin's
  ``FastPolicy`` filter is state on the shared policy object, so two
  unguarded decisions in parallel threads could see each other's lines.

Cost: a plain ``casbin.Enforcer`` evaluates the matcher on every line (tens of
decisions per second at 10,000 lines). Here Casbin's ``FastEnforcer`` indexes
the lines by (grant, action) and each decision evaluates only that grant's
lines for that action; decisions are also memoised (per policy object) until
the next change. ``benchmarks/scope_enforce.py`` measures both.

Several gateway processes each hold the policy in memory. Over the store,
every change bumps a revision in its transaction (``gateway.scope.store``);
each decision call first compares the revision its memory holds with the
committed one (one single-row read) and reloads when they differ, so a
grant supplied, suspended or revoked in one process is in force in every
other at its next decision.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import casbin  # type: ignore[import-untyped]  # pycasbin ships no type hints
from casbin.model import fast_policy_filter  # type: ignore[import-untyped]
from casbin.persist.adapters import FileAdapter  # type: ignore[import-untyped]
from sqlalchemy import Engine

from gateway.scope.errors import ScopeDenied, ScopeRuleError, ScopeStoreError
from gateway.scope.lines import check_lines, grant_lines
from gateway.scope.objects import (
    ACTIONS,
    BAD_DATASET,
    EVERYTHING,
    NO_MATCH,
    Decision,
    Rule,
    column_object,
    dataset_object,
    is_suspension,
    request_problem,
    rule_problem,
)
from gateway.scope.store import ScopeRuleAdapter
from sandbox.intake.registry import NAME_RE as DATASET_NAME_RE

if TYPE_CHECKING:
    from sandbox.views.build import DatasetScope

log = logging.getLogger("dsr.gateway.scope")

POLICIES = Path(__file__).resolve().parents[2] / "policies"
MODEL_PATH = POLICIES / "model.conf"
DEFAULT_POLICY_PATH = POLICIES / "default_scope.csv"

# FastEnforcer's index: positions in the request (sub, grant, obj, act) and in
# a line (sub, grant, obj, act, eft) alike. (grant, act) and not (sub, grant):
# a grant id names one operator already, so the action narrows the lines
# further (by the number of actions granted; 1.3x faster in the benchmark).
# Two keys, no more: FastPolicy's unfiltered iteration (get_policy, saving)
# assumes an index two levels deep. The object cannot be a key: pattern lines
# ("*", "column:*") would then never be looked at.
CACHE_KEY_ORDER = (1, 3)

T = TypeVar("T")


class ScopePolicy:
    """The scope policy: Casbin's model file plus the lines an adapter holds.

    Build it with ``from_file`` (tests, a fresh install: changes stay in
    memory) or ``from_engine`` (the gateway's store: every change is written
    through, in one transaction per call).
    """

    def __init__(
        self, adapter: Any, *, model_path: Path = MODEL_PATH, memo_size: int = 65_536
    ) -> None:
        self._lock = threading.RLock()
        self._memo: dict[tuple[str, str, str, str], Decision] = {}
        self._memo_size = memo_size
        self._adapter = adapter
        with self._lock:
            self._enforcer: Any = casbin.FastEnforcer(
                str(model_path), adapter, cache_key_order=CACHE_KEY_ORDER
            )
            # This class writes the store itself, before memory (see _add).
            self._enforcer.enable_auto_save(False)
            self._check_loaded()

    @classmethod
    def from_file(cls, path: Path = DEFAULT_POLICY_PATH, **kwargs: Any) -> ScopePolicy:
        """Lines from a CSV file (``p, sub, grant, obj, act, eft``); changes are not saved."""
        return cls(FileAdapter(str(path)), **kwargs)

    @classmethod
    def from_engine(cls, engine: Engine, **kwargs: Any) -> ScopePolicy:
        """Lines from the store's ``scope_rules`` table; changes are written through."""
        return cls(ScopeRuleAdapter(engine), **kwargs)

    def reload(self) -> None:
        """Read every line again from the adapter (another process may have changed them)."""
        with self._lock:
            self._memo.clear()
            self._enforcer.load_policy()
            self._check_loaded()

    def _sync(self) -> None:
        """Reload if the store's lines are at another revision than memory (under the lock).

        Where the store cannot be read, the lines in memory decide: the caller's
        own store access fails just the same, and the grant's state, read from
        the store on every use, still stops a suspended or revoked grant."""
        current = getattr(self._adapter, "current_revision", None)
        if current is None:
            return  # a file: nobody else changes it
        try:
            if current() == self._adapter.loaded_revision:
                return
            self.reload()
        except ScopeRuleError:
            raise
        except Exception:
            log.warning("the scope lines could not be re-read; deciding on those in memory")

    def _check_loaded(self) -> None:
        problems = [
            f"{', '.join(map(str, line))}: {problem}"
            for line in self._enforcer.get_policy()
            if (problem := rule_problem(line))
        ]
        if problems:
            self._enforcer.clear_policy()  # a refused policy must not stay half in force
            raise ScopeRuleError("invalid scope policy lines:\n  - " + "\n  - ".join(problems))

    # -- decisions --------------------------------------------------------------

    def decide(self, subject: str, grant_id: str, obj: str, action: str) -> Decision:
        """May ``subject``, under ``grant_id``, use ``obj`` for ``action``? Never raises."""
        with self._lock:
            self._sync()
            return self._decide(subject, grant_id, obj, action)

    def decide_many(
        self, subject: str, grant_id: str, objects: Iterable[str], action: str
    ) -> list[Decision]:
        """One decision per distinct object (first-seen order): a job's full lineage."""
        with self._lock:
            self._sync()
            return [self._decide(subject, grant_id, o, action) for o in dict.fromkeys(objects)]

    def check_access(self, subject: str, grant_id: str, obj: str, action: str) -> Decision:
        """Rule: a subject uses an object only where a grant line allows it and none denies.

        Returns the decision; raises ``ScopeDenied`` if it is a denial.
        """
        decision = self.decide(subject, grant_id, obj, action)
        if not decision.allowed:
            raise ScopeDenied([decision])
        return decision

    def can_access(self, subject: str, grant_id: str, obj: str, action: str) -> bool:
        """Rule: a subject uses an object only where a grant line allows it and none denies."""
        return self.decide(subject, grant_id, obj, action).allowed

    def check_job_scope(
        self,
        subject: str,
        grant_id: str,
        columns: Iterable[tuple[str, str | None]],
        action: str,
    ) -> list[Decision]:
        """Rule: every (dataset, column) a job uses is within its grant for the action.

        A column of None asks for the dataset object itself (a view read
        without naming columns, as in ``count(*)``). Returns every decision;
        raises ``ScopeDenied`` (holding them all) if any is a denial, or if
        ``columns`` is empty: nothing asked is nothing allowed.
        """
        decisions = self._job_decisions(subject, grant_id, columns, action)
        if not decisions or not all(d.allowed for d in decisions):
            raise ScopeDenied(decisions)
        return decisions

    def can_job_scope(
        self,
        subject: str,
        grant_id: str,
        columns: Iterable[tuple[str, str | None]],
        action: str,
    ) -> bool:
        """Rule: every (dataset, column) a job uses is within its grant for the action."""
        decisions = self._job_decisions(subject, grant_id, columns, action)
        return bool(decisions) and all(d.allowed for d in decisions)

    def _job_decisions(
        self,
        subject: str,
        grant_id: str,
        columns: Iterable[tuple[str, str | None]],
        action: str,
    ) -> list[Decision]:
        with self._lock:
            self._sync()
            decisions = []
            for dataset, column in dict.fromkeys(columns):
                obj = dataset_object(dataset) if column is None else column_object(dataset, column)
                if isinstance(dataset, str) and DATASET_NAME_RE.fullmatch(dataset):
                    decisions.append(self._decide(subject, grant_id, obj, action))
                else:  # checked here: "d/column:c" would make a valid-looking object
                    decisions.append(_malformed(subject, grant_id, obj, action, BAD_DATASET))
            return decisions

    def _decide(self, subject: str, grant_id: str, obj: str, action: str) -> Decision:
        problem = request_problem(subject, grant_id, obj, action)
        if problem:
            return _malformed(subject, grant_id, obj, action, problem)  # never memoised
        key = (subject, grant_id, obj, action)
        memo = self._memo.get(key)
        if memo is not None:
            return memo
        policy = self._enforcer.model.model["p"]["p"].policy
        with fast_policy_filter(policy, *(key[i] for i in CACHE_KEY_ORDER)):
            allowed, line = self._enforcer.enforce_ex(subject, grant_id, obj, action)
        reason = tuple(str(v) for v in line) if line else (NO_MATCH,)
        decision = Decision(bool(allowed), subject, grant_id, obj, action, reason)
        if len(self._memo) >= self._memo_size:
            self._memo.clear()
        if self._memo_size > 0:
            self._memo[key] = decision
        return decision

    # -- changes ----------------------------------------------------------------

    def rules(self, grant_id: str | None = None) -> list[Rule]:
        """Every line (of one grant, if given), sorted."""
        with self._lock:
            self._sync()
            if grant_id is None:
                lines = self._enforcer.get_policy()
            else:
                lines = self._enforcer.get_filtered_policy(1, grant_id)
            return sorted(Rule(*line) for line in lines)

    def grant_rules(
        self,
        grant_id: str,
        operator: str,
        scopes: Iterable[DatasetScope],
        actions: Iterable[str],
    ) -> list[Rule]:
        """Make the grant's allow lines exactly its datasets and columns, for each action.

        One line per dataset object and per column object, per action: never
        a pattern. Allow lines of the grant outside that set are removed (an
        amended grant narrows at once); deny lines (a suspension) stay.
        Idempotent. Returns the grant's allow lines.
        """
        wanted = grant_lines(grant_id, operator, scopes, actions)

        def change() -> list[Rule]:
            present = self.rules(grant_id)
            others = {r.subject for r in present} - {operator}
            if others:
                raise ScopeRuleError(f"grant {grant_id} has lines of another operator")
            stale = [r for r in present if r.effect == "allow" and r not in wanted]
            self._remove(stale)  # first: if the add then fails, the grant is narrower
            had = set(present)
            self._add([r for r in wanted if r not in had])
            return sorted(wanted)

        return self._change(change)

    def revoke_rules(self, grant_id: str) -> list[Rule]:
        """Remove every line of the grant (allow and deny). Returns the removed lines."""

        def change() -> list[Rule]:
            present = self.rules(grant_id)
            self._remove(present)
            return present

        return self._change(change)

    def suspend(self, grant_id: str) -> list[Rule]:
        """Deny everything under the grant, for every action, until ``resume``.

        Explicit deny lines (object "*"), not removal: the scope stays for
        ``resume``, and decisions while suspended name the deny line. Returns
        the grant's suspension lines. Idempotent.
        """

        def change() -> list[Rule]:
            present = self.rules(grant_id)
            if not present:
                raise ScopeRuleError(f"grant {grant_id} has no lines: nothing to suspend")
            lines = [
                Rule(subject, grant_id, EVERYTHING, action, "deny")
                for subject in sorted({r.subject for r in present})
                for action in ACTIONS
            ]
            had = set(present)
            self._add([r for r in lines if r not in had])
            return lines

        return self._change(change)

    def resume(self, grant_id: str) -> list[Rule]:
        """Remove the grant's suspension lines (other deny lines stay). Returns them."""

        def change() -> list[Rule]:
            lines = [r for r in self.rules(grant_id) if is_suspension(r)]
            self._remove(lines)
            return lines

        return self._change(change)

    def is_suspended(self, grant_id: str) -> bool:
        """Whether the grant holds a suspension line."""
        return any(is_suspension(r) for r in self.rules(grant_id))

    def add_rules(self, rules: Iterable[Sequence[str]]) -> list[Rule]:
        """Add checked lines as they are (administration: patterns, explicit denies)."""
        given = [tuple(r) for r in rules]
        if not all(len(r) == 5 for r in given):
            raise ScopeRuleError("a line has five fields: sub, grant, obj, act, eft")
        lines = dict.fromkeys(Rule(*r) for r in given)
        check_lines(lines)

        def change() -> list[Rule]:
            present = set(self.rules())
            added = [r for r in lines if r not in present]
            self._add(added)
            return added

        return self._change(change)

    # The store is written first, in one transaction, then memory: if the
    # store fails, nothing changed anywhere. (Casbin's auto-save would change
    # memory first on removals: a failed resume would then be in force here
    # and not in the store.)

    def _add(self, lines: list[Rule]) -> None:
        if not lines:
            return
        rows = [list(r) for r in lines]
        try:
            self._adapter.add_policies("p", "p", rows)
        except Exception as e:
            raise ScopeStoreError(f"the store refused {len(rows)} new scope lines") from e
        if not self._enforcer.add_policies(rows):
            self._enforcer.load_policy()  # memory disagreed with the store: the store wins
            raise ScopeRuleError("the policy in memory already held some of the new lines")

    def _remove(self, lines: list[Rule]) -> None:
        # Never Casbin's remove_filtered_policy: its in-memory model replaces
        # FastEnforcer's indexed policy by a plain list, which breaks lookups.
        if not lines:
            return
        rows = [list(r) for r in lines]
        try:
            self._adapter.remove_policies("p", "p", rows)
        except Exception as e:
            raise ScopeStoreError(f"the store refused to remove {len(rows)} scope lines") from e
        if not self._enforcer.remove_policies(rows):
            self._enforcer.load_policy()
            raise ScopeRuleError("the policy in memory did not hold the lines to remove")

    def _change(self, change: Callable[[], T]) -> T:
        with self._lock:
            self._sync()  # a change computed on stale lines would write the wrong ones
            try:
                return change()
            finally:
                self._memo.clear()  # memo entries are only made under this lock


def _malformed(subject: str, grant: str, obj: str, action: str, problem: str) -> Decision:
    return Decision(False, subject, grant, obj, action, (f"malformed request: {problem}",))
