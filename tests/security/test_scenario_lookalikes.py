"""An operator against "one scenario, one authorization": a second grant under a name
that only looks different.

The rules give an operator one authorization per application scenario; the
grant service refused a second live grant for the same scenario by comparing
the names as strings. ``Elderly Care Planning``, a Cyrillic ``\\u0430`` for the
Latin ``a``, full-width letters or a compatibility ligature made a "new"
scenario, and so a second grant beside a suspended one (its stop bypassed)
or a wider one beside a narrow one. Now names are compared as people read them
(``gateway.names``: NFKC, case folding, invisible characters dropped, Unicode's
confusable skeleton); the name is stored as written.

Real pieces: the grant service on SQLite, and the REST flow from a data
request to its supply. On the code before this, the first look-alike was
issued a second grant (no GrantConflict).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.grants.errors import GrantConflict
from tests.support.gateway import Gateway, make_gateway
from tests.support.grants import COLUMNS, issue, register_dataset

SCENARIO = "elderly care planning"
LOOKALIKES = {
    "case": "Elderly Care PLANNING",
    "cyrillic a": "elderly c\u0430re planning",  # CYRILLIC SMALL LETTER A
    "cyrillic e": "\u0435lderly care planning",  # CYRILLIC SMALL LETTER IE
    "full-width letters": "\uff45\uff4c\uff44\uff45\uff52\uff4c\uff59 care planning",
    "capital I for l": "EIderly care pIanning",
    "zero-width space": "elderly care\u200b planning",
    "no-break and ideographic spaces": "elderly\u00a0care\u3000planning",
    "soft hyphen": "elder\u00adly care planning",
    "combining grapheme joiner": "elderly care planning\u034f",
    "latin alpha, roman fifty, cyrillic i": "elderly c\u0251re p\u217cann\u0456ng",
}
COMPAT = {  # a scenario, and an NFKC compatibility form of it
    "ligature fi": ("financial profile", "\ufb01nancial pro\ufb01le"),
    "circled digit": ("financial profile 1", "financial profile \u2460"),
    "mathematical bold": ("financial profile", "\U0001d41finan\U0001d41cial profile"),
    "superscript": ("area 2", "area \u00b2"),
}


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Gateway]:
    with make_gateway(tmp_path / "var") as gw:
        register_dataset(gw.app, "people", "provider")
        yield gw


@pytest.mark.parametrize("name", list(LOOKALIKES.values()), ids=list(LOOKALIKES))
def test_a_lookalike_of_a_live_scenario_is_the_same_scenario(gw: Gateway, name: str) -> None:
    first = issue(gw.app, scenario=SCENARIO)
    with pytest.raises(GrantConflict, match="one scenario, one authorization"):
        issue(gw.app, scenario=name)
    # While the first grant is suspended too (the stop is not bypassed).
    r = gw.post("provider", f"/v1/grants/{first.id}/suspend", json={"reason": "rectification"})
    assert r.status_code == 200, r.text
    with pytest.raises(GrantConflict, match="one scenario, one authorization"):
        issue(gw.app, scenario=name)


@pytest.mark.parametrize(("base", "name"), list(COMPAT.values()), ids=list(COMPAT))
def test_compatibility_forms_are_the_same_scenario(gw: Gateway, base: str, name: str) -> None:
    issue(gw.app, scenario=base)
    with pytest.raises(GrantConflict, match="one scenario, one authorization"):
        issue(gw.app, scenario=name)


def test_the_name_is_kept_as_written_and_other_scenarios_pass(gw: Gateway) -> None:
    from gateway.names import same_name

    written = "\uff25lderly care planning"  # a full-width E, as the operator typed it
    g = issue(gw.app, scenario=written)
    assert g.scenario == written
    other = issue(gw.app, scenario="elderly care staffing")
    assert other.scenario == "elderly care staffing"
    assert not same_name("mail", "mall") and not same_name("elder care", "elderly care")
    # Ended grants free their scenario: a revoked one can be granted again.
    r = gw.post("admin", f"/v1/grants/{g.id}/revoke", json={"reason": "terminated"})
    assert r.status_code == 200
    assert issue(gw.app, scenario=SCENARIO).state == "active"


def test_supplying_a_request_for_a_lookalike_scenario_is_refused(gw: Gateway) -> None:
    issue(gw.app, scenario=SCENARIO)
    body = {"scenario": LOOKALIKES["cyrillic a"], "purpose": "more columns",
            "content": "age, income", "use": "statistics",
            "datasets": [{"dataset": "people", "columns": list(COLUMNS)}]}  # fmt: skip
    made = gw.post("operator", "/v1/requests", json=body)
    assert made.status_code == 201, made.text  # asking is allowed (a renewal is asked early)
    rid = made.json()["id"]
    formal = gw.post("admin", f"/v1/requests/{rid}/formal-review", json={"decision": "pass"})
    assert formal.status_code == 200, formal.text
    approved = gw.post("provider", f"/v1/requests/{rid}/provider-review",
                       json={"decision": "approve"})  # fmt: skip
    assert approved.status_code == 200, approved.text
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    refused = gw.post("provider", f"/v1/requests/{rid}/supply", json={"valid_until": until})
    assert refused.status_code == 409, refused.text
    assert "one scenario, one authorization" in refused.json()["detail"]
    still = gw.get("operator", f"/v1/requests/{rid}").json()
    assert still["state"] == "provider_approved" and still["grant_id"] is None
