"""Logging that says which request and which user a line belongs to, and never carries a token.

Handlers set the two context variables for the duration of a request; the filter copies them onto every record.
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar

__all__ = ["RequestContextFilter", "request_id_var", "subject_var"]

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
subject_var: ContextVar[str] = ContextVar("subject", default="-")

FORMAT = "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s user=%(subject)s]: %(message)s"


_SECRET_PARAMS = re.compile(r"((?:code|state|access_token|refresh_token|id_token|token|code_verifier)=)[^&\s\"']+")


class RequestContextFilter(logging.Filter):
    """Adds `request_id` and `subject` to each record, and masks credential-bearing URL parameters
    (`?code=`, `state=`, tokens) that access logs would otherwise print."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.subject = subject_var.get()
        message = record.getMessage()
        if "=" in message and _SECRET_PARAMS.search(message):
            record.msg = _SECRET_PARAMS.sub(r"\1***", message)
            record.args = None
        return True
