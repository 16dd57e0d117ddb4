"""Test settings: the real settings module, with fast hashing and django-q2 running tasks inline."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
# A fixed vault key, inherited by the worker / dispatcher processes that end-to-end tests start.
os.environ.setdefault("SWITCHYARD_ENCRYPTION_KEYS", "c3dpdGNoeWFyZC10ZXN0LXZhdWx0LWtleS0zMmJ5dGU=")
# The tests' own servers (fake provider, live server, subscribers) listen on loopback, which
# egress refuses unless allowed; inherited by the processes end-to-end tests start. Egress
# tests narrow it with override_settings.
os.environ.setdefault("SWITCHYARD_EGRESS_ALLOW", "127.0.0.1,::1,localhost")
# Tests call the API in bursts; the quotas have tests of their own. Inherited like the above.
os.environ.setdefault("SWITCHYARD_API_REQUESTS_PER_MINUTE_PER_KEY", "100000")
os.environ.setdefault("SWITCHYARD_API_REQUESTS_PER_MINUTE_PER_CUSTOMER", "100000")
# The fake provider server and the demo data, also with DEBUG off (`make test`); inherited too.
os.environ.setdefault("SWITCHYARD_DEV_TOOLS", "true")

from config.settings import *  # noqa: F403
from config.settings import DATABASES, MIDDLEWARE, Q_CLUSTER

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
Q_CLUSTER = {**Q_CLUSTER, "sync": True}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# The live server serves static files itself; WhiteNoise would only warn about STATIC_ROOT.
MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith("whitenoise.")]

# A file-based SQLite test database: the live server's threads and the worker / dispatcher
# processes started by end-to-end tests each open their own connection to it. The pid keeps
# concurrent test runs apart.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"switchyard-test-{os.getpid()}.sqlite3")
    }

# Tests fail authentication on purpose from one address; the throttle has tests of its own.
SWITCHYARD_AUTH_FAILURES_PER_MINUTE = 100_000
