"""Providers' routes: register datasets (multipart upload) and govern their policies.

``POST /v1/datasets`` streams the file part of a ``multipart/form-data`` body
straight to a temporary directory under ``data_dir/uploads`` with a size cap
(``app.state.upload_limit``, default 2 GiB: 413 beyond), so neither memory nor
the system temp dir holds it; the directory is removed once the registry has
converted the file. ``PUT /v1/datasets/{name}/policy`` takes the YAML text
itself as the body, with the content type ``application/yaml``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from gateway.auth import requires
from gateway.identity import Account, Role
from gateway.providers.schemas import (
    UPLOAD_FIELDS,
    DatasetOut,
    DatasetSummary,
    PolicyDiffOut,
    PolicyOut,
    PolicyVersionOut,
    RegisteredOut,
    VersionOut,
)
from gateway.providers.service import (
    MAX_UPLOAD_BYTES,
    InvalidPolicy,
    ProviderError,
    ProviderService,
    UploadTooLarge,
    provider_service,
)

router = APIRouter(prefix="/v1", tags=["providers"])

MAX_FIELD_BYTES = 1024  # a form field other than the file
FORM_OVERHEAD = 64 * 1024  # part headers and the other fields, beyond the file's bytes
MAX_POLICY_BYTES = 1024 * 1024
POLICY_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
POLICY_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/yaml": {"schema": {"type": "string"}}},
    }
}
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [k for k, (required, _) in UPLOAD_FIELDS.items() if required],
                    "properties": {
                        k: {"type": "string", "description": d}
                        | ({"format": "binary"} if k == "file" else {})
                        for k, (_, d) in UPLOAD_FIELDS.items()
                    },
                }
            }
        },
    }
}


def service(request: Request) -> ProviderService:
    return provider_service(request.app)


Service = Annotated[ProviderService, Depends(service)]
Provider = Annotated[Account, Depends(requires(Role.PROVIDER))]
Reader = Annotated[Account, Depends(requires(Role.PROVIDER, Role.ADMIN, Role.AUDITOR))]
PolicyReader = Annotated[
    Account, Depends(requires(Role.PROVIDER, Role.ADMIN, Role.AUDITOR, Role.OPERATOR))
]


# -- the upload --------------------------------------------------------------------


@dataclass
class _Upload:
    directory: Path
    limit: int
    fields: dict[str, str] = field(default_factory=dict)
    file: Path | None = None
    size: int = 0
    # the part being parsed
    _header: bytes = b""
    _value: bytes = b""
    _headers: dict[bytes, bytes] = field(default_factory=dict)
    _name: str | None = None
    _data: bytearray = field(default_factory=bytearray)
    _out: IO[bytes] | None = None
    problem: ProviderError | None = None

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _fail(self, problem: ProviderError) -> None:
        if self.problem is None:
            self.problem = problem

    def _begin(self) -> None:
        self._headers, self._name, self._data, self._out = {}, None, bytearray(), None

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header.lower()] = self._value
        self._header, self._value = b"", b""

    def _headers_done(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if name not in UPLOAD_FIELDS:
            return self._fail(ProviderError(f"unexpected form field {name[:40]!r}"))
        if name in self.fields or (name == "file" and self.file is not None):
            return self._fail(ProviderError(f"the form field {name!r} is given twice"))
        self._name = name
        if name == "file" and self.problem is None:
            filename = params.get(b"filename", b"").decode("utf-8", "replace")
            self.file = self.directory / _safe_filename(filename)
            self._out = self.file.open("xb")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._name is None or self.problem is not None:
            return
        if self._out is not None:
            self.size += end - start
            if self.size > self.limit:
                return self._fail(UploadTooLarge(f"the file is larger than {self.limit} bytes"))
            self._out.write(data[start:end])
        else:
            self._data += data[start:end]
            if len(self._data) > MAX_FIELD_BYTES:
                self._fail(ProviderError(f"the form field {self._name!r} is too long"))

    def _part_end(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        elif self._name is not None and self.problem is None:
            try:
                self.fields[self._name] = self._data.decode("utf-8").strip()
            except UnicodeDecodeError:
                self._fail(ProviderError(f"the form field {self._name!r} is not UTF-8"))

    def close(self) -> None:
        if self._out is not None:
            self._out.close()


def _flag(value: str, name: str) -> bool:
    if value.lower() in ("", "false", "0", "no"):
        return False
    if value.lower() in ("true", "1", "yes"):
        return True
    raise ProviderError(f"the form field {name!r} is true or false")


def _safe_filename(filename: str) -> str:
    """The client's base name, reduced to safe characters (the registry records it)."""
    base = re.split(r"[\\/]", filename)[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")[:100]
    return cleaned or "upload"


async def _receive(request: Request, directory: Path, limit: int) -> _Upload:
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ProviderError("send the file as multipart/form-data (fields: file, name, ...)")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit + FORM_OVERHEAD:
        raise UploadTooLarge(f"the file is larger than {limit} bytes")
    upload = _Upload(directory, limit)
    parser = MultipartParser(boundary, upload.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if upload.problem is not None:
                break
        else:
            parser.finalize()
    except MultipartParseError as e:
        raise ProviderError("the multipart body is malformed") from e
    finally:
        upload.close()
    if upload.problem is not None:
        raise upload.problem
    missing = [
        k
        for k, (required, _) in UPLOAD_FIELDS.items()
        if required and k != "file" and not upload.fields.get(k)
    ]
    if upload.file is None:
        missing.insert(0, "file")
    if missing:
        raise ProviderError(f"missing form fields: {', '.join(missing)}")
    return upload


@router.post("/datasets", response_model=RegisteredOut, status_code=201, openapi_extra=UPLOAD_BODY)
async def register_dataset(request: Request, account: Provider, datasets: Service) -> RegisteredOut:
    """Register a CSV or Parquet file as a version of a dataset the caller provides.

    The same bytes again return the stored version (``created`` false)."""
    limit = int(getattr(request.app.state, "upload_limit", MAX_UPLOAD_BYTES))
    uploads = datasets.registry.root / "uploads"
    uploads.mkdir(exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="upload-", dir=uploads))
    try:
        upload = await _receive(request, directory, limit)
        assert upload.file is not None
        fields = upload.fields
        done = await run_in_threadpool(
            datasets.register,
            upload.file,
            name=fields["name"],
            entity_column=fields["entity_column"],
            provider=account.name,
            encoding=fields.get("encoding") or None,
            source_format=fields.get("source_format") or None,
            delimiter=fields.get("delimiter") or None,
            rename_columns=_flag(fields.get("rename_columns", ""), "rename_columns"),
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return RegisteredOut(
        name=done.dataset.name, created=done.created, version=VersionOut.of(done.dataset)
    )


# -- reading datasets ----------------------------------------------------------------


@router.get("/datasets", response_model=list[DatasetSummary])
def list_datasets(account: Reader, datasets: Service) -> list[DatasetSummary]:
    """Administrators and auditors: every dataset; providers: their own."""
    return [DatasetSummary.of(v) for v in datasets.visible(account.name, account.roles)]


@router.get("/datasets/{name}", response_model=DatasetOut)
def get_dataset(name: str, account: Reader, datasets: Service) -> DatasetOut:
    """Every version of the dataset: columns and types, row count, provider."""
    newest = datasets.check_read(account.name, account.roles, name)
    versions = [VersionOut.of(v) for v in datasets.versions(name)]
    return DatasetOut(name=name, provider=newest.provider, versions=versions)


# -- policies --------------------------------------------------------------------------


@router.put("/datasets/{name}/policy", response_model=PolicyOut, openapi_extra=POLICY_BODY)
async def put_policy(
    name: str, request: Request, account: Provider, datasets: Service
) -> PolicyOut:
    """Apply a new policy (YAML, ``Content-Type: application/yaml``) to the dataset.

    It is checked against the newest version's columns; a refused policy stores
    nothing and the 422 lists every problem with its field and line."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in POLICY_TYPES:
        raise HTTPException(415, detail="send the policy as YAML (Content-Type: application/yaml)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_POLICY_BYTES:
            raise HTTPException(413, detail=f"a policy is at most {MAX_POLICY_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProviderError("the policy is not UTF-8 text") from e
    try:
        applied = await run_in_threadpool(datasets.apply_policy, name, text, account.name)
    except InvalidPolicy as e:
        raise HTTPException(422, detail={"message": str(e), "problems": e.problems}) from e
    return PolicyOut.of(applied)


@router.get("/datasets/{name}/policy", response_model=PolicyOut)
def get_policy(name: str, account: PolicyReader, datasets: Service) -> PolicyOut:
    """The dataset's newest policy."""
    datasets.check_read_policy(account.name, account.roles, name)
    return PolicyOut.of(datasets.policy(name))


@router.get("/datasets/{name}/policy/versions", response_model=list[PolicyVersionOut])
def policy_versions(name: str, account: PolicyReader, datasets: Service) -> list[PolicyVersionOut]:
    """Every stored version of the dataset's policy, oldest first."""
    datasets.check_read_policy(account.name, account.roles, name)
    return [PolicyVersionOut.of(p) for p in datasets.policy_versions(name)]


@router.get("/datasets/{name}/policy/diff", response_model=PolicyDiffOut)
def policy_diff(
    name: str,
    account: PolicyReader,
    datasets: Service,
    old: Annotated[str, Query(alias="from")],
    new: Annotated[str, Query(alias="to")],
) -> PolicyDiffOut:
    """A unified diff of two stored versions' YAML texts (``from`` to ``to``)."""
    datasets.check_read_policy(account.name, account.roles, name)
    diff = datasets.diff(name, old, new)
    return PolicyDiffOut(dataset=name, from_version=old, to_version=new, diff=diff)
