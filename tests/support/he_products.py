"""Privacy-computing products over HTTP, for the product tests in process, in a
sandboxed evaluator and against a served gateway: define, approve and call a
product, and the search proving the platform holds no subject, claim or secret key.

Plain functions over ``tests.support.he_world``'s ``World``: ``ready_product``
defines a tax-band product of ``op-1`` for ``bank-1`` under the world's grant,
approves it (``rev-1``), registers the product (offered only once registered,
``gateway.products``) and the consumer's public context.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sandbox.he.client import VerificationKeys
from tests.support.he_world import World, tax
from tests.support.product_registration import register_in_store

OCTETS = {"Content-Type": "application/octet-stream"}
BANDS = [100_000.0, 300_000.0, 500_000.0]


def band(i: int) -> int:
    """The true tax band of firm ``i`` (0 to 3) under ``BANDS``."""
    return sum(tax(i) >= b for b in BANDS)


def define(w: World, who: str = "op-1", **body: Any) -> Any:
    """Define a product as ``who``: annual tax in ``BANDS`` for ``bank-1``, or as ``body`` says."""
    base: dict[str, Any] = {"kind": "verify", "name": "tax band", "grant": w.grant_id}
    base |= {
        "consumers": ["bank-1"],
        "dataset": "firms",
        "value_column": "annual_tax",
        "boundaries": BANDS,
    }
    return w.client.post("/v1/he/products", headers=w.h(who), json=base | body)


def approve(w: World, product: str, who: str = "rev-1") -> Any:
    body = {"decision": "approve", "reason": "bands are coarse; consumers are licensed banks"}
    return w.client.post(f"/v1/he/products/{product}/decision", headers=w.h(who), json=body)


def register(w: World, data: bytes, kind: str = "verify", who: str = "bank-1") -> Any:
    """Register a consumer's public context."""
    return w.client.post(f"/v1/he/contexts?kind={kind}", headers=w.h(who, **OCTETS), content=data)


def ask(
    w: World, keys: VerificationKeys, product: dict[str, Any], context: str, subject: str,
    claim: int, who: str = "bank-1",
) -> Any:  # fmt: skip
    """Ask whether ``subject``'s value is ``claim``, encrypted under ``keys``."""
    bits = product["spec"]["bucket_bits"]
    query = keys.encrypt_claim(product["id"], subject, claim, bucket_bits=bits)
    return w.client.post(
        f"/v1/he/products/{product['id']}/verify?context={context}&bucket={query.bucket}",
        headers=w.h(who, **OCTETS),
        content=query.ciphertext,
    )


def ready_product(w: World, keys: VerificationKeys, **body: Any) -> tuple[dict[str, Any], str]:
    made = define(w, **body)
    assert made.status_code == 201, made.text
    product = made.json()
    assert approve(w, product["id"]).status_code == 200
    register_in_store(w.app, product["operator"], he_product=product["id"])  # offered
    context = register(w, keys.public_context())
    assert context.status_code == 201, context.text
    return product, context.json()["id"]


def secret_chunk(secret: bytes, public: bytes) -> bytes:
    """64 bytes of the serialized secret key that the public context does not contain."""
    for start in range(len(secret) // 3, len(secret) - 64, 4096):
        chunk = secret[start : start + 64]
        if chunk not in public and len(set(chunk)) > 16:
            return chunk
    raise AssertionError("no distinctive chunk of the secret key")


def assert_nowhere(root: Path, needles: list[bytes], allow_in: list[Path]) -> None:
    """No file under ``root`` (but the raw dataset store) and no row of the SQLite
    store holds any of ``needles``."""
    for path in root.rglob("*"):
        if not path.is_file() or any(a in path.parents for a in allow_in):
            continue
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, (path, needle[:20])
    db = sqlite3.connect(root / "gateway.sqlite")
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                text = b"".join(
                    v if isinstance(v, bytes) else str(v).encode() for v in row if v is not None
                )
                for needle in needles:
                    assert needle not in text, (table, needle[:20])
    finally:
        db.close()
