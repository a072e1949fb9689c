"""``dsr he``: the privacy-computing products from the command line.

Consumers: ``dsr he keys`` makes a key file (0600; the secret key never
leaves it); ``dsr he verify`` and ``dsr he score`` call a product over HTTP,
encrypting the query and decrypting the answer locally. Operators and
reviewers: ``dsr he products create/list/show/approve/deny/withdraw``
(:mod:`gateway.client.he_products`).

The gateway and the token are found like every client command's
(:mod:`gateway.client.config`: ``--server``/``--token``/``--profile``,
``DSR_SERVER``/``DSR_TOKEN``, the config file); ``--url`` and ``DSR_URL``
still name the server. Errors and exit codes are those of
:mod:`gateway.client.errors`. TenSEAL is imported by the commands that
encrypt, not when ``dsr`` starts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import httpx
import typer

from gateway.client.errors import UsageError
from gateway.client.he_products import products_app
from gateway.client.http import refusal, target_of, transport_failure
from gateway.client.render import Profile, Server, Token, handled

if TYPE_CHECKING:
    from gateway.he.client import HEClient

he_app = typer.Typer(help="Privacy-computing products: encrypted verification and scoring.",
                     no_args_is_help=True)  # fmt: skip
he_app.add_typer(products_app, name="products")
Url = Annotated[
    str | None, typer.Option("--url", hidden=True, help="the gateway's URL (as --server)")
]
KeysFile = Annotated[Path, typer.Option("--keys", help="the key file made by `dsr he keys`")]


@he_app.command("keys")
def keys(
    path: Annotated[Path, typer.Argument(help="where to write the key file (must not exist)")],
    kind: Annotated[str, typer.Option(help="verify or score")] = "verify",
) -> None:
    """Make a key pair for a product kind; the file holds the secret key (mode 0600)."""
    if kind not in ("verify", "score"):
        raise typer.BadParameter("kind is verify or score")
    if path.exists():
        raise typer.BadParameter(f"{path} exists; keys are never overwritten")
    from gateway.he.client import make_keys

    make_keys(path, kind)
    typer.echo(f"{kind} keys written to {path} (keep it secret: it holds the secret key)")


def _server(server: str | None, url: str | None) -> str | None:
    """``--server``, else ``--url``, else ``DSR_URL`` where ``DSR_SERVER`` is not set."""
    if server or url:
        return server or url
    if not os.environ.get("DSR_SERVER"):
        return os.environ.get("DSR_URL") or None
    return None


@contextmanager
def _client(
    server: str | None, token: str | None, profile: str | None, keys_path: Path
) -> Iterator[HEClient]:
    """A product client with the consumer's keys; every failure a message and exit code."""
    from gateway.he.client import HEClient, HEClientError

    with handled():
        target = target_of(server, token, profile)
        try:
            client = HEClient(target.server, target.token or "", keys_path)
        except (OSError, ValueError, RuntimeError) as e:
            raise UsageError(f"cannot use the key file {keys_path}: {e}") from e
        try:
            yield client
        except HEClientError as e:
            if e.response is None:
                raise UsageError(str(e)) from e
            raise refusal(e.response) from e
        except httpx.HTTPError as e:
            raise transport_failure(e, target.server) from e
        except ValueError as e:  # keys of the other kind, a claim out of range
            raise UsageError(str(e)) from e
        finally:
            client.close()


@he_app.command("verify")
def verify(
    product: str,
    subject: str,
    claim: int,
    keys_path: KeysFile,
    server: Server = None,
    token: Token = None,
    profile: Profile = None,
    url: Url = None,
) -> None:
    """Does the record agree that SUBJECT has band CLAIM? Prints yes or no."""
    with _client(_server(server, url), token, profile, keys_path) as client:
        agrees = client.verify(product, subject, claim)
    typer.echo("yes" if agrees else "no")


@he_app.command("score")
def score(
    product: str,
    features: Annotated[str, typer.Argument(help="comma-separated, in the product's order")],
    keys_path: KeysFile,
    server: Server = None,
    token: Token = None,
    profile: Profile = None,
    url: Url = None,
) -> None:
    """The product's score of FEATURES, computed on the encrypted features."""
    with handled():
        try:
            values = [float(x) for x in features.split(",") if x.strip()]
        except ValueError as e:
            raise UsageError(f"features are numbers separated by commas: {e}") from e
    with _client(_server(server, url), token, profile, keys_path) as client:
        result = client.score(product, values)
    typer.echo(f"{result:.6f}")
