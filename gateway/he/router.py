"""Privacy-computing products over HTTP.

- operators define products under their grants and withdraw them;
- reviewers approve or deny a pending product (not their own);
- consumers register public contexts and call approved products that list
  them, sending raw bytes (a ciphertext) and receiving raw bytes (the
  encrypted answer);
- everyone may read the products they have to do with; a consumer only the
  approved products that list it, and only what it needs to call them
  (``ConsumerProductOut``: never the operator, the job, the grant or the
  model's coefficients).

Bodies of context registrations and calls are exempt from the gateway's
1 MiB body limit (``gateway.app``) and capped here, at the caps of
``sandbox.container.he.params``, before they are read whole (413). Evaluation runs in
the thread pool, off the event loop. (Measured: TenSEAL holds the GIL while
it evaluates; two evaluations in two threads take as long as two in a row,
so throughput scales with worker processes, not threads.)
"""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from gateway.auth import read, requires
from gateway.grants.service import grant_service
from gateway.he.build import TableCache
from gateway.he.contexts import CAPS, ContextStore
from gateway.he.errors import HETooLarge, UnknownHEProduct
from gateway.he.limits import Limits
from gateway.he.model import HEProduct, Kind, State, follow_grant, get_product, list_products
from gateway.he.sandboxed import make_evaluator
from gateway.he.schemas import (
    ConsumerProductOut,
    ContextOut,
    DecisionIn,
    ProductIn,
    ProductOut,
    ReasonIn,
    VerifyIn,
)
from gateway.he.service import HEService, work_dir
from gateway.identity import Account, Role
from gateway.jobs.service import Files
from gateway.products.service import offered_he_products
from sandbox.container.he.params import MAX_SCORE_CIPHERTEXT_BYTES, MAX_VERIFY_CIPHERTEXT_BYTES
from sandbox.views.build import ViewBuilder

router = APIRouter(prefix="/v1/he", tags=["privacy computing"])
Operator = Annotated[Account, Depends(requires(Role.OPERATOR))]
Reviewer = Annotated[Account, Depends(requires(Role.REVIEWER))]
Consumer = Annotated[Account, Depends(requires(Role.CONSUMER))]
Anyone = Annotated[Account, Depends(requires(*Role))]
Read = Annotated[Connection, Depends(read)]
OCTETS = "application/octet-stream"
CIPHERTEXT_CAPS = {Kind.VERIFY: MAX_VERIFY_CIPHERTEXT_BYTES, Kind.SCORE: MAX_SCORE_CIPHERTEXT_BYTES}
# Who reads every product (the others: their own, or those offered to them).
OVERSIGHT = (Role.REVIEWER, Role.ADMIN, Role.AUDITOR)
_LOCK = threading.Lock()


def he_service(request: Request) -> HEService:
    """The application's product service (one per app, made on first use)."""
    state = request.app.state
    with _LOCK:
        service: HEService | None = getattr(state, "he", None)
        if service is None:
            grants = grant_service(request.app)
            runtime = getattr(state, "runtime", None)
            data_dir = state.settings.data_dir
            views = runtime.views if runtime is not None else None
            views = views or ViewBuilder(state.registry, grants.policies, data_dir / "cache")
            contexts = ContextStore(data_dir / "he" / "contexts")
            evaluator = make_evaluator(
                state.settings.he_evaluator, data_dir / "he" / "sandbox", contexts
            )
            service = HEService(
                engine=state.engine,
                grants=grants,
                views=views,
                files=Files(work_dir(state)),
                limits=Limits(state.settings.he_calls_per_hour, state.settings.he_calls_per_day),
                contexts=contexts,
                tables=TableCache(),
                evaluator=evaluator,
                clock=state.clock,
            )
            state.he = service
        return service


Service = Annotated[HEService, Depends(he_service)]


def _governs(account: Account, product: HEProduct, service: HEService) -> bool:
    """Oversight roles, the product's operator, a provider of its datasets."""
    if account.has(*OVERSIGHT) or product.operator == account.name:
        return True
    provider = account.has(Role.PROVIDER)
    return provider and any(service.grants.provider_of(d) == account.name for d in product.datasets)


def can_see(account: Account, product: HEProduct, service: HEService) -> bool:
    """Rule: oversight roles see every product, an operator their own, a provider those
    on their datasets, a consumer the approved and registered ones offered to it."""
    if _governs(account, product, service):
        return True
    return (
        account.has(Role.CONSUMER)
        and account.name in product.consumers
        and product.state == State.APPROVED
        and _registered(product, service)
    )


def _registered(product: HEProduct, service: HEService) -> bool:
    """Offered only once registered (authorized-operation measures 001 art. 9)."""
    with service.engine.connect() as conn:
        return bool(offered_he_products(conn, [product.id], service.clock()))


Shown = ProductOut | ConsumerProductOut


def out(account: Account, product: HEProduct, service: HEService) -> Shown:
    """The product as ``account`` may read it: in full (oversight, its operator), without
    the model (a provider of its data), or a consumer's view (see ``can_see``)."""
    if account.has(*OVERSIGHT) or product.operator == account.name:
        return ProductOut.of(product, full=True)
    if _governs(account, product, service):
        return ProductOut.of(product, full=False)
    return ConsumerProductOut.of(product)


