"""The demo ``make run`` starts: an account per role, the synthetic city, a grant.

(Long on purpose: one script of seeding steps in the order they happen, read top
to bottom like the README's walkthrough it backs.)

``seed(settings)`` prepares a development data directory through the same
services the HTTP routes call, one transaction per step, so each step is an
audit event as it would be in production:

1. accounts for every role: an operator, a provider, two reviewers, an
   administrator, an auditor, a consumer (a bank) (created by ``local:<user>``, as
   ``dsr accounts create`` does), each with an API token;
2. the synthetic city (``sandbox.synthetic.demo``, 20,000 residents: seconds)
   registered by the demo provider, with the example exposure policies of
   ``policies/exposure/`` applied (``gateway.providers.service``);
3. a data request by the demo operator that passes the administrator's
   formal review and the provider's review and is supplied by the provider
   (``gateway.requests.service``): an active grant.

Invariants:

- Idempotent: a second run on the same data directory reuses the accounts,
  the registered versions, the policies (one the provider changed since is
  kept) and the grant, and creates nothing twice; a request left half-way
  is taken on from its current step; only a grant that has ended (revoked
  or expired) is replaced, through a new request. A suspended grant is left
  suspended: the seed never undoes a provider's decision.
- Tokens live in ``<data_dir>/demo-tokens.env`` (mode 0600, rewritten
  atomically each run) and are reused while they still authenticate as
  their account; a missing, revoked or expired one is replaced by a new one.
  Issuing fresh tokens each run would leave the old ones valid (or need
  revoking) and break every shell that sourced the file before a restart.
- Development only: demo accounts whose tokens sit in a file are refused
  when ``DSR_GATEWAY_ENVIRONMENT=production``.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from sqlalchemy import Connection, Engine

from gateway.errors import GatewayError
from gateway.grants.model import ENDED, GrantRecord
from gateway.grants.service import GrantService
from gateway.identity import (
    Account,
    Role,
    UnknownAccount,
    authenticate,
    create_account,
    get_account,
    issue_token,
)
from gateway.providers.service import ProviderService
from gateway.requests.model import RequestRecord
from gateway.requests.model import State as RequestState
from gateway.requests.service import RequestService
from gateway.settings import GatewaySettings
from gateway.store import make_engine, migrate, read_transaction
from sandbox.intake.policy import PolicyStore, parse_policy
from sandbox.intake.registry import DatasetVersion, Registry
from sandbox.synthetic.demo import generate_city

EXPOSURE = Path(__file__).resolve().parent.parent / "policies" / "exposure"
ENV_FILE = "demo-tokens.env"
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8700
RESIDENTS = 20_000  # the city is generated and registered in a few seconds
GRANT_DAYS = 365
ISSUED_AS = "demo"  # the label of the tokens the seed issues

# The SQL product of the walkthrough (README, `dsr gateway demo`): residents by district.
DEMO_SQL = "SELECT district_name, count(*) AS people FROM residents GROUP BY 1 ORDER BY 1"
RESULT_FILE = "result.csv"  # an SQL product's released table (sandbox.judge.verdict)


@dataclass(frozen=True)
class DemoRole:
    name: str  # the account
    role: Role
    variable: str  # its token's variable in the env file
    display_name: str


ROLES: tuple[DemoRole, ...] = (
    DemoRole("demo-operator", Role.OPERATOR, "DEMO_OPERATOR_TOKEN", "Demo operator (运营机构)"),
    DemoRole("demo-provider", Role.PROVIDER, "DEMO_PROVIDER_TOKEN", "Demo data provider"),
    DemoRole("demo-reviewer-1", Role.REVIEWER, "DEMO_REVIEWER1_TOKEN", "Demo security reviewer"),
    DemoRole("demo-reviewer-2", Role.REVIEWER, "DEMO_REVIEWER2_TOKEN", "Demo security reviewer"),
    DemoRole("demo-admin", Role.ADMIN, "DEMO_ADMIN_TOKEN", "Demo administrator (实施机构)"),
    DemoRole("demo-auditor", Role.AUDITOR, "DEMO_AUDITOR_TOKEN", "Demo auditor"),
    DemoRole(
        "demo-bank", Role.CONSUMER, "DEMO_BANK_TOKEN", "Demo bank (privacy-computing consumer)"
    ),
)
OPERATOR, PROVIDER, _, _, ADMIN, _, _ = (r.name for r in ROLES)

# The demo request: minimum necessary columns for statistics by district, sex and age.
SCENARIO = "demo-district-statistics"
PURPOSE = "population and social-insurance statistics by district (demo)"
CONTENT = "resident counts and insurance contributions by district, sex and birth year"
USE = "aggregate statistics for public service planning"
SCOPES: dict[str, tuple[str, ...]] = {
    "residents": ("person_id", "gender", "birth_date", "district_code", "district_name"),
    "social_insurance": ("person_id", "month", "amount"),
}


class DemoError(GatewayError):
    """The demo cannot be seeded here (production settings, a clashing account or dataset)."""


@dataclass(frozen=True)
class Made:
    """One thing a seed run created: an account, a token (``what``: its account), a
    dataset or a policy (name and version), a request or a grant (its id)."""

    kind: Literal["account", "token", "dataset", "policy", "request", "grant"]
    what: str


@dataclass(frozen=True)
class DemoAccount:
    name: str
    role: Role
    variable: str
    token: str


@dataclass(frozen=True)
class DemoSeed:
    url: str
    data_dir: Path
    env_file: Path
    accounts: tuple[DemoAccount, ...]
    datasets: tuple[DatasetVersion, ...]
    grant_id: str
    grant_state: str
    grant_scopes: dict[str, tuple[str, ...]]
    created: tuple[Made, ...]  # what this run made, in order (nothing on a rerun)

    def token(self, name: str) -> str:
        return next(a.token for a in self.accounts if a.name == name)

    @property
    def operator_token(self) -> str:
        return self.token(OPERATOR)


def base_url(host: str, port: int) -> str:
    """Where a local client reaches a server bound to ``host`` (a wildcard means loopback)."""
    if host in ("", "0.0.0.0"):  # noqa: S104  # a wildcard bind, reached through loopback
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def submit_command(url: str, token: str, grant_id: str) -> str:
    """The ``curl`` that submits the walkthrough's SQL product (values written out)."""
    body = json.dumps({"grant": grant_id, "kind": "sql", "code": DEMO_SQL}, ensure_ascii=False)
    auth = shlex.quote(f"Authorization: Bearer {token}")
    return (
        f"curl -s {shlex.quote(url + '/v1/jobs')} -H {auth} "
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
    )


