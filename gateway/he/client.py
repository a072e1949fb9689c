"""The consumer's client of the privacy-computing products (over HTTP, with httpx).

Keys are made here and stay here: ``make_keys`` writes the full TenSEAL
context (secret key included) to a file readable by its owner only (0600);
the gateway only ever receives the public context (``register``) and
ciphertexts. A registered context's id is remembered beside the key file
(``<keys>.contexts.json``, per gateway URL), so the public context (2 MiB
for verification, 33 MiB for scoring) is sent once.

    client = HEClient("https://gateway", token, Path("bank.verify.keys"))
    client.verify("hp-...", "91500000MA5U000000", 3)      # True / False
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import tenseal as ts  # type: ignore[import-untyped]  # TenSEAL ships no type hints

from sandbox.he.client import ScoringKeys, VerificationKeys

OCTETS = {"Content-Type": "application/octet-stream"}
Keys = VerificationKeys | ScoringKeys


class HEClientError(Exception):
    """The gateway refused a call; ``status`` is its HTTP status, ``response`` its answer."""

    def __init__(self, status: int, detail: str, response: httpx.Response | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.response = response


def make_keys(path: Path, kind: str) -> Keys:
    """New keys for ``kind`` ("verify" or "score"), saved to ``path`` (mode 0600)."""
    keys: Keys = VerificationKeys.make() if kind == "verify" else ScoringKeys.make()
    secret = keys.context.serialize(save_secret_key=True, save_galois_keys=kind == "score")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
    return keys


def load_keys(path: Path) -> Keys:
    """Keys saved by :func:`make_keys` (the scheme says which product kind)."""
    context = ts.context_from(path.read_bytes())
    if not context.has_secret_key():
        raise ValueError(f"{path} holds no secret key")
    is_bfv = (
        context.seal_context().data.key_context_data().parms().scheme() == ts.SCHEME_TYPE.BFV.value
    )
    return VerificationKeys(context) if is_bfv else ScoringKeys(context)


class HEClient:
    """Calls products with the keys in ``keys_path`` (made by :func:`make_keys`)."""

    def __init__(
        self, base_url: str, token: str, keys_path: Path, *, http: httpx.Client | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.keys_path = keys_path
        self.keys = load_keys(keys_path)
        self.kind = "verify" if isinstance(self.keys, VerificationKeys) else "score"
        self.http = http or httpx.Client(base_url=self.base_url, timeout=120)
        self.http.headers["Authorization"] = f"Bearer {token}"

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            try:
                detail = str(response.json().get("detail"))
            except ValueError:
                detail = response.text[:500]
            raise HEClientError(response.status_code, detail, response)
        return response

    @property
    def _memo(self) -> Path:
        return self.keys_path.with_name(self.keys_path.name + ".contexts.json")

    def register(self, *, force: bool = False) -> str:
        """The id of this key's public context at the gateway (registered once)."""
        known: dict[str, str] = json.loads(self._memo.read_text()) if self._memo.is_file() else {}
        if self.base_url in known and not force:
            return known[self.base_url]
        response = self._check(
            self.http.post(
                "/v1/he/contexts",
                params={"kind": self.kind},
                content=self.keys.public_context(),
                headers=OCTETS,
            )
        )
        context_id = str(response.json()["id"])
        self._memo.write_text(json.dumps(known | {self.base_url: context_id}))
        return context_id

    def product(self, product_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self._check(self.http.get(f"/v1/he/products/{product_id}")).json()
        return body

    def verify(self, product_id: str, subject: str, claim: int) -> bool:
        """Whether the record agrees that ``subject`` has band (or yes/no) ``claim``."""
        if not isinstance(self.keys, VerificationKeys):
            raise ValueError("these are scoring keys; make verification keys")
        bits = int(self.product(product_id)["spec"]["bucket_bits"])
        query = self.keys.encrypt_claim(product_id, subject, claim, bucket_bits=bits)
        response = self._check(
            self.http.post(
                f"/v1/he/products/{product_id}/verify",
                params={"context": self.register(), "bucket": query.bucket},
                content=query.ciphertext,
                headers=OCTETS,
            )
        )
        return self.keys.read_answer(response.content)

    def score(self, product_id: str, features: Sequence[float]) -> float:
        """The product's score of ``features`` (in the product's feature order)."""
        if not isinstance(self.keys, ScoringKeys):
            raise ValueError("these are verification keys; make scoring keys")
        response = self._check(
            self.http.post(
                f"/v1/he/products/{product_id}/score",
                params={"context": self.register()},
                content=self.keys.encrypt_features(features),
                headers=OCTETS,
            )
        )
        return self.keys.read_score(response.content)

    def close(self) -> None:
        self.http.close()
