"""Response bodies of the catalogue routes: schemas only, never a real value or count."""

from __future__ import annotations

from pydantic import BaseModel

from sandbox.views.build import View


class ColumnOut(BaseModel):
    name: str
    type: str  # DuckDB type of the column as the view holds it (after generalisation)
    column_class: str  # identifier, quasi_identifier, sensitive or attribute
    level: int | str  # the security level (分类分级)
    visibility: str  # the policy's, or "entity" for the pseudonymised entity column
    generalised: str | None  # how a group key is generalised, if it is


class ViewOut(BaseModel):
    grant: str
    name: str  # the view's name in the sandbox (/data/<name>.parquet)
    dataset: str
    dataset_version: str
    policy_version: str
    entity_column: str
    k: int  # minimum distinct entities per released cell
    columns: list[ColumnOut]

    @classmethod
    def of(cls, grant_id: str, view: View) -> ViewOut:
        return cls(
            grant=grant_id,
            name=view.name,
            dataset=view.dataset,
            dataset_version=view.dataset_version,
            policy_version=view.policy_version,
            entity_column=view.entity_column,
            k=view.k,
            columns=[
                ColumnOut(
                    name=c.name,
                    type=c.type,
                    column_class=c.column_class,
                    level=c.level,
                    visibility=c.visibility,
                    generalised=c.generalised,
                )
                for c in view.columns
            ],
        )
