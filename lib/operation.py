"""The operation runtime every generated action module delegates to.

An action module declares ``operation = Operation(...)`` and exports ``process = operation.process``.
The sailor calls ``process(ctx, msg, cfg, snapshot)`` (``ctx`` is the sailor's ``self``), so
``Operation.process`` takes the context as its first argument after ``self``.

Per message: shallow-copy ``msg.data``; rename aliases; fill missing path/query parameters from cfg step
fields of the same name; move a flat body into ``requestBody``; fill the body fields a dropdown may supply
(``cfg_body_fields``, 2.16 tickets); turn integers given for string ids into strings (the generator lists
where, ``string_ids``); validate against ``schemas/<action_id>.in.json`` (validator compiled once per
process); build the request (with the declaration's ``default_headers``: a 2.16 action's
``Intercom-Version``, unless the message sets it); call the shared ``IntercomClient``; and return the
data message(s): a dict for a single result, a generator for lists (emitted in order by the sailor;
constant memory for ``emitIndividually``). All checks happen before the
first request, so an invalid message or step configuration never reaches Intercom.

Metadata decision: the outgoing metadata is a shallow copy of the incoming one (``applicationUid``,
``oihUid`` and any other keys a flow relies on travel on), with ``recordUid`` replaced by the Intercom
object's ``id`` or removed when the result is not one object (pages, lists, empty answers without an
``id`` path parameter): an incoming ``recordUid`` names a record of another application.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema_rs

from lib import inputs, step_fields
from lib.intercom import answers, auth_retry, pagination
from lib.intercom.client import IntercomClient
from lib.intercom.errors import ConfigurationError, ValidationError

if TYPE_CHECKING:  # jsonschema itself is imported when first needed (SchemaValidator.reference)
    from jsonschema import exceptions as js_exceptions

__all__ = ["ConfigurationError", "Operation", "ValidationError"]

log = logging.getLogger("lib.operation")

COMPONENT_ROOT = Path(__file__).resolve().parents[1]
_PATH_PARAM = re.compile(r"\{([^{}]+)\}")
_MAX_MESSAGE = 200
_pagination_styles = pagination.STYLES  # `pagination` is also the name of an Operation argument


_validators: dict[str, SchemaValidator] = {}
_validators_lock = threading.Lock()


class SchemaValidator:
    """An in-schema compiled once per process: a fast yes/no, and readable errors when the answer is no.

    ``jsonschema_rs`` answers "is it valid?" for every message; the reference ``jsonschema`` validator
    (which picks the draft the schema declares) describes the failures, which only costs time when a
    message is invalid. Formats are annotations in both, as Draft 2020-12 specifies by default.
    The fast one decides: when it says no and the reference one finds nothing wrong (they differ, e.g.
    Python's ``$`` matches before a final newline, Rust's does not), the message is refused with the
    fast validator's own description.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        self._schema = schema
        self._reference: Any = None
        self.fast = None
        try:  # Rust validator for the per-message check: ~1000x faster on the search schemas' nested oneOf
            self.fast = jsonschema_rs.validator_for(schema, validate_formats=False)
        except Exception as exc:  # a construct the Rust validator refuses: the reference one copes
            log.debug("jsonschema_rs cannot compile %s: %s", schema.get("title"), exc)
            self.reference  # noqa: B018 - checked and compiled now, as it is needed for every message

    @property
    def reference(self) -> Any:
        """The reference validator, built when first needed: importing jsonschema costs ~0.1 s of the
        worker's start-up to first output, for messages that are almost always valid."""
        if self._reference is None:
            from jsonschema import validators as js_validators

            cls = js_validators.validator_for(self._schema, default=js_validators.Draft202012Validator)
            cls.check_schema(self._schema)
            self._reference = cls(self._schema)
        return self._reference

    def iter_errors(self, instance: Any) -> Iterator[js_exceptions.ValidationError]:
        if self.fast is None:
            return self.reference.iter_errors(instance)
        if self.fast.is_valid(instance):
            return iter(())
        errors = list(self.reference.iter_errors(instance))
        if errors:
            return iter(errors)
        return iter([_fast_error(error) for error in self.fast.iter_errors(instance)])


