"""The OpenAPI schema tells the truth about errors (drf-spectacular post-processing hook).

Every API error has one body (``core.errors.error_body``): ``{"detail": str, "code": str}``
plus ``errors`` (field → messages) for invalid input. Every operation may answer with the
statuses that middleware, authentication, throttles and the bounded KDF produce whatever
the view, so each operation documents them all with that one ``Error`` schema (an error
response a view declared keeps its description, and gets the same schema).
"""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "description": "The API's one error body.",
    "properties": {
        "detail": {"type": "string", "description": "What is wrong, in a sentence."},
        "code": {"type": "string", "description": "A stable token (invalid, not_found, "
                                                  "busy, …)."},
        "errors": {"type": "object", "description": "Invalid input: messages per field.",
                   "additionalProperties": {}},
    },
    "required": ["detail", "code"],
}

# Statuses any operation can give: invalid input (400), no or a dead session (401), not
# allowed (403), unknown id (404), wrong method (405), a rule of the current state (409),
# body too large (413), unsupported media type (415), a too-old client (426), throttled
# or locked out (429), maintenance or the KDF budget full (503).
COMMON = {
    "400": "Invalid input.",
    "401": "Not logged in, or the session has ended.",
    "403": "Not allowed for this account.",
    "404": "No such object (or not visible to this account).",
    "405": "Method not allowed.",
    "409": "Refused by a rule of the object's current state.",
    "413": "Request body too large.",
    "415": "Unsupported media type.",
    "426": "The client is too old: upgrade it.",
    "429": "Too many requests or failed attempts; see Retry-After.",
    "503": "Busy (maintenance, or too many logins at once); see Retry-After.",
}


def document_errors(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path, item in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in item.items():
            if method not in {"get", "put", "post", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in COMMON.items():
                declared = responses.get(status, {})
                responses[status] = {
                    "description": declared.get("description") or description,
                    "content": {"application/json": {"schema": ref}},
                }
    return result
