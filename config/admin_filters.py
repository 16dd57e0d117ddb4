"""List filters shared by the admin screens."""

from datetime import datetime, time, timedelta

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

__all__ = ("DateRangeFilter",)


def _moment(text: str, *, end: bool) -> datetime | None:
    """A date (whole day: its start, or the next day's start for ``end``) or a date and time,
    in the current time zone unless it names one."""
    text = text.strip()
    if not text:
        return None
    value = parse_datetime(text.replace(" ", "T"))
    if value is None:
        day = parse_date(text)
        if day is None:
            raise ValidationError(f"Not a date: {text!r} (use YYYY-MM-DD or YYYY-MM-DD HH:MM).")
        value = datetime.combine(day, time.min) + (timedelta(days=1) if end else timedelta())
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


class DateRangeFilter(admin.FieldListFilter):
    """From / to on a timestamp (``<field>__gte`` and ``<field>__lt``), typed as dates or dates
    with times; a whole day when only a date is given as "to"."""

    template = "admin/switchyard/date_range_filter.html"

    def __init__(self, field, request, params, model, model_admin, field_path):
        self.lookup_gte = f"{field_path}__gte"
        self.lookup_lt = f"{field_path}__lt"
        super().__init__(field, request, params, model, model_admin, field_path)
        self.values = {
            name: self._last(self.used_parameters.get(name, ""))
            for name in (self.lookup_gte, self.lookup_lt)
        }
        self.title = f"{field.verbose_name} (range)"

    @staticmethod
    def _last(value) -> str:
        if isinstance(value, list | tuple):
            return str(value[-1]) if value else ""
        return str(value)

    def expected_parameters(self):
        return [self.lookup_gte, self.lookup_lt]

    def has_output(self):
        return True

    def queryset(self, request, queryset):
        try:
            start = _moment(self.values[self.lookup_gte], end=False)
            stop = _moment(self.values[self.lookup_lt], end=True)
        except ValidationError as exc:
            raise admin.options.IncorrectLookupParameters(exc) from exc
        if start:
            queryset = queryset.filter(**{self.lookup_gte: start})
        if stop:
            queryset = queryset.filter(**{self.lookup_lt: stop})
        return queryset

    def choices(self, changelist):
        # The template renders a small form; keep every other parameter of the list.
        kept = changelist.get_filters_params()
        yield {
            "gte_name": self.lookup_gte,
            "lt_name": self.lookup_lt,
            "gte": self.values[self.lookup_gte],
            "lt": self.values[self.lookup_lt],
            "kept": [
                (k, v)
                for k, values in kept.items()
                if k not in (self.lookup_gte, self.lookup_lt)
                for v in (values if isinstance(values, list) else [values])
            ],
            "query": changelist.query,
        }
