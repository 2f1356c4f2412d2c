"""A local Stripe: a real HTTP server on 127.0.0.1 that answers the Stripe SDK like Stripe's API, from
Stripe's own OpenAPI description and fixtures, for the tests and ``oddsforge demo`` (no key, no
network). The description is read in place from ``ODDSFORGE_STRIPE_OPENAPI_DIR`` (default
``<repo>/../shared/data/stripe``, beside the clone); it is not part of the project, so without it
:func:`spec_available` is False and callers say so and go without.

Each request is checked against the description the way Stripe checks it: the path and method must
exist (else 404 "Unrecognized request URL"), required parameters must be present, unknown ones are
rejected, and integers, booleans and enums must parse, all as 400 ``invalid_request_error`` with
Stripe's messages. A create answers the resource's fixture with the request's fields merged in and a
fresh id (or the ``id`` asked for, where the API allows one, refused if taken); objects can then be
retrieved, updated and deleted (a subscription's DELETE cancels it). A Refund takes its amount off the
charge it names (objects Stripe would hold from payments, such as charges, are seeded with
:meth:`StripeServer.add`) and ``expand`` embeds the objects a create names. ``Idempotency-Key``
works as on Stripe (on POST, and on DELETE, where Stripe ignores it): a repeated key replays the
first response (``Idempotent-Replayed: true``) and creates nothing; reusing a key with other
parameters is an ``idempotency_error``. Every request is recorded, with its key. What a person does
on Stripe's hosted pages is a method: :meth:`StripeServer.complete_checkout` pays a Checkout Session.

Loading: parsing the 4 MB ``spec3.yaml`` takes 1.1 s on an idle machine (with libyaml; 3-5 s under
load), so :func:`load_spec_index` reduces it to the operations (path, method, parameter schemas,
response resource), 1 MB of JSON cached under a folder (the pytest cache in the tests, the warehouse
folder in the demo) and keyed by
the spec's sha256: later sessions load it in 40-60 ms, and each process loads it once.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import itertools
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

SPEC_DIR_ENV = "ODDSFORGE_STRIPE_OPENAPI_DIR"
DEFAULT_SPEC_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "stripe"
API_KEY = "sk_test_oddsforge_local_0123456789"

_INDEX_VERSION = 1
"""Bump when :func:`_reduce` changes, so older cached indexes are not read."""


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    pattern: re.Pattern[str]
    params: dict[str, Any]
    """One object schema for every parameter (form body and query string together)."""
    resource: str | None
    """The fixture/schema name the operation answers with, e.g. ``product``."""


@dataclass(frozen=True)
class SpecIndex:
    operations: tuple[Operation, ...]
    fixtures: dict[str, dict[str, Any]]

    def match(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        for op in self.operations:
            if op.method == method and (m := op.pattern.fullmatch(path)):
                return op, m.groupdict()
        return None


def _response_resource(op: dict[str, Any]) -> str | None:
    schema = op.get("responses", {}).get("200", {}).get("content", {}).get("application/json", {})
    schema = schema.get("schema", {})
    for candidate in (schema, *schema.get("anyOf", [])):
        if "$ref" in candidate:
            return candidate["$ref"].rsplit("/", 1)[-1]
    return None


def _reduce(spec: dict[str, Any]) -> dict[str, Any]:
    """The operations of the description, with only what the server checks."""
    operations = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            if method not in {"get", "post", "delete"}:
                continue
            form = op.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded", {})
            form_schema = form.get("schema", {"type": "object", "properties": {}})
            query = {p["name"]: p.get("schema", {}) for p in op.get("parameters", []) if p["in"] == "query"}
            required = [
                p["name"] for p in op.get("parameters", []) if p["in"] == "query" and p.get("required")
            ]
            params = {
                "type": "object",
                "properties": {**form_schema.get("properties", {}), **query},
                "required": [*form_schema.get("required", []), *required],
            }
            operations.append(
                {"method": method, "path": path, "params": params, "resource": _response_resource(op)}
            )
    return {"operations": operations}


def _pattern(path: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)))


def spec_dir() -> Path:
    """Where Stripe's description and fixtures are read from (``ODDSFORGE_STRIPE_OPENAPI_DIR``)."""
    return Path(os.environ.get(SPEC_DIR_ENV) or DEFAULT_SPEC_DIR)


