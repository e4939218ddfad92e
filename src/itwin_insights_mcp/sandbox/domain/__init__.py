"""The sandbox's rules over its store: mappings, groups, properties, extractions, reports, aggregations, API keys,
published feeds and the audit trail.

Shared by every API family; no Starlette, no request objects. Functions take a `Caller` (who acts, on which store)
or a `Store` and plain values, return stored `Record`s and raise `errors.SandboxError` with the API's codes.
Commands that write open their own transaction, so a failed rule changes nothing.
"""
