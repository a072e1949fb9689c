"""What may be released without a reviewer, whatever the other rules found.

Rule of stage 5, from the policy's ``auto_release`` mode:

- ``sql_only`` (default): SQL products whose checks pass are released; every
  Python output is held for review (its counts come from untrusted code);
- ``checked``: Python tables and models that pass every rule are released
  too;
- ``never``: everything is reviewed.

Figures and free text are always reviewed: no rule can read them. An SQL
product whose entities could not be followed has no trusted evidence and
is reviewed.
"""

from __future__ import annotations

from sandbox.checks.model import Context, Finding, Output, Verdict

AUTO_RELEASE = "auto_release"
EVIDENCE = "evidence_unavailable"


def auto_release(output: Output, ctx: Context) -> list[Finding]:
    """Which outputs a reviewer must see, by policy, even when every rule passes."""
    mode = ctx.thresholds.auto_release
    if output.kind in ("figure", "text"):
        what = "a figure" if output.kind == "figure" else "free text"
        return [Finding(AUTO_RELEASE, Verdict.REVIEW, output.file, f"{what} is always reviewed")]
    if mode == "never":
        return [
            Finding(
                AUTO_RELEASE,
                Verdict.REVIEW,
                output.file,
                "the policy reviews every output (auto_release: never)",
            )
        ]
    if output.source == "python" and mode != "checked":
        return [
            Finding(
                AUTO_RELEASE,
                Verdict.REVIEW,
                output.file,
                "the policy releases Python outputs only after review (auto_release: sql_only); "
                "their counts come from the job's own code",
            )
        ]
    if output.source == "sql" and output.kind == "table" and output.evidence is None:
        return [
            Finding(
                EVIDENCE,
                Verdict.REVIEW,
                output.file,
                "the query's entities could not be followed to its rows, so group sizes "
                "are not known to trusted code",
            )
        ]
    return []