def spec_available(folder: Path | None = None) -> bool:
    """Whether ``folder`` (default :func:`spec_dir`) holds ``spec3.yaml`` and ``fixtures3.json``."""
    folder = folder or spec_dir()
    return (folder / "spec3.yaml").is_file() and (folder / "fixtures3.json").is_file()


@functools.cache
def load_spec_index(folder: Path | None = None, cache_dir: Path | None = None) -> SpecIndex:
    """The reduced description (cached under ``cache_dir``) and the fixtures of ``folder`` (default
    :func:`spec_dir`); memoised per process."""
    folder = folder or spec_dir()
    spec, fixtures = folder / "spec3.yaml", folder / "fixtures3.json"
    raw = spec.read_bytes()
    cached = (
        cache_dir / f"spec-{hashlib.sha256(raw).hexdigest()[:16]}-v{_INDEX_VERSION}.json"
        if cache_dir
        else None
    )
    if cached and cached.is_file():
        reduced = json.loads(cached.read_bytes())
    else:
        reduced = _reduce(yaml.load(raw, Loader=yaml.CSafeLoader))
        if cached:
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(reduced))
            tmp.replace(cached)
    # Literal segments first, so /v1/customers/search wins over /v1/customers/{customer}.
    ops = sorted(reduced["operations"], key=lambda o: (o["path"].count("{"), o["path"]))
    return SpecIndex(
        operations=tuple(
            Operation(o["method"], o["path"], _pattern(o["path"]), o["params"], o["resource"]) for o in ops
        ),
        fixtures=json.loads(fixtures.read_bytes())["resources"],
    )