async def capped_body(request: Request, cap: int, what: str) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed ``cap``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise HETooLarge(f"the {what} is {int(declared):,} bytes; the limit is {cap:,}")
    received, chunks = 0, []
    async for chunk in request.stream():
        received += len(chunk)
        if received > cap:
            raise HETooLarge(f"the {what} is over the limit of {cap:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/products", response_model=ProductOut, status_code=201)
def define(body: ProductIn, operator: Operator, service: Service) -> ProductOut:
    common = {"name": body.name, "grant_id": body.grant, "consumers": body.consumers}
    if isinstance(body, VerifyIn):
        product = service.define_verify(
            operator.name,
            dataset=body.dataset,
            subject_column=body.subject_column,
            value_column=body.value_column,
            boundaries=body.boundaries or [],
            **common,  # type: ignore[arg-type]
        )
    else:
        product = service.define_score(
            operator.name,
            job_id=body.job,
            file=body.file,
            features=body.features,
            intercept_term=body.intercept_term,
            resolution=body.resolution,
            **common,  # type: ignore[arg-type]
        )
    return ProductOut.of(product, full=True)


@router.get("/products", response_model=list[Shown])
def products(account: Anyone, conn: Read, service: Service) -> list[Shown]:
    """The products the caller may see (a consumer: the approved ones offered to it)."""
    found = list_products(conn)
    return [out(account, p, service) for p in found if can_see(account, p, service)]


@router.get("/products/{product_id}", response_model=Shown)
def product(product_id: str, account: Anyone, service: Service) -> Shown:
    with service.engine.begin() as conn:  # a write: the product follows its grant
        found = follow_grant(conn, get_product(conn, product_id))
    if not can_see(account, found, service):
        raise UnknownHEProduct(f"no privacy-computing product {product_id!r}")
    return out(account, found, service)


@router.post("/products/{product_id}/decision", response_model=ProductOut)
def decide(product_id: str, body: DecisionIn, reviewer: Reviewer, service: Service) -> ProductOut:
    done = service.decide(reviewer.name, product_id, body.decision == "approve", body.reason)
    return ProductOut.of(done, full=True)  # reviewers are oversight


@router.post("/products/{product_id}/withdraw", response_model=ProductOut)
def withdraw(product_id: str, body: ReasonIn, operator: Operator, service: Service) -> ProductOut:
    return ProductOut.of(service.withdraw(operator.name, product_id, body.reason), full=True)


@router.post(
    "/contexts",
    response_model=ContextOut,
    status_code=201,
    openapi_extra={"requestBody": {"content": {OCTETS: {"schema": {"type": "string"}}}}},
)
async def register_context(
    request: Request, consumer: Consumer, service: Service, kind: Annotated[Kind, Query()]
) -> ContextOut:
    """Register a public context (the serialized TenSEAL context without its secret key)."""
    data = await capped_body(request, CAPS[kind], "context")
    row = await run_in_threadpool(service.register_context, consumer.name, kind, data)
    return ContextOut.model_validate(row)


async def _call(
    request: Request,
    service: HEService,
    consumer: Account,
    product_id: str,
    kind: Kind,
    context: str,
    bucket: int | None,
) -> Response:
    try:
        query = await capped_body(request, CIPHERTEXT_CAPS[kind], "query ciphertext")
    except HETooLarge as e:
        await run_in_threadpool(service.refuse_call, consumer.name, product_id, e)
        raise
    answer = await run_in_threadpool(
        service.call, consumer.name, product_id, context, query, bucket, kind
    )
    return Response(answer, media_type=OCTETS)


CALL_BODY = {"requestBody": {"content": {OCTETS: {"schema": {"type": "string"}}}}}
CALL_RESPONSE = {200: {"content": {OCTETS: {}}, "description": "the encrypted answer"}}
ContextId = Annotated[str, Query(min_length=1, max_length=32)]


@router.post(
    "/products/{product_id}/verify",
    response_class=Response,
    openapi_extra=CALL_BODY,
    responses=CALL_RESPONSE,  # type: ignore[arg-type]
)
async def call_verify(
    product_id: str,
    request: Request,
    consumer: Consumer,
    service: Service,
    context: ContextId,
    bucket: Annotated[int, Query(ge=0, lt=2**24)],
) -> Response:
    """The encrypted answer to an encrypted claim (body: the BFV query ciphertext)."""
    return await _call(request, service, consumer, product_id, Kind.VERIFY, context, bucket)


@router.post(
    "/products/{product_id}/score",
    response_class=Response,
    openapi_extra=CALL_BODY,
    responses=CALL_RESPONSE,  # type: ignore[arg-type]
)
async def call_score(
    product_id: str, request: Request, consumer: Consumer, service: Service, context: ContextId
) -> Response:
    """The encrypted score of encrypted features (body: the CKKS feature ciphertext)."""
    return await _call(request, service, consumer, product_id, Kind.SCORE, context, None)
