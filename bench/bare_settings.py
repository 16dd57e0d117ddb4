"""Settings for ``bench/ingest.py`` and ``bench/api.py``: the project's, with the baseline view's
URLs on top."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bare_urls"
