"""Models whose parameters could restore their rows are held.

Rule of stage 5. A model summary (coefficients, standard errors, n,
residual degrees of freedom) is held for review when its residual degrees of
freedom are under the policy's ``min_df`` (default 10, as ACRO and SACRO
use), or when it has more parameters than ``max_params_fraction`` of its
observations: with few rows per parameter, coefficients can be solved back
to the rows. The summary's own numbers are checked against each other.
A model the trusted side fitted (``publish_model``) also states the fewest
entities behind a level of a categorical term and the entities it was
fitted on: under ``k`` either way, it FAILS (a coefficient of a one-person
level is that person's value, shifted); and its largest leverage (hat
value): above ``MAX_LEVERAGE`` one row nearly fixes its own fitted value,
as an indicator of one firm does, and the model FAILS.
"""

from __future__ import annotations

from sandbox.judge.types import Context, Finding, Output, Verdict

MODEL_DOF = "model_dof"
MAX_LEVERAGE = 0.5  # a row's hat value above this: it nearly determines its own fit


def model_disclosure(output: Output, ctx: Context) -> list[Finding]:
    """A model has at least ``min_df`` residual degrees of freedom and few parameters per row."""
    if output.kind != "model":
        return []
    doc = output.model
    if not isinstance(doc, dict):
        return [Finding(MODEL_DOF, Verdict.FAIL, output.file, "the model summary is unreadable")]
    coefficients = doc.get("coefficients")
    n, df = doc.get("n"), doc.get("df_resid")
    if (
        not isinstance(coefficients, dict)
        or not isinstance(n, int)
        or not isinstance(df, int)
        or isinstance(n, bool)
        or isinstance(df, bool)
    ):
        return [
            Finding(
                MODEL_DOF,
                Verdict.FAIL,
                output.file,
                "the model summary lacks coefficients, n or residual degrees of freedom",
            )
        ]
    t = ctx.thresholds
    params = len(coefficients)
    findings = []
    if df < t.model_min_df:
        findings.append(
            Finding(
                MODEL_DOF,
                Verdict.REVIEW,
                output.file,
                f"the model has {df} residual degrees of freedom; at least {t.model_min_df} "
                "are required for automatic release",
            )
        )
    if params > t.model_max_params_fraction * n:
        findings.append(
            Finding(
                MODEL_DOF,
                Verdict.REVIEW,
                output.file,
                f"the model has {params} parameters for {n} observations (more than "
                f"{t.model_max_params_fraction:.0%}): its coefficients could restore rows",
            )
        )
    smallest = doc.get("min_level_entities", doc.get("min_level_rows"))
    if isinstance(smallest, int) and not isinstance(smallest, bool) and smallest < t.k:
        findings.append(
            Finding(
                MODEL_DOF,
                Verdict.FAIL,
                output.file,
                "a level of a categorical term comes from fewer than k entities: its "
                "coefficient could restore their values",
            )
        )
    leverage = doc.get("max_leverage")
    if isinstance(leverage, int | float) and not isinstance(leverage, bool):
        if leverage > MAX_LEVERAGE:
            findings.append(
                Finding(
                    MODEL_DOF,
                    Verdict.FAIL,
                    output.file,
                    "one row all but fixes its own fitted value (leverage): the coefficients "
                    "could give it back",
                )
            )
    elif output.source == "recomputed":
        findings.append(
            Finding(
                MODEL_DOF,
                Verdict.REVIEW,
                output.file,
                "the leverage of the model's rows could not be computed",
            )
        )
    everyone = doc.get("entities")
    if isinstance(everyone, int) and not isinstance(everyone, bool) and everyone < t.k:
        findings.append(
            Finding(
                MODEL_DOF,
                Verdict.FAIL,
                output.file,
                "the model is fitted on fewer than k entities",
            )
        )
    if df + params > n + 1 or df < 0:
        findings.append(
            Finding(
                MODEL_DOF,
                Verdict.REVIEW,
                output.file,
                "the model's n, parameters and degrees of freedom do not agree",
            )
        )
    return findings