def job_command(url: str, token: str, job: str = "JOB_ID", path: str = "") -> str:
    """The ``curl`` that reads a job (``path`` "" for its status, "/outputs/result.csv" ...)."""
    return (
        f"curl -s {shlex.quote(f'{url}/v1/jobs/{job}{path}')} "
        f"-H {shlex.quote('Authorization: Bearer ' + token)}"
    )


def seed(
    settings: GatewaySettings,
    *,
    url: str | None = None,
    residents: int = RESIDENTS,
    actor: str | None = None,
) -> DemoSeed:
    """Seed the demo into ``settings.data_dir`` (see the module docstring); idempotent."""
    if settings.environment != "development":
        raise DemoError(
            "the demo seeds accounts whose tokens are kept in a file: development only "
            "(DSR_GATEWAY_ENVIRONMENT is production)"
        )
    url = url or base_url(DEFAULT_HOST, DEFAULT_PORT)
    actor = actor or f"local:{getpass.getuser()}"
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    created: list[Made] = []
    engine = make_engine(settings.database_url)
    try:
        migrate(engine)
        env_file = data / ENV_FILE
        _accounts(engine, actor, created)
        tokens = _tokens(engine, _read_env(env_file), actor, created)
        registry = Registry(data)
        datasets = _datasets(engine, registry, data, residents, created)
        grants = GrantService(engine=engine, registry=registry, data_dir=data)
        grant = _grant(engine, RequestService(grants), grants, created)
        demo = DemoSeed(
            url=url,
            data_dir=data,
            env_file=env_file,
            accounts=tuple(DemoAccount(r.name, r.role, r.variable, tokens[r.name]) for r in ROLES),
            datasets=datasets,
            grant_id=grant.id,
            grant_state=grant.state.value,
            grant_scopes={s.dataset: s.columns for s in grant.scopes},
            created=tuple(created),
        )
        _write_env(demo)
        return demo
    finally:
        engine.dispose()