def _fast_error(error: Any) -> js_exceptions.ValidationError:
    """A jsonschema_rs error in the reference validator's form, for ``_describe`` (an invalid message only:
    jsonschema is imported when needed, see SchemaValidator.reference)."""
    from jsonschema.exceptions import ValidationError as ReferenceValidationError

    rule = type(error.kind).__name__
    rule = rule[:1].lower() + rule[1:]  # Pattern -> pattern, as the keyword is spelt
    return ReferenceValidationError(
        str(error.message), validator=rule, path=list(error.instance_path), instance=error.instance, schema={}
    )


def _compiled_validator(schema_path: Path | None, schema: dict[str, Any] | None, key: str) -> SchemaValidator:
    """The validator for a schema, compiled once per process and shared by every Operation using it."""
    validator = _validators.get(key)
    if validator is not None:
        return validator
    with _validators_lock:
        validator = _validators.get(key)
        if validator is None:
            if schema is None:
                assert schema_path is not None
                try:
                    schema = json.loads(schema_path.read_text(encoding="utf-8"))
                except FileNotFoundError:
                    raise ConfigurationError(f"In-schema {schema_path} not found") from None
            validator = SchemaValidator(schema)
            _validators[key] = validator
    return validator


class _HandedOver(dict):
    """A data message whose `data` is Intercom's answer as `response.json()` decoded it, referenced nowhere
    else (we never touch it after returning it). The class attribute tells the sailor so
    (elasticio_sailor.message.HANDOVER_ATTR): in-process it then skips a defensive deep copy and JSON check
    that would cost as much as decoding the page again. It is a plain dict to everyone else."""

    __slots__ = ()
    sailor_data_handover = True


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _field(path: Any) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"


def _join(path: Any, name: str) -> str:
    prefix = _field(path)
    return name if prefix == "(root)" else f"{prefix}.{name}"


