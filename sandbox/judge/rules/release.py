"""What may be released without a reviewer, whatever the other rules found.

Rule of stage 5, from the policy's ``auto_release`` mode:

- ``sql_only`` (default): SQL products whose rules pass are released, a
  Python job's ``publish_query`` included (the trusted side runs it as an
  SQL product: source ``sql``);
- ``checked``: models the trusted side fitted itself from a Python job's
  ``publish_model`` specification (source ``recomputed``) are released too
  when every rule passes;
- ``never``: everything is reviewed.

Whatever the mode, an output touching a security level that the grading table
never auto-releases (important and core data by default; ``Thresholds.reviewed_level``,
set by ``sandbox.judge.grading``) is held for a security reviewer, the finding citing
the level's articles (001 art. 32-33; 004 art. 26).

Whatever a Python job's own code wrote (tables, models it fitted, figures,
text) is reviewed under every mode: no rule can prove that a cell of
arbitrary output is an aggregate of its group (it may be one person's value
inside a big group, a transform of it, an encoded pseudonym). Figures and
free text are reviewed anyway. An SQL product whose entities could not be
followed has no trusted evidence and is reviewed.
"""

from __future__ import annotations

from sandbox.judge.types import Context, Finding, Output, Verdict

AUTO_RELEASE = "auto_release"
EVIDENCE = "evidence_unavailable"


def auto_release(output: Output, ctx: Context) -> list[Finding]:
    """Which outputs a reviewer must see, by policy or grading, even when every rule passes."""
    return [*_graded_release(output, ctx), *_by_mode(output, ctx)]


def _graded_release(output: Output, ctx: Context) -> list[Finding]:
    """An output of a level the grading table never auto-releases goes to a reviewer."""
    level = ctx.thresholds.reviewed_level
    if level is None:
        return []
    return [
        Finding(
            AUTO_RELEASE,
            Verdict.REVIEW,
            output.file,
            f"the output derives from level-{level} data, which only a security reviewer "
            f"may release: {ctx.thresholds.review_basis}",
        )
    ]


def _by_mode(output: Output, ctx: Context) -> list[Finding]:
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
    if output.source == "python":
        return [
            Finding(
                AUTO_RELEASE,
                Verdict.REVIEW,
                output.file,
                "a file the job's own code wrote is released only after review; publish a "
                "query or a model specification to have it computed and released by the "
                "trusted side",
            )
        ]
    if output.source == "recomputed" and mode != "checked":
        return [
            Finding(
                AUTO_RELEASE,
                Verdict.REVIEW,
                output.file,
                "the policy releases models fitted by the trusted side only after review "
                "(auto_release: sql_only)",
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