# -- accounts and tokens -------------------------------------------------------------


def _accounts(engine: Engine, actor: str, created: list[Made]) -> None:
    for r in ROLES:
        with engine.begin() as conn:
            try:
                account = get_account(conn, r.name)
            except UnknownAccount:
                create_account(conn, r.name, {r.role}, display_name=r.display_name, actor=actor)
                created.append(Made("account", r.name))
                continue
        if r.role not in account.roles or account.disabled:
            raise DemoError(
                f"account {r.name!r} exists but is not an enabled {r.role} account: "
                "seed the demo into a data directory of its own"
            )


def _tokens(
    engine: Engine, known: dict[str, str], actor: str, created: list[Made]
) -> dict[str, str]:
    """Each demo account's token: the one in the env file while it authenticates, else new."""
    tokens: dict[str, str] = {}
    for r in ROLES:
        kept = known.get(r.variable, "")
        with read_transaction(engine) as conn:
            holder = authenticate(conn, kept) if kept else None
        if holder is not None and holder.name == r.name:
            tokens[r.name] = kept
            continue
        with engine.begin() as conn:
            tokens[r.name] = issue_token(conn, r.name, actor=actor, label=ISSUED_AS)
        created.append(Made("token", r.name))
    return tokens


_ENV_LINE = re.compile(r"^(DEMO_[A-Z0-9_]+)=(.*)$")