def _describe(error: js_exceptions.ValidationError) -> list[dict[str, str]]:
    """Turn one jsonschema error into ``{field, rule, message}`` entries (one per missing/extra key)."""
    rule = str(error.validator)
    instance = error.instance
    if rule == "required" and isinstance(instance, dict):
        missing = [name for name in error.validator_value if name not in instance]
        return [
            {"field": _join(error.absolute_path, name), "rule": rule, "message": "is required"}
            for name in missing
        ] or [{"field": _field(error.absolute_path), "rule": rule, "message": _cut(error.message)}]
    if rule == "additionalProperties" and isinstance(instance, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        patterns = error.schema.get("patternProperties", {}) if isinstance(error.schema, dict) else {}
        extra = [
            name for name in instance if name not in known and not any(re.search(p, name) for p in patterns)
        ]
        return [
            {"field": _join(error.absolute_path, name), "rule": rule, "message": "is not allowed"}
            for name in extra
        ] or [{"field": _field(error.absolute_path), "rule": rule, "message": _cut(error.message)}]
    if rule == "oneOf" and not error.context:
        return [
            {
                "field": _field(error.absolute_path),
                "rule": rule,
                "message": "matches more than one of the allowed forms; exactly one must match",
            }
        ]
    if rule in ("oneOf", "anyOf") and error.context:
        from jsonschema.exceptions import best_match  # imported when a message is invalid (see reference)

        best = best_match(error.context)
        while best.validator in ("oneOf", "anyOf") and best.context:  # the innermost failing branch
            best = best_match(best.context)
        closest = _describe(best)[0]
        message = (
            f"matches none of the allowed forms (closest: {closest['field']}: {closest['message']},"
            f" rule {closest['rule']})"
        )
        return [{"field": _field(error.absolute_path), "rule": rule, "message": _cut(message)}]
    return [{"field": _field(error.absolute_path), "rule": rule, "message": _cut(error.message)}]


def _scalar(value: Any) -> Any:
    """A query value as Intercom expects it: booleans lowercase, nested structures as JSON."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return value


def _stringify_ids(value: Any, path: tuple[str, ...]) -> Any:
    """``value`` with an integer at ``path`` (``*`` = each array element) replaced by its decimal string.

    Copy-on-write: containers on the way are copied only where something changes, so the incoming message
    is never modified. Only ``int`` counts (never ``bool``, never a float such as 42.0: those stay as they
    are and fail validation with a clear error)."""
    if not path:
        return str(value) if type(value) is int else value
    head, rest = path[0], path[1:]
    if head == "*":
        if not isinstance(value, list):
            return value
        items = [_stringify_ids(item, rest) for item in value]
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    if not isinstance(value, dict) or head not in value:
        return value
    new = _stringify_ids(value[head], rest)
    return value if new is value[head] else {**value, head: new}


def _message_parts(msg: Any) -> tuple[Any, dict[str, Any]]:
    """(data, metadata) of a sailor Message, a ``{"data":..,"metadata":..}`` dict or a bare data dict."""
    data = getattr(msg, "data", None)
    metadata = getattr(msg, "metadata", None)
    if data is None and isinstance(msg, dict):
        if "data" in msg:
            data, metadata = msg.get("data"), msg.get("metadata")
        else:
            data = msg
    return ({} if data is None else data), (metadata if isinstance(metadata, dict) else {})


class Operation:
    """One Intercom REST operation, declared by a generated action module."""

    def __init__(
        self,
        action_id: str,
        method: str,
        path: str,
        path_params: tuple[str, ...] = (),
        query_params: tuple[str, ...] = (),
        header_params: tuple[str, ...] = (),
        has_body: bool = False,
        pagination: str | None = None,
        items_key: str | None = None,
        idempotent: bool | None = None,
        aliases: dict[str, tuple[str, ...]] | None = None,
        response: str = "json",
        string_ids: tuple[tuple[str, ...], ...] = (),
        default_headers: dict[str, str] | None = None,
        cfg_body_fields: tuple[str, ...] = (),
        *,
        component_root: str | Path | None = None,
        schema_dir: str | Path | None = None,
        schema: dict[str, Any] | None = None,
    ) -> None:
        if pagination is not None and pagination not in _pagination_styles:
            raise ValueError(f"{action_id}: unknown pagination {pagination!r}")
        if response not in ("json", "binary"):
            raise ValueError(f"{action_id}: unknown response kind {response!r}")
        self.action_id = action_id
        self.method = method.upper()
        self.path = path
        self.path_params = tuple(path_params)
        self.query_params = tuple(query_params)
        self.header_params = tuple(header_params)
        self.has_body = has_body
        self.pagination = pagination
        self.items_key = items_key
        self.idempotent = idempotent
        self.aliases = {k: tuple(v) for k, v in (aliases or {}).items()}
        self.response = response
        self.string_ids = tuple(tuple(p) for p in string_ids)  # chosen by tools/generate.py (string_ids)
        # Sent unless the message sets them: the 2.16 actions' Intercom-Version (the 2.8 actions have none
        # and send the credentials' intercomVersion, the session default), a download's Accept.
        self.default_headers = dict(default_headers or {})
        self.cfg_body_fields = tuple(cfg_body_fields)  # body fields a dropdown step field may supply
        self._path_parts = tuple(_PATH_PARAM.split(path))  # literal, name, literal, ... (names at odd places)
        self._cfg_fillable = tuple(dict.fromkeys(self.path_params + self.query_params))
        alias_names = {a for names in self.aliases.values() for a in names}
        self._param_names = frozenset(self.path_params + self.query_params + self.header_params) | alias_names
        root = Path(component_root) if component_root is not None else COMPONENT_ROOT
        self._schema_path = Path(schema_dir or root / "schemas") / f"{action_id}.in.json"
        self._schema = schema
        self._schema_key = (
            f"inline:{action_id}:{id(schema)}" if schema is not None else str(self._schema_path)
        )
        self._validator: Any = None

    def __repr__(self) -> str:
        return f"Operation({self.action_id!r}, {self.method} {self.path})"

    # ------------------------------------------------------------------------------ message -> request
    @property
    def validator(self) -> Any:
        if self._validator is None:
            self._validator = _compiled_validator(self._schema_path, self._schema, self._schema_key)
        return self._validator

    def prepare(self, data: Any, cfg: dict[str, Any]) -> dict[str, Any]:
        """Normalise ``msg.data`` (aliases, cfg fill-in, flat body) and validate it; raise ValidationError."""
        if not isinstance(data, dict):
            raise ValidationError(
                self.action_id,
                [{"field": "(root)", "rule": "type", "message": "the message data must be a JSON object"}],
            )
        data = dict(data)  # shallow: the body itself is never copied
        for name, alternatives in self.aliases.items():
            if data.get(name) is None:
                for alt in alternatives:
                    if data.get(alt) is not None:
                        data[name] = data.pop(alt)
                        break
        for name in self._cfg_fillable:
            if data.get(name) is None and cfg.get(name) not in (None, ""):
                data[name] = cfg[name]
        if self.has_body and "requestBody" not in data:
            body = {k: v for k, v in data.items() if k not in self._param_names}
            if body:
                data = {k: v for k, v in data.items() if k in self._param_names}
                data["requestBody"] = body
        for name in self.cfg_body_fields:  # e.g. ticket_type_id chosen in a step field (2.16 tickets)
            body = data.get("requestBody")
            if (
                cfg.get(name) not in (None, "")
                and (body is None or isinstance(body, dict))
                and (body or {}).get(name) is None
            ):
                data["requestBody"] = {**(body or {}), name: cfg[name]}
        errors = inputs.precheck(data)
        if errors:  # strings the HTTP stack cannot encode, too deep nesting: before the validators see it
            raise ValidationError(self.action_id, errors)
        for path in self.string_ids:  # a numeric id where Intercom's schema says string: sent as a string
            data = _stringify_ids(data, path)
        errors = self._errors(data)
        if errors and self.has_body and "requestBody" not in data:
            # No body given: name the missing body fields as requestBody.<field>, not as top-level keys
            # (keeping "requestBody: is required" where the schema requires a body)
            named = self._errors({**data, "requestBody": {}})
            if named:
                errors = [e for e in errors if e["field"] == "requestBody"] + named
        if errors:
            # jsonschema reports one `required` error per missing key, each naming the whole list: dedupe
            errors = list({(e["field"], e["rule"]): e for e in errors}.values())
            raise ValidationError(self.action_id, errors)
        return data

    def _errors(self, data: dict[str, Any]) -> list[dict[str, str]]:
        return [entry for error in self.validator.iter_errors(data) for entry in _describe(error)]

    def build(self, data: dict[str, Any]) -> dict[str, Any]:
        """The client arguments for validated data: path, params, headers, json (spread into the call)."""
        path = self.path
        if self.path_params:
            missing = [n for n in self.path_params if data.get(n) in (None, "")]
            if missing:
                raise ValidationError(
                    self.action_id,
                    [
                        {"field": n, "rule": "required", "message": "path parameter is required"}
                        for n in missing
                    ],
                )
            dots = [e for e in (inputs.dot_segment_error(n, data[n]) for n in self.path_params) if e]
            if dots:
                raise ValidationError(self.action_id, dots)
            path = "".join(
                part if i % 2 == 0 else inputs.path_segment(data[part])
                for i, part in enumerate(self._path_parts)
            )
        params: list[tuple[str, Any]] = []
        for name in self.query_params:
            value = data.get(name)
            if value is None:
                continue
            if isinstance(value, dict):  # style form, explode true: each key is its own parameter
                params.extend((k, _scalar(v)) for k, v in value.items() if v is not None)
            elif isinstance(value, list | tuple):
                params.extend((name, _scalar(v)) for v in value if v is not None)
            else:
                params.append((name, _scalar(value)))
        headers = dict(self.default_headers) or None
        for name in self.header_params:
            value = data.get(name)
            if value not in (None, ""):
                headers = headers or {}
                headers[name] = str(value)
        return {
            "path": path,
            "params": params or None,
            "headers": headers,
            "json": data.get("requestBody") if self.has_body else None,
        }

    # ----------------------------------------------------------------------------------------- run
    def process(self, ctx: Any, msg: Any, cfg: dict[str, Any], snapshot: Any = None) -> Any:
        """Validate, call Intercom, return the data message (or a generator of them for lists)."""
        data, metadata = _message_parts(msg)
        unreadable = inputs.precheck(metadata, "metadata")
        if unreadable:  # metadata travels on to the outgoing message
            raise ValidationError(self.action_id, unreadable)
        data = self.prepare(data, cfg)
        behaviour = step_fields.emit_behaviour(cfg, "emitPage") if self.items_key else None  # actions: pages
        request = self.build(data)
        client = IntercomClient.from_cfg(cfg)
        if self.items_key:
            logger = getattr(ctx, "logger", None) or log
            limit = pagination.max_pages(cfg) if self.pagination else 1
            return auth_retry.iterate(
                lambda c: self._list_messages(c, request, behaviour or "emitPage", metadata, logger, limit),
                client,
                cfg,
            )
        return auth_retry.call(lambda c: self._single_message(c, request, data, metadata), client, cfg)

    def _metadata(self, metadata: dict[str, Any], record_id: Any) -> dict[str, Any]:
        out = dict(metadata)
        if record_id is None or isinstance(record_id, dict | list):
            out.pop("recordUid", None)
        else:
            out["recordUid"] = str(record_id)
        return out

    def _single_message(
        self, client: IntercomClient, request: dict[str, Any], data: dict[str, Any], metadata: dict[str, Any]
    ) -> dict[str, Any]:
        response = client.request(self.method, **request, idempotent=self.idempotent)
        content = response.content
        status = response.status_code
        if self.response == "binary":
            body = {
                "contentType": client.redacted(
                    response.headers.get("Content-Type", "application/octet-stream"), 200
                ),
                "size": len(content),
                "encoding": "base64",
                "content": base64.b64encode(content).decode("ascii"),
            }
            disposition = response.headers.get("Content-Disposition")
            if disposition:
                body["contentDisposition"] = client.redacted(disposition, 500)
            return {"data": body, "metadata": self._metadata(metadata, data.get("job_identifier"))}
        if not content:
            result = {202: "accepted", 204: "no content"}.get(status, "empty response")
            body = {"status": status, "action": self.action_id, "result": result}
            for name in self.path_params:
                body.setdefault(name, data.get(name))
            record = data.get("id") if "id" in self.path_params else None
            return {"data": body, "metadata": self._metadata(metadata, record)}
        try:
            body = answers.loads(content)
        except answers.TooDeep as exc:
            raise answers.invalid(str(exc), response, method=self.method, path=request["path"]) from None
        except ValueError:
            body = {
                "status": status,
                "action": self.action_id,
                "result": "non-JSON response",
                "contentType": client.redacted(response.headers["Content-Type"], 200)
                if response.headers.get("Content-Type") is not None
                else None,
                "text": client.redacted(content[:10000].decode("utf-8", "replace"), 10000),
            }
            return {"data": body, "metadata": self._metadata(metadata, None)}
        if isinstance(body, list):  # a JSON array (2.16 fin_voice calls of a conversation): one object
            body = {"type": "list", "data": body}
        record_id = body.get("id") if isinstance(body, dict) else None
        return _HandedOver(data=body, metadata=self._metadata(metadata, record_id))

    def _pages(
        self, client: IntercomClient, request: dict[str, Any], logger: logging.Logger, limit: int
    ) -> Iterator[Any]:
        if self.pagination:
            yield from client.paginate(
                self.method,
                **request,
                style=self.pagination,
                items_key=self.items_key or "data",
                logger=logger,
                max_pages=limit,
            )
        else:
            page = client.request_json(self.method, **request, idempotent=self.idempotent)
            if page is not None:
                answers.page(page, self.items_key or "data", method=self.method, path=request["path"])
            yield page

    def _items(self, page: Any) -> list[Any]:
        """The objects of one page. Intercom answers some lists under `data` where the description names
        another key (listCompaniesForAContact's example and answers use `data`), so `data` is the fallback."""
        if not isinstance(page, dict):
            return []
        if "." in (self.items_key or ""):  # nested, e.g. `data.articles` (2.16 article search)
            for part in self.items_key.split("."):
                page = page.get(part) if isinstance(page, dict) else None
            return page if isinstance(page, list) else []
        items = page.get(self.items_key) if self.items_key in page else page.get("data")
        return items if isinstance(items, list) else []

    def _list_messages(
        self,
        client: IntercomClient,
        request: dict[str, Any],
        behaviour: str,
        metadata: dict[str, Any],
        logger: logging.Logger,
        limit: int = pagination.DEFAULT_MAX_PAGES,
    ) -> Iterator[dict[str, Any]]:
        key = (self.items_key or "data").rsplit(".", 1)[-1]
        pages = self._pages(client, request, logger, limit)
        if behaviour == "emitPage":
            page_metadata = self._metadata(metadata, None)
            for page in pages:
                yield _HandedOver(data=page if page is not None else {}, metadata=dict(page_metadata))
        elif behaviour == "emitIndividually":
            for page in pages:
                for item in self._items(page):
                    record_id = item.get("id") if isinstance(item, dict) else None
                    yield _HandedOver(data=item, metadata=self._metadata(metadata, record_id))
        else:
            collected: list[Any] = []
            try:
                for page in pages:
                    collected.extend(self._items(page))
            except pagination.PaginationError:  # what was fetched is emitted, then the error
                yield _HandedOver(
                    data={"type": "list", key: collected, "total": len(collected)},
                    metadata=self._metadata(metadata, None),
                )
                raise
            yield _HandedOver(
                data={"type": "list", key: collected, "total": len(collected)},
                metadata=self._metadata(metadata, None),
            )
