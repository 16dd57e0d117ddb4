"""gunicorn's own lines (its error log and access log) in Switchyard's log format.

``gunicorn.conf.py`` names this class, so ``gunicorn config.wsgi`` picks it up whatever its
command line. The access line is a structured event (``http.request``) with the path but not
the query string, which may carry a credential."""

from gunicorn.glogging import Logger

from config.logging import log_format, structured_formatter

__all__ = ("StructuredLogger",)


class StructuredLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        formatter = structured_formatter(log_format())
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)

    def access(self, resp, req, environ, request_time):
        if self.cfg.accesslog is None:  # no --access-logfile: no access lines
            return
        headers = dict((name.lower(), value) for name, value in resp.headers)
        fields = {
            "method": req.method,
            "path": req.path,
            "status": resp.status_code,
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "remote_addr": environ.get("REMOTE_ADDR", ""),
        }
        if "x-request-id" in headers:
            fields["request_id"] = headers["x-request-id"]
        self.access_log.info("http.request", extra=fields)
