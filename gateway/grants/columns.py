"""Minimum necessary: the datasets and columns a grant (or a request for one) may name.

Stage: before data flow step 1 (issuing a grant, asking for one). A grant covers
exactly the columns it lists; each must exist in the dataset and be visible (not
``hidden``) under the dataset's current exposure policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gateway.grants.errors import GrantError
from sandbox.errors import PolicyError, RegistryError
from sandbox.intake.policy import PolicyStore, Visibility
from sandbox.intake.registry import Registry
from sandbox.views.build import DatasetScope


def check_scopes(
    registry: Registry, policies: PolicyStore, scopes: Iterable[tuple[str, Sequence[str]]]
) -> tuple[DatasetScope, ...]:
    """The scopes, checked: known datasets, each listed column exists and is not hidden.

    Rule: a grant (or a request for one) names only columns its dataset's
    current exposure policy lets out, each at most once. Raises GrantError.
    """
    checked: dict[str, DatasetScope] = {}
    for dataset, columns in scopes:
        if dataset in checked:
            raise GrantError(f"dataset {dataset!r} is listed twice")
        try:
            registry.get(dataset)
            policy = policies.get(dataset).policy
        except (RegistryError, PolicyError) as e:
            raise GrantError(f"dataset {dataset!r} cannot be granted: {e}") from e
        if not columns:
            raise GrantError(f"name the columns of {dataset!r} the scenario needs (none listed)")
        if len(set(columns)) != len(columns):
            raise GrantError(f"a column of {dataset!r} is listed twice")
        for column in columns:
            col = policy.columns.get(column)
            if col is None:
                raise GrantError(f"dataset {dataset!r} has no column {column!r}")
            if col.visibility == Visibility.HIDDEN:
                raise GrantError(
                    f"column {dataset}.{column} is hidden by the exposure policy: "
                    "it cannot be granted"
                )
        checked[dataset] = DatasetScope(dataset, tuple(sorted(columns)))
    if not checked:
        raise GrantError("a grant covers at least one dataset")
    return tuple(checked[d] for d in sorted(checked))
