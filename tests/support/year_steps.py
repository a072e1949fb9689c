"""The steps of the seeded year (``tests.support.seeded_year`` walks them in order), each
over REST as the gateway's users take it, each writing what it did into the record
(``tests.support.year_record``).

:class:`SeededYear` is the gateway the steps drive (app, client, tokens, clock, the
record); :class:`Steps` the steps. The accounts, organisations, tariff and cost rates
of the year are the constants here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.workdays import CST
from sandbox.he.client import VerificationKeys
from tests.support.city import POLICIES
from tests.support.clocked_world import MovableClock
from tests.support.gateway_jobs import PY_HELD
from tests.support.he_world import FIRMS_POLICY, closed, code, firms_csv, tax
from tests.support.year_record import ChargeDone, Expected, GrantDone, JobDone, ProductDone, Refusal

WAITING = {"queued", "running", "checking"}
YAML = {"Content-Type": "application/yaml"}
OCTETS = {"Content-Type": "application/octet-stream"}

ORGANISATIONS = {
    "yuzhou-data": ("渝州数据运营有限公司", "operator", ["op-1"]),
    "shancheng-data": ("山城数据科技有限公司", "operator", ["op-2"]),
    "civil-affairs": ("市民政局", "provider", ["civil-1"]),
    "tax-bureau": ("市税务局", "provider", ["tax-1"]),
    "bank-a": ("重庆某商业银行", "financial", ["bank-1"]),
}
ACCOUNTS = {
    "op-1": ("operator", "渝州数据 运营一部"),
    "op-2": ("operator", "山城数据 运营部"),
    "civil-1": ("provider", "市民政局 数据科"),
    "tax-1": ("provider", "市税务局 数据科"),
    "rev-1": ("reviewer", "审核员一"),
    "rev-2": ("reviewer", "审核员二"),
    "auditor-1": ("auditor", "审计员"),
    "bank-1": ("consumer", "银行 信贷部"),
}
ADMIN = "admin-1"
# The organisation each account acts for, by its name (what the portal shows).
ORG_NAME = {m: title for title, _, members in ORGANISATIONS.values() for m in members}

# The tariff (guided prices, in fen) and the cost rates the year runs with.
VERIFY_CALL_FEN = 200  # what each encrypted call is charged (a guided price)
TARIFF: dict[str, dict[str, str | int]] = {
    "table-download": {"unit": "次", "price_fen": 5_000},
    "verify-call": {"unit": "次", "price_fen": VERIFY_CALL_FEN},
}
RATES = {
    "cost_rate_cpu_second_fen": 50,
    "cost_rate_gb_scanned_fen": 1_000,
    "cost_rate_storage_gb_day_fen": 10,
    "cost_rate_review_hour_fen": 20_000,
}
MARGIN_CAP = 0.15

REVIEW_MINUTES = 60  # each review: the evidence opened at 09:00, the vote at 10:00
SQL_RESIDENTS = "SELECT district_code, count(*) AS residents FROM residents GROUP BY 1"
SQL_ENTERPRISES = "SELECT industry, count(*) AS n FROM enterprises GROUP BY 1"
SQL_OUTSIDE = "SELECT birth_date, count(*) AS n FROM residents GROUP BY 1"  # not granted
BANDS = [100_000.0, 300_000.0, 500_000.0]


@dataclass
class SeededYear:
    app: FastAPI
    client: TestClient
    tokens: dict[str, str]
    clock: MovableClock
    expected: Expected
    data_dir: Path

    @property
    def period(self) -> str:
        return str(self.expected.year)

    def h(self, who: str, **more: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **more}

    def get(self, who: str | None, url: str, **params: Any) -> Any:
        headers = self.h(who) if who else {}
        return self.client.get(url, headers=headers, params=params)

    def post(self, who: str, url: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.post(url, headers=self.h(who), json=body or {})

    def put(self, who: str, url: str, body: dict[str, Any]) -> Any:
        return self.client.put(url, headers=self.h(who), json=body)


def ok(answer: Any, *statuses: int) -> Any:
    assert answer.status_code in (statuses or (200, 201)), answer.text
    return answer.json()


class Steps:
    """The year's steps, in order; each writes what it did into ``expected``."""

    def __init__(self, y: SeededYear, city: dict[str, Path]) -> None:
        self.y, self.e, self.city = y, y.expected, city

    # -- time ------------------------------------------------------------------------

    def at(self, month: int, day: int, hour: int = 10) -> None:
        moment = datetime(self.e.year, month, day, hour, tzinfo=CST)
        assert moment >= self.y.clock.now, (moment, self.y.clock.now)
        self.y.clock.now = moment

    @property
    def month(self) -> int:
        return self.y.clock.now.astimezone(CST).month

    # -- people and data -------------------------------------------------------------

    def people(self) -> None:
        y = self.y
        for name, (role, display) in ACCOUNTS.items():
            body = {"name": name, "roles": [role], "display_name": display}
            ok(y.post(ADMIN, "/v1/accounts", body), 201)
            y.tokens[name] = ok(y.post(ADMIN, f"/v1/accounts/{name}/tokens"), 201)["token"]
        for org, (title, kind, members) in ORGANISATIONS.items():
            ok(y.post(ADMIN, "/v1/organisations", {"id": org, "name": title, "kind": kind}))
            for member in members:
                put = y.client.put(f"/v1/organisations/{org}/members/{member}", headers=y.h(ADMIN))
                ok(put)

    def upload(self, provider: str, name: str, path: Path, entity: str, policy: str) -> None:
        y = self.y
        with path.open("rb") as f:
            made = y.client.post(
                "/v1/datasets",
                headers=y.h(provider),
                files={"file": (path.name, f, "application/octet-stream")},
                data={"name": name, "entity_column": entity},
            )
        ok(made, 201)
        put = y.client.put(
            f"/v1/datasets/{name}/policy", headers=y.h(provider, **YAML), content=policy
        )
        ok(put)
        self.e.datasets[name] = provider

    def datasets(self) -> None:
        firms = self.y.data_dir.parent / "src" / "firms.csv"
        firms.write_text(firms_csv(), encoding="utf-8")
        residents_policy = (POLICIES / "residents.yaml").read_text(encoding="utf-8")
        enterprises_policy = (POLICIES / "enterprises.yaml").read_text(encoding="utf-8")
        self.upload("civil-1", "residents", self.city["residents"], "person_id", residents_policy)
        self.upload(
            "tax-1", "enterprises", self.city["enterprises"], "credit_code", enterprises_policy
        )
        self.upload("tax-1", "firms", firms, "credit_code", FIRMS_POLICY)
        self.e.identifying = identifying_values(self.city) + [
            code(i) for i in range(0, 240, 7)
        ] + [f"{110101197001010000 + i}" for i in range(0, 240, 7)]  # fmt: skip

    # -- grants ----------------------------------------------------------------------

    def grant(
        self, key: str, operator: str, dataset: str, columns: tuple[str, ...], until: datetime
    ) -> None:
        y, provider = self.y, self.e.datasets[dataset]
        ask = {
            "scenario": f"{key} scenario",
            "purpose": f"statistics for {key}",
            "content": f"{dataset}: {', '.join(columns)}",
            "use": "aggregate statistics only",
            "datasets": [{"dataset": dataset, "columns": list(columns)}],
        }
        rid = ok(y.post(operator, "/v1/requests", ask), 201)["id"]
        ok(y.post(ADMIN, f"/v1/requests/{rid}/formal-review", {"decision": "pass"}))
        ok(y.post(provider, f"/v1/requests/{rid}/provider-review", {"decision": "approve"}))
        body = {"valid_until": until.isoformat()}
        supplied = ok(y.post(provider, f"/v1/requests/{rid}/supply", body), 201)
        self.e.grants[key] = GrantDone(
            id=supplied["grant_id"], operator=operator, provider=provider, dataset=dataset,
            columns=columns, valid_from=y.clock.now, valid_until=until,
        )  # fmt: skip

    # -- jobs ------------------------------------------------------------------------

    def job(self, operator: str, key: str, kind: str, code: str) -> dict[str, Any]:
        y, g = self.y, self.e.grants[key]
        body = {"grant": g.id, "kind": kind, "code": code}
        made = ok(y.post(operator, "/v1/jobs", body), 201)
        deadline = time.monotonic() + 60
        while True:
            job: dict[str, Any] = ok(y.get(operator, f"/v1/jobs/{made['id']}"))
            if job["state"] not in WAITING:
                break
            assert time.monotonic() < deadline, job
            time.sleep(0.02)
        return job

    def released(self, operator: str, key: str, code: str) -> str:
        job = self.job(operator, key, "sql", code)
        assert job["state"] == "released", job
        g = self.e.grants[key]
        self.e.jobs.append(JobDone(job["id"], operator, key, g.dataset, "sql", self.month,
                                   "released"))  # fmt: skip
        return str(job["id"])

    def held(self, operator: str, key: str) -> str:
        job = self.job(operator, key, "python", PY_HELD)
        assert job["state"] == "held", job
        return str(job["id"])

    def review(self, job_id: str, operator: str, key: str, decision: str, reviewer: str) -> None:
        """The reviewer opens the evidence at 09:00 and votes at 10:00 (an hour's review)."""
        self.at(self.month, 12, 9)
        ok(self.y.get(reviewer, f"/v1/reviews/{job_id}"))
        self.at(self.month, 12, 10)
        body = {"decision": decision, "reason": "checked the district counts"}
        voted = ok(self.y.post(reviewer, f"/v1/reviews/{job_id}/votes", body), 201)
        state = "released" if decision == "approve" else "denied"
        assert voted["job_state"] == state, voted
        g = self.e.grants[key]
        self.e.jobs.append(JobDone(job_id, operator, key, g.dataset, "python", self.month,
                                   state, decision))  # fmt: skip

    def refused(self, operator: str, key: str) -> None:
        g = self.e.grants[key]
        body = {"grant": g.id, "kind": "sql", "code": SQL_OUTSIDE}
        answer = self.y.post(operator, "/v1/jobs", body)
        assert answer.status_code == 403, answer.text
        self.e.refusals.append(Refusal(operator, key, g.dataset, self.month))

    # -- products and charges --------------------------------------------------------

    def register(
        self, key: str, name: str, category: str, price_class: str, basis: dict[str, Any],
        *, job: str | None = None, he_product: str | None = None, dataset: str,
    ) -> None:  # fmt: skip
        y = self.y
        body: dict[str, Any] = {"type": "first", "name": name, "category": category}
        body |= {"description": f"{name}: aggregate statistics for the year"}
        body |= {"job": job} if job else {"he_product": he_product}
        priced = body | {"price_class": price_class, "price_basis": basis}
        made = y.post("op-1", "/v1/products/registrations", priced)
        if made.status_code == 422 and "price_" in made.text:  # no price fields (yet)
            self.e.prices_applied = False
            made = y.post("op-1", "/v1/products/registrations", body)
        rid = ok(made, 201)["id"]
        for step in ("accept", "review", "publicise", "register"):
            done = ok(y.post(ADMIN, f"/v1/products/registrations/{rid}/{step}"))
        product = ok(y.get("op-1", f"/v1/products/{done['product']}"))
        self.e.products[key] = ProductDone(
            id=product["id"], name=name, operator="op-1", category=category,
            price_class=price_class, price_basis=product.get("price_basis") or basis,
            dataset=dataset, month=self.month, source=job or he_product or "",
        )  # fmt: skip

    def _charge(self, key: str, quantity: int, reference: str) -> Any | None:
        """POST a charge; None (and ``charging`` off) while the route does not exist."""
        if not (self.e.prices_applied and self.e.charging):
            return None
        body = {"payer": "bank-1", "quantity": quantity, "reference": reference}
        answer = self.y.post("op-1", f"/v1/products/{self.e.products[key].id}/charges", body)
        if answer.status_code == 404 and answer.json().get("detail") == "Not Found":
            self.e.charging = False
            return None
        return answer

    def charge(self, key: str, quantity: int, reference: str) -> None:
        answer = self._charge(key, quantity, reference)
        if answer is not None:
            made = ok(answer, 201)
            self.e.charges.append(ChargeDone(key, "bank-1", quantity, made["amount_fen"],
                                             self.month, "manual"))  # fmt: skip

    def refused_charge(self, key: str, reference: str, status: int) -> None:
        answer = self._charge(key, 1, reference)
        if answer is not None:
            assert answer.status_code == status, answer.text
            self.e.refused_charges.append((key, status))

    # -- encrypted verification ------------------------------------------------------

    def he_product(self) -> str:
        y = self.y
        body = {"kind": "verify", "name": "企业纳税等级核验", "grant": self.e.grants["firms"].id,
                "consumers": ["bank-1"], "dataset": "firms", "value_column": "annual_tax",
                "boundaries": BANDS}  # fmt: skip
        product = ok(y.post("op-1", "/v1/he/products", body), 201)
        decision = {"decision": "approve", "reason": "bands are coarse; the bank is licensed"}
        ok(y.post("rev-1", f"/v1/he/products/{product['id']}/decision", decision))
        return str(product["id"])

    def he_context(self, keys: VerificationKeys) -> str:
        y = self.y
        made = y.client.post("/v1/he/contexts?kind=verify", headers=y.h("bank-1", **OCTETS),
                             content=keys.public_context())  # fmt: skip
        return str(ok(made, 201)["id"])

    def he_calls(self, keys: VerificationKeys, he: str, context: str, firms: list[int]) -> None:
        y = self.y
        shown = ok(y.get("bank-1", f"/v1/he/products/{he}"))
        bits = shown["spec"]["bucket_bits"]
        for i in firms:
            assert not closed(i)  # the policy's row filter drops closed firms
            claim = sum(tax(i) >= b for b in BANDS)
            query = keys.encrypt_claim(he, code(i), claim, bucket_bits=bits)
            answer = y.client.post(
                f"/v1/he/products/{he}/verify?context={context}&bucket={query.bucket}",
                headers=y.h("bank-1", **OCTETS), content=query.ciphertext,
            )  # fmt: skip
            assert answer.status_code == 200, answer.text
            assert keys.read_answer(answer.content) is True
            self.e.he_calls.append(self.month)
            if self.e.prices_applied:  # charged automatically, one charge per call
                price = VERIFY_CALL_FEN
                self.e.charges.append(ChargeDone("verify", "bank-1", 1, price, self.month,
                                                 "he-call"))  # fmt: skip

    # -- security events -------------------------------------------------------------

    def incident(self) -> None:
        y = self.y
        body = {"kind": "unauthorized_access", "severity": "medium",
                "summary": "an account tried to read a dataset outside its grant",
                "datasets": ["residents"]}  # fmt: skip
        made = ok(y.post("civil-1", "/v1/incidents", body), 201)
        url = f"/v1/incidents/{made['id']}"
        ok(y.post("civil-1", f"{url}/actions", {"action": "tokens of the account rotated"}))
        self.e.incidents.append(made["id"])
        self.at(self.month, 16)
        ok(y.post(ADMIN, f"{url}/resolve", {"resolution": "contained; no data left"}))

    def emergency_stop(self) -> list[str]:
        body = {"reason": "suspected leak of enterprise data", "rectify_days": 5}
        stop = ok(self.y.post(ADMIN, "/v1/datasets/enterprises/emergency-stop", body))
        self.e.incidents.append(stop["incident"])
        return list(stop["suspended"])

    def failed_signins(self, count: int) -> None:
        for n in range(count):
            bad = {"Authorization": f"Bearer dsr_not-a-token-{n}"}
            assert self.y.client.get("/v1/jobs", headers=bad).status_code == 401
            self.e.failed_signins += 1

    def sweep(self, *, expires: str | None = None, terminates: str | None = None) -> None:
        """An administrator's sweep that expires or terminates the grant named."""
        swept = ok(self.y.post(ADMIN, "/v1/admin/sweep"))
        assert not swept["failures"], swept
        lines = "\n".join(swept["lines"])
        if expires:
            grant = self.e.grants[expires]
            assert grant.id in lines and "expired" in lines, lines
            grant.ended, grant.ended_month = "expired", self.month
        if terminates:
            grant = self.e.grants[terminates]
            assert "took effect" in lines, lines
            grant.ended, grant.ended_month = "revoked", self.month

    def resume(self, grants: list[str]) -> None:
        for grant in grants:
            ok(self.y.post(ADMIN, f"/v1/grants/{grant}/resume", {"reason": "rectified"}))

    def terminate(self, key: str) -> None:
        """The dataset's provider proposes ending the grant; an administrator approves it
        the next day; it takes effect at the sweep after the notice period."""
        basis = {"reason": "the operator used the data outside its scenario",
                 "legal_basis": "004 第三十三条"}  # fmt: skip
        grant = self.e.grants[key]
        made = self.y.post(grant.provider, f"/v1/grants/{grant.id}/terminations", basis)
        proposal = ok(made, 201)
        self.at(self.month, self.y.clock.now.astimezone(CST).day + 1)
        ok(self.y.post(ADMIN, f"/v1/terminations/{proposal['id']}/approve", {"reason": "checked"}))


def identifying_values(city: dict[str, Path]) -> list[str]:
    """A sample of the values that name data subjects in the city: ids, names, phones."""
    con = duckdb.connect()
    found: list[str] = []
    for table, columns in (("residents", ("person_id", "name", "phone")),
                           ("enterprises", ("credit_code", "legal_person_id"))):  # fmt: skip
        for column in columns:
            rows = con.execute(
                f"SELECT DISTINCT CAST({column} AS VARCHAR) FROM read_parquet(?) LIMIT 30",
                [str(city[table])],
            ).fetchall()
            found += [str(r[0]) for r in rows if r[0] and len(str(r[0])) >= 3]
    con.close()
    return found