def _read_env(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _ENV_LINE.match(line.strip())
        if match:
            try:
                words = shlex.split(match.group(2))
            except ValueError:
                continue  # not ours: a token that does not parse is simply replaced
            found[match.group(1)] = words[0] if words else ""
    return found


def _write_env(demo: DemoSeed) -> None:
    """Write ``demo.env_file`` (0600) atomically: a reader sees the old or the new file."""
    lines = [
        "# Demo tokens of the development gateway (`dsr gateway demo`): anyone who can",
        "# read this file acts as these accounts. Not for production. `source` it.",
        f"DEMO_URL={shlex.quote(demo.url)}",
        f"DEMO_GRANT={shlex.quote(demo.grant_id)}",
        *(f"{a.variable}={shlex.quote(a.token)}  # {a.name} ({a.role})" for a in demo.accounts),
    ]
    fd, tmp = tempfile.mkstemp(prefix=".demo-tokens-", dir=demo.data_dir)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, demo.env_file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- the synthetic city ----------------------------------------------------------------


def _datasets(
    engine: Engine, registry: Registry, data: Path, residents: int, created: list[Made]
) -> tuple[DatasetVersion, ...]:
    """The city's four datasets, registered by the demo provider with their policies."""
    providers = ProviderService(registry, PolicyStore(registry.root), engine)
    texts = {p.stem: p.read_text(encoding="utf-8") for p in sorted(EXPOSURE.glob("*.yaml"))}
    found: list[DatasetVersion] = []
    with _city(data, residents) as city:
        for name, text in texts.items():
            owner = providers.owner(name)
            if owner not in (None, PROVIDER):
                raise DemoError(
                    f"dataset {name!r} belongs to {owner!r}, not the demo provider: "
                    "seed the demo into a data directory of its own"
                )
            if owner is None:
                entity = parse_policy(text, source=f"policy for {name!r}").entity_column
                dataset = providers.register(
                    city() / f"{name}.parquet", name=name, entity_column=entity, provider=PROVIDER
                ).dataset
                created.append(Made("dataset", f"{name} {dataset.version}"))
            else:
                dataset = providers.newest(name)
            if not providers.policy_versions(name):  # a provider's later change is kept
                applied = providers.apply_policy(name, text, PROVIDER)
                created.append(Made("policy", f"{name} {applied.version}"))
            found.append(dataset)
    return tuple(found)


@contextmanager
def _city(data: Path, residents: int) -> Iterator[Callable[[], Path]]:
    """A function giving the generated city's directory, generated on first call only
    (under ``data``, so registration renames within one file system) and removed after."""
    made: list[Path] = []

    def city() -> Path:
        if not made:
            made.append(Path(tempfile.mkdtemp(prefix=".demo-city-", dir=data)))
            generate_city(made[0], residents=residents, enterprises=max(residents // 10, 100))
        return made[0]

    try:
        yield city
    finally:
        for path in made:
            shutil.rmtree(path, ignore_errors=True)


# -- the grant -------------------------------------------------------------------------


def _grant(
    engine: Engine, requests: RequestService, grants: GrantService, created: list[Made]
) -> GrantRecord:
    """The operator's live grant for the demo scenario, taken through every step if needed."""
    with engine.begin() as conn:
        grants.expire_due(conn)  # a grant past its term ends here, as on any use
    with read_transaction(engine) as conn:
        mine = [r for r in requests.find(conn, operator=OPERATOR) if r.scenario == SCENARIO]
        request = _open_request(conn, mine, grants)
    if request is None:
        with engine.begin() as conn:
            request = requests.create(
                conn,
                operator=OPERATOR,
                scenario=SCENARIO,
                purpose=PURPOSE,
                content=CONTENT,
                use=USE,
                scopes=SCOPES.items(),
            )
        created.append(Made("request", request.id))
    supplied_now = False
    while request.state != RequestState.SUPPLIED:
        with engine.begin() as conn:
            request = _next_step(conn, requests, request)
        supplied_now = request.state == RequestState.SUPPLIED
    assert request.grant_id is not None  # a supplied request names its grant
    if supplied_now:
        created.append(Made("grant", request.grant_id))
    with read_transaction(engine) as conn:
        return grants.get(conn, request.grant_id)


def _open_request(
    conn: Connection, mine: list[RequestRecord], grants: GrantService
) -> RequestRecord | None:
    """The newest demo request that supplied a grant not yet ended, else the newest one
    still under review, else None."""
    live = [
        r
        for r in mine
        if r.state == RequestState.SUPPLIED
        and r.grant_id is not None
        and grants.get(conn, r.grant_id).state not in ENDED
    ]
    under_way = [r for r in mine if r.state not in (RequestState.SUPPLIED, RequestState.REJECTED)]
    found = live or under_way
    return found[-1] if found else None


def _next_step(conn: Connection, requests: RequestService, request: RequestRecord) -> RequestRecord:
    """One review step, as the account whose step it is would take it over HTTP."""
    if request.state == RequestState.SUBMITTED:
        return requests.formal_review(conn, request.id, ADMIN, passed=True)
    if request.state == RequestState.FORMAL_REVIEW_PASSED:
        return requests.provider_review(conn, request.id, PROVIDER, approved=True)
    if request.state == RequestState.PROVIDER_APPROVED:
        until = datetime.now(UTC) + timedelta(days=GRANT_DAYS)
        provider: Account = get_account(conn, PROVIDER)
        return requests.supply(conn, request.id, provider, valid_until=until)
    raise DemoError(f"data request {request.id} is {request.state}: it cannot be taken on")
