"""Data-quality feedback through the REST API, on both stores (001 art. 29, 002 art. 25):
an operator files on a dataset it holds or held a grant for, in bounded plain text
naming columns; the dataset's provider answers and marks; each party reads only what
it may; every step is audited and told once (notices)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.access import ORGANISATIONS_AND_FEEDBACK
from tests.support.grants_world import World, issue, make_world
from tests.support.organisations import ROLES, check_access, events, notice_rows

FEEDBACK = "/v1/feedback"
BODY = {
    "dataset": "people",
    "title": "年龄字段存在超出合理范围的取值",
    "description": "Some ages are above 150; the age column seems to mix birth years in.",
    "columns": ["income", "age", "age"],
}


@pytest.fixture
def world(store_url: str, tmp_path: Path) -> Iterator[World]:
    yield from make_world(store_url, tmp_path)


def file(w: World, who: str = "operator", **body: Any) -> Any:
    return w.client.post(FEEDBACK, headers=w.headers(who), json=BODY | body)


def answer(w: World, issue_id: str, who: str = "provider", **body: Any) -> Any:
    text = {"text": "We checked the source table; the birth years will be moved."}
    return w.client.post(f"{FEEDBACK}/{issue_id}/answers", headers=w.headers(who),
                         json=text | body)  # fmt: skip


def ids(w: World, who: str, **query: str) -> list[str]:
    got = w.client.get(FEEDBACK, headers=w.headers(who), params=query)
    assert got.status_code == 200, got.text
    return [i["id"] for i in got.json()]


def test_the_access_matrix(world: World) -> None:
    table = {k: v for k, v in ORGANISATIONS_AND_FEEDBACK.items() if k[1].startswith(FEEDBACK)}
    headers = {r: world.headers(r) for r in ROLES}
    check_access(world.client, headers, table, {"issue_id": "fb-none"})


def test_an_operator_files_only_on_data_it_was_granted_and_never_quotes_values(
    world: World,
) -> None:
    w = world
    never = file(w)
    assert never.status_code == 403 and "never held a grant" in never.json()["detail"]
    grant = issue(w)  # operator-1 on people
    made = file(w)
    assert made.status_code == 201, made.text
    filed = made.json()
    assert (filed["dataset"], filed["operator"], filed["state"]) == ("people", "operator-1", "open")
    assert filed["columns"] == ["age", "income"] and filed["answers"] == []
    assert file(w, dataset="tax").status_code == 403  # provider-2's, never granted

    refused = {
        "unknown column": {"columns": ["age", "salary"]},
        "quoted identity number": {"description": "Row of 110101199001010007 has age 300."},
        "quoted phone in title": {"title": "13800138000 is wrong"},
        "title on two lines": {"title": "age\nincome"},
        "control character": {"description": "bad \x07 bell"},
        "title too long": {"title": "x" * 121},
        "description too long": {"description": "y" * 2001},
        "blank": {"description": "   "},
    }
    for why, body in refused.items():
        got = file(w, **body)
        assert got.status_code == 422, (why, got.text)
    quoted = file(w, description="Row of 110101199001010007 has age 300.")
    assert "never by quoting values" in quoted.json()["detail"]

    # A grant that ended still lets its operator report what it saw.
    revoked = w.client.post(f"/v1/grants/{grant.id}/revoke", headers=w.headers("provider"),
                            json={"reason": "term ended early"})  # fmt: skip
    assert revoked.status_code == 200, revoked.text
    assert file(w, title="Income has gaps").status_code == 201

    filings = events(w.engine, "feedback.filed")
    assert [(e["actor"], e["datasets"], e["columns"]) for e in filings] == [
        ("operator-1", ["people"], ["age", "income"]),
        ("operator-1", ["people"], ["age", "income"]),
    ]
    assert all(BODY["description"] not in str(e) for e in filings)  # ids, never the text
    assert notice_rows(w.engine, f"feedback:{filed['id']}") == [
        (f"feedback:{filed['id']}:filed", "account:provider-1", "feedback.filed"),
        (f"feedback:{filed['id']}:filed", "role:admin", "feedback.filed"),
    ]
    told = w.client.get("/v1/notices", headers=w.headers("provider")).json()
    assert f"feedback:{filed['id']}:filed" in [n["key"] for n in told]
    others = w.client.get("/v1/notices", headers=w.headers("provider-2")).json()
    assert not [n for n in others if n["key"].startswith("feedback:")]


def test_the_provider_answers_and_each_party_reads_only_its_own(world: World) -> None:
    w = world
    issue(w)  # operator-1 on people (provider-1)
    issue(w, dataset="tax", operator="operator-2", scenario="tax planning")  # provider-2
    mine = file(w).json()["id"]
    theirs = file(w, "operator-2", dataset="tax", title="Tax income lags a year").json()["id"]

    assert ids(w, "operator") == [mine]
    assert ids(w, "operator-2") == [theirs]
    assert ids(w, "provider") == [mine]
    assert ids(w, "provider-2") == [theirs]
    assert sorted(ids(w, "admin")) == sorted([mine, theirs])
    assert ids(w, "admin", dataset="tax") == [theirs]
    for who in ("operator-2", "provider-2"):
        assert w.client.get(f"{FEEDBACK}/{mine}", headers=w.headers(who)).status_code == 404
    assert w.client.get(f"{FEEDBACK}/{mine}", headers=w.headers("admin")).status_code == 200

    # Only the dataset's provider answers.
    assert answer(w, mine, "provider-2").status_code == 404  # not theirs to read
    assert answer(w, mine, "operator").status_code == 403
    assert answer(w, mine, "admin").status_code == 403
    assert answer(w, mine, text="see row 110101199001010007").status_code == 422

    first = answer(w, mine)
    assert first.status_code == 201, first.text
    assert first.json()["state"] == "answered"
    assert answer(w, mine, mark="will_correct").json()["state"] == "will_correct"
    late = answer(w, mine, mark="not_an_issue")
    assert late.status_code == 409, late.text  # it was accepted as a problem
    done = answer(w, mine, text="Corrected in version 2.", mark="resolved")
    assert done.json()["state"] == "resolved"
    assert [a["state"] for a in done.json()["answers"]] == ["answered", "will_correct", "resolved"]
    assert answer(w, mine).status_code == 409  # resolved is final
    assert ids(w, "operator", state="resolved") == [mine]
    shown = w.client.get(f"{FEEDBACK}/{mine}", headers=w.headers("operator")).json()
    assert shown["answers"][-1]["text"] == "Corrected in version 2."

    moves = [(e["actor"], e["feedback"], e["from"], e["to"]) for e in events(w.engine,
             "feedback.state")]  # fmt: skip
    assert moves == [
        ("provider-1", mine, "open", "answered"),
        ("provider-1", mine, "answered", "will_correct"),
        ("provider-1", mine, "will_correct", "resolved"),
    ]
    # Each answer told to the operator once; nothing to anyone else.
    told = notice_rows(w.engine, f"feedback:{mine}:answer:")
    assert [(audience, kind) for _, audience, kind in told] == [
        ("account:operator-1", "feedback.answered")
    ] * 3
    assert len({key for key, _, _ in told}) == 3
    sent = [e for e in events(w.engine, "notice.sent") if e["key"].startswith(f"feedback:{mine}")]
    assert len(sent) == 4  # filed once, three answers
    notices = w.client.get("/v1/notices", headers=w.headers("operator")).json()
    assert sum(n["kind"] == "feedback.answered" for n in notices) == 3