# -- form decoding and validation ----------------------------------------------------------------
class ApiError(Exception):
    """An answer in Stripe's error shape ``{"error": {"type", "code", "param", "message"}}``."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        param: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.param, self.kind = status, code, message, param, kind

    def body(self) -> dict[str, Any]:
        error = {"type": self.kind, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``a[b][0][c]=v`` pairs as nested dicts, with digit-keyed dicts turned into lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"^[^\[]+|(?<=\[)[^\]]*(?=\])", key)
        if not parts:
            raise ApiError(400, "parameter_invalid", f"Invalid parameter: {key!r}", key)
        node = root
        for part, nxt in zip(parts, [*parts[1:], None], strict=True):
            if nxt is None:
                node[part if part else str(len(node))] = value
            else:
                node = node.setdefault(part if part else str(len(node)), {})
                if not isinstance(node, dict):
                    raise ApiError(400, "parameter_invalid", f"Invalid parameter: {key}", key)

    def lists(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        if value and all(k.isdigit() for k in value):
            return [lists(value[k]) for k in sorted(value, key=int)]
        return {k: lists(v) for k, v in value.items()}

    return lists(root)


def _name(parent: str, key: str) -> str:
    return f"{parent}[{key}]" if parent else key


def validate(value: Any, schema: dict[str, Any], name: str = "") -> Any:
    """``value`` (strings from a form) checked against ``schema`` and converted to its types."""
    if "anyOf" in schema:
        errors = []
        for branch in schema["anyOf"]:
            try:
                return validate(value, branch, name)
            except ApiError as exc:
                errors.append((_kind_matches(value, branch), exc))
        raise max(errors, key=lambda e: e[0])[1]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if not isinstance(value, dict):
            raise ApiError(400, "parameter_invalid_object", f"Invalid object: {name}", name)
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        out = {}
        for key, item in value.items():
            if key in props:
                out[key] = validate(item, props[key], _name(name, key))
            elif isinstance(extra, dict):
                out[key] = validate(item, extra, _name(name, key))
            else:
                param = _name(name, key)
                raise ApiError(400, "parameter_unknown", f"Received unknown parameter: {param}", param)
        for key in schema.get("required", []):
            if key not in value:
                param = _name(name, key)
                raise ApiError(400, "parameter_missing", f"Missing required param: {param}.", param)
        return out
    if kind == "array":
        if not isinstance(value, list):
            raise ApiError(400, "parameter_invalid_array", f"Invalid array: {name}", name)
        return [validate(item, schema.get("items", {}), _name(name, str(i))) for i, item in enumerate(value)]
    if isinstance(value, dict | list):
        raise ApiError(400, "parameter_invalid", f"Invalid {kind or 'value'}: {name}", name)
    if kind == "integer":
        if not re.fullmatch(r"-?\d+", value):
            raise ApiError(400, "parameter_invalid_integer", f"Invalid integer: {value}", name)
        return int(value)
    if kind == "boolean":
        if value not in {"true", "false"}:
            raise ApiError(400, "parameter_invalid_boolean", f"Invalid boolean: {value}", name)
        return value == "true"
    if kind == "number":
        try:
            return float(value)
        except ValueError:
            raise ApiError(400, "parameter_invalid", f"Invalid number: {value}", name) from None
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(str(v) for v in schema["enum"])
        raise ApiError(400, "parameter_invalid_string", f"Invalid {name}: must be one of {allowed}", name)
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        message = f"Invalid {name}: must be at most {schema['maxLength']} characters"
        raise ApiError(400, "parameter_invalid_string", message, name)
    return value


def _kind_matches(value: Any, schema: dict[str, Any]) -> bool:
    """Whether a failed ``anyOf`` branch is the one meant (its error is the one to report)."""
    kind = schema.get("type", "object" if "properties" in schema else None)
    return (isinstance(value, dict) and kind == "object") or (isinstance(value, list) and kind == "array")


def _merge(target: dict[str, Any], params: dict[str, Any]) -> None:
    """Request fields onto an object: nested objects merge, metadata merges key by key (``""``
    unsets a key), scalars replace scalars; other shapes (a request's ``items`` list against the
    object's list envelope) are left to the resource's own rules."""
    for key, value in params.items():
        if key not in target or key == "expand":
            continue
        current = target[key]
        if key == "metadata" and isinstance(value, dict):
            merged = {**(current or {}), **value}
            target[key] = {k: v for k, v in merged.items() if v != ""}
        elif isinstance(value, dict) and isinstance(current, dict):
            _merge(current, value)
        elif not isinstance(value, dict | list) and not isinstance(current, dict | list):
            target[key] = value


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    status: int
    replayed: bool


class StripeServer:
    """Context manager: ``with StripeServer(load_spec_index()) as server: server.url``."""

    def __init__(self, spec: SpecIndex, api_key: str = API_KEY) -> None:
        self.spec = spec
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self._objects: dict[str, dict[str, Any]] = {}
        self._checkouts: dict[str, dict[str, Any]] = {}
        """The parameters each Checkout Session was created with (its subscription is made of them)."""
        self._replies: dict[str, tuple[str, str, dict[str, Any], int, bytes]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def objects(self, resource: str) -> list[dict[str, Any]]:
        """The live objects of one resource (``transfer``, ``price``, ...) held by the server."""
        with self._lock:
            return [copy.deepcopy(o) for o in self._objects.values() if o.get("object") == resource]

    def complete_checkout(self, session_id: str) -> dict[str, Any]:
        """What Stripe does when a customer completes an open subscription-mode Checkout Session on
        its hosted page: the subscription is created from the session's line items, trial and
        ``subscription_data.metadata``, and the session becomes ``complete``. Returns the subscription
        (for the webhooks a test then delivers)."""
        with self._lock:
            session = self._objects.get(session_id)
            if session is None or session.get("object") != "checkout.session" or session["status"] != "open":
                raise ValueError(f"{session_id} is not an open Checkout Session")
            params = self._checkouts[session_id]
            data = params.get("subscription_data", {})
            trial = data.get("trial_period_days", 0)
            items = [{"price": i["price"], "quantity": i.get("quantity", 1)} for i in params["line_items"]]
            sub_params = {
                "customer": params.get("customer"),
                "items": items,
                "metadata": data.get("metadata", {}),
            }
            if trial:
                sub_params["trial_period_days"] = trial
            sub = self._create("subscription", sub_params, int(time.time()))
            session.update(
                status="complete",
                payment_status="no_payment_required" if trial else "paid",
                subscription=sub["id"],
            )
            return copy.deepcopy(sub)

    def __enter__(self) -> StripeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    # -- request handling ------------------------------------------------------------------------
    def handle(
        self, method: str, target: str, body: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        split = urlsplit(target)
        pairs = parse_qsl(split.query, keep_blank_values=True) + parse_qsl(body, keep_blank_values=True)
        key = headers.get("idempotency-key") if method in {"post", "delete"} else None
        with self._lock:
            params: dict[str, Any] = {}
            replayed = False
            try:
                params = decode_form(pairs)
                if headers.get("authorization") != f"Bearer {self.api_key}":
                    raise ApiError(401, None, "Invalid API Key provided.")
                found = self.spec.match(method, split.path)
                if found is None:
                    message = f"Unrecognized request URL ({method.upper()}: {split.path})."
                    raise ApiError(404, None, message)
                op, path_params = found
                params = validate(params, op.params)
                if key is not None and key in self._replies:
                    status, data = self._replay(key, method, split.path, params)
                    replayed = True
                else:
                    status, data = self._execute(op, path_params, params)
                    if key is not None:
                        self._replies[key] = (method, split.path, params, status, data)
            except ApiError as exc:
                status, data = exc.status, json.dumps(exc.body()).encode()
            self.requests.append(Recorded(method.upper(), split.path, params, key, status, replayed))
        reply_headers = {"Content-Type": "application/json", "Request-Id": f"req_{next(self._ids):014d}"}
        if replayed:
            reply_headers["Idempotent-Replayed"] = "true"
        return status, reply_headers, data

    def _replay(self, key: str, method: str, path: str, params: dict[str, Any]) -> tuple[int, bytes]:
        first_method, first_path, first_params, status, data = self._replies[key]
        if (first_method, first_path, first_params) != (method, path, params):
            message = (
                "Keys for idempotent requests can only be used with the same parameters they were first "
                f"used with. Try using a key other than '{key}' if you meant to execute a different request."
            )
            raise ApiError(400, None, message, kind="idempotency_error")
        return status, data

    def _execute(
        self, op: Operation, path_params: dict[str, str], params: dict[str, Any]
    ) -> tuple[int, bytes]:
        """Create (POST on a collection), retrieve, update or delete one object; nothing else."""
        resource = op.resource or ""
        kind = resource.removeprefix("deleted_")
        is_object = len(path_params) == 1 and op.path.endswith("}")
        if kind not in self.spec.fixtures or not (is_object or (op.method == "post" and not path_params)):
            message = f"{op.method.upper()} {op.path} is not served by the test server"
            raise ApiError(501, None, message, kind="api_error")
        now = int(time.time())
        if not is_object:
            return 200, json.dumps(self._expanded(self._create(resource, params, now), params)).encode()
        (object_id,) = path_params.values()
        obj = self._objects.get(object_id)
        if obj is None or obj.get("object") != kind:
            raise ApiError(404, "resource_missing", f"No such {kind}: '{object_id}'", "id")
        if op.method == "post":
            _merge(obj, params)
        elif op.method == "delete" and resource.startswith("deleted_"):
            del self._objects[object_id]
            return 200, json.dumps({"id": object_id, "object": kind, "deleted": True}).encode()
        elif op.method == "delete":
            obj.update(status="canceled", canceled_at=now, ended_at=now)
        return 200, json.dumps(obj).encode()

    def _create(self, resource: str, params: dict[str, Any], now: int) -> dict[str, Any]:
        obj = copy.deepcopy(self.spec.fixtures[resource])
        if "id" not in obj:  # an object without an id (an account link) is answered, never stored
            _merge(obj, params)
            obj["created"] = now
            return obj
        object_id = params.get("id") or f"{obj['id'].split('_', 1)[0]}_local{next(self._ids):012d}"
        if object_id in self._objects:
            message = f"Object already exists: {resource} with id {object_id}"
            raise ApiError(400, "resource_already_exists", message, "id")
        _merge(obj, params)
        if isinstance(obj.get("url"), str):  # a hosted page's address names its object
            obj["url"] = obj["url"].replace(obj["id"], object_id)
        obj.update(id=object_id, created=now, livemode=False)
        if resource == "price" and "unit_amount" in params:
            obj["unit_amount_decimal"] = str(params["unit_amount"])
        if resource == "subscription":
            self._shape_subscription(obj, params, now)
        if resource == "checkout.session":
            obj.update(status="open", expires_at=params.get("expires_at", now + 86_400))
            self._checkouts[object_id] = params
        if resource == "refund":
            self._refund_charge(obj, params)
        self._objects[object_id] = obj
        return obj

    def add(self, resource: str, **fields: Any) -> dict[str, Any]:
        """Hold an object Stripe would have from activity this server does not take (a charge made
        by a paid invoice, ...): the resource's fixture with ``fields`` (an ``id`` among them)."""
        obj = {**copy.deepcopy(self.spec.fixtures[resource]), "created": int(time.time()), **fields}
        with self._lock:
            self._objects[obj["id"]] = obj
        return copy.deepcopy(obj)

    def _refund_charge(self, refund: dict[str, Any], params: dict[str, Any]) -> None:
        """What Stripe does on a refund: find the charge (or the payment intent's), check the amount
        against what is left, and add it to the charge's ``amount_refunded``."""
        intent = params.get("payment_intent")
        charge = self._objects.get(params.get("charge", "")) or next(
            (
                o
                for o in self._objects.values()
                if o.get("object") == "charge" and intent and o.get("payment_intent") == intent
            ),
            None,
        )
        if charge is None or charge.get("object") != "charge":
            param, value = (
                ("charge", params.get("charge")) if "charge" in params else ("payment_intent", intent)
            )
            raise ApiError(400, "resource_missing", f"No such {param}: '{value}'", param)
        left = charge["amount"] - charge["amount_refunded"]
        amount = params.get("amount", left)
        if amount > left:
            message = f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})"
            raise ApiError(400, "amount_too_large", message, "amount")
        charge.update(amount_refunded=charge["amount_refunded"] + amount, refunded=amount == left)
        refund.update(
            amount=amount,
            charge=charge["id"],
            payment_intent=charge.get("payment_intent"),
            status="succeeded",
        )

    def _expanded(self, obj: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """``obj`` with the top-level references named in ``expand`` replaced by the objects held."""
        out = copy.deepcopy(obj)
        for field in params.get("expand", []):
            ref = out.get(field)
            if isinstance(ref, str) and ref in self._objects:
                out[field] = copy.deepcopy(self._objects[ref])
        return out

    def _shape_subscription(self, sub: dict[str, Any], params: dict[str, Any], now: int) -> None:
        """What Stripe derives on creation: items with their prices, trial and period dates."""
        template = sub["items"]["data"][0]
        items = []
        for item in params.get("items", []):
            price = self._objects.get(item.get("price", ""))
            if price is None or price.get("object") != "price":
                raise ApiError(400, "resource_missing", f"No such price: '{item.get('price')}'", "items")
            items.append(
                {
                    **template,
                    "id": f"si_local{next(self._ids):012d}",
                    "price": price,
                    "subscription": sub["id"],
                    "created": now,
                    "quantity": item.get("quantity", 1),
                }
            )
        trial = params.get("trial_period_days", 0) * 86_400
        sub["items"] = {
            **sub["items"],
            "data": items,
            "url": f"/v1/subscription_items?subscription={sub['id']}",
        }
        sub.update(
            status="trialing" if trial else "active",
            start_date=now,
            billing_cycle_anchor=now + trial,
            current_period_start=now,
            current_period_end=now + (trial or 30 * 86_400),
            trial_start=now if trial else None,
            trial_end=now + trial if trial else None,
            cancel_at=None,
            canceled_at=None,
            ended_at=None,
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, reply_headers, data = server.handle(method, self.path, body, headers)
                self.send_response(status)
                for name, value in reply_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("get")

            def do_POST(self) -> None:
                self._serve("post")

            def do_DELETE(self) -> None:
                self._serve("delete")

            def log_message(self, format: str, *args: Any) -> None:
                """Silent: tests read :attr:`StripeServer.requests` instead."""

        return Handler
