"""Structured logs (structlog on top of the standard library's logging).

Every line a process writes goes through one ``ProcessorFormatter``: Switchyard's own events
(``structlog.stdlib.get_logger``) and the lines of Django, gunicorn and django-q2 (plain
``logging`` records) alike. ``SWITCHYARD_LOG_FORMAT=json`` renders one JSON object per line,
``console`` a readable line; the default is json unless DEBUG is on.

Each line carries ``timestamp``, ``level``, ``logger`` and ``event``, plus the ids bound for the
request or the delivery in hand (``structlog.contextvars``): ``request_id``, ``delivery_id``,
``attempt``, ``event_id``, ``customer``, ``provider``.

Importable without Django settings: gunicorn's master process uses it before any app loads."""

import logging

import structlog
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_str

__all__ = (
    "CONTEXT_KEYS",
    "LOG_FORMATS",
    "log_format",
    "logging_config",
    "structlog_configure",
    "structured_formatter",
)

LOG_FORMATS = ("json", "console")
CONTEXT_KEYS = ("request_id", "delivery_id", "attempt", "event_id", "customer", "provider")
# Fields of a plain record's ``extra`` that reach the line. An allow-list: Django passes the
# request object itself (``django.request``), whose repr holds the query string.
EXTRA_KEYS = (
    *CONTEXT_KEYS,
    "status_code",
    "method",
    "path",
    "status",
    "duration_ms",
    "remote_addr",
)


def log_format() -> str:
    """``SWITCHYARD_LOG_FORMAT``, defaulting to json with DEBUG off and console with it on."""
    default = "console" if env_bool("DEBUG", False) else "json"
    value = env_str("SWITCHYARD_LOG_FORMAT", default).strip().lower() or default
    if value not in LOG_FORMATS:
        raise ImproperlyConfigured(
            f"SWITCHYARD_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {value!r}"
        )
    return value


def _shared_processors() -> list:
    """What both kinds of record get before rendering: the bound ids, level, logger, time."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _drop_private(logger, method_name, event_dict: dict) -> dict:
    """``_record`` / ``_from_structlog`` are the formatter's bookkeeping, not fields."""
    event_dict.pop("_record", None)
    event_dict.pop("_from_structlog", None)
    return event_dict


def structured_formatter(fmt: str = "json") -> structlog.stdlib.ProcessorFormatter:
    """The formatter of every handler: JSON or console rendering of native and plain records."""
    if fmt == "json":
        # Tracebacks as one string field (no local variables: they may hold secrets).
        tail = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        tail = [structlog.dev.ConsoleRenderer(colors=False)]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            *_shared_processors(),
            structlog.stdlib.ExtraAdder(allow=EXTRA_KEYS),
        ],
        processors=[_drop_private, *tail],
    )


def structlog_configure() -> None:
    """Route structlog's loggers into the standard library, where the formatter renders them."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def logging_config(*, fmt: str, level: str) -> dict:
    """Django's LOGGING: one stream handler on the root, everything propagating to it."""
    logging.captureWarnings(True)  # warnings become records, rendered like the rest
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {"()": "config.logging.structured_formatter", "fmt": fmt},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "structured"},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's defaults add handlers of their own (plain text under DEBUG, runserver's
            # lines); emptied here, their records reach the root's handler like any other.
            "django": {"handlers": [], "level": "INFO", "propagate": True},
            "django.server": {"handlers": [], "level": "INFO", "propagate": True},
            "django.db.backends": {"level": "WARNING"},
            # urllib3 logs each request line, query string included, at DEBUG; Trello and GA4
            # put credentials there. It never logs below INFO, whatever LOG_LEVEL says.
            "urllib3": {"level": "INFO"},
        },
    }
