"""Date formats for English (the admin's language): every timestamp with seconds and its time
zone, so attempts a second apart are told apart and nobody guesses the zone. Used through
Django's format lookup (settings.FORMAT_MODULE_PATH), so lists, detail pages and templates
(``|date:"DATETIME_FORMAT"``) all format in this one place."""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
