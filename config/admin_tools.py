"""Admin building blocks shared by the apps: read-only log screens, and bulk actions behind a
confirmation page (the pattern of Django's delete_selected: the first POST of an action renders
``admin/confirm_action.html`` listing what it will touch; only the confirming POST, with
``post=yes``, performs it).

Operator actions are audited in one place, Django's admin log (``LogEntry``): ``audit`` writes
the actor and the reason, ``audit_trail`` reads them back for the object's page."""

from collections.abc import Callable, Iterable

from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import ngettext

__all__ = (
    "LISTED_AT_MOST",
    "ReadOnlyAdminMixin",
    "WideListMixin",
    "action_reason",
    "audit",
    "audit_trail",
    "change_url",
    "confirmed_action",
    "field_names",
    "object_action",
    "when",
)

LISTED_AT_MOST = 100
AUDIT_SHOWN = 50
REASON_MAX_CHARS = 500


def when(value) -> str:
    """A timestamp as the admin shows every one: seconds and time zone (config/formats/)."""
    if value is None:
        return "-"
    return formats.date_format(timezone.localtime(value), "DATETIME_FORMAT")


def change_url(obj) -> str:
    """The admin page of ``obj`` (its concrete model's, for proxies)."""
    opts = obj._meta.concrete_model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def audit(request, objects: Iterable, message: str, reason: str = "") -> None:
    """Record who did what to each of ``objects`` (their concrete models, so a dead letter's
    retry shows on its delivery page), with the operator's reason."""
    text = f"{message} Reason: {reason}" if reason else message
    rows = list(objects)
    if rows:
        LogEntry.objects.log_actions(request.user.pk, rows, CHANGE, change_message=text)


def audit_trail(obj) -> QuerySet[LogEntry]:
    content_type = ContentType.objects.get_for_model(obj._meta.concrete_model)
    return (
        LogEntry.objects.filter(content_type=content_type, object_id=str(obj.pk))
        .select_related("user")
        .order_by("-action_time")[:AUDIT_SHOWN]
    )


def _reason(request) -> str:
    return request.POST.get("reason", "").strip()[:REASON_MAX_CHARS]


def object_action(
    model_admin,
    request,
    obj,
    *,
    allowed: bool,
    title: str,
    explanation: str,
    perform: Callable[[str], str],
    button: str = "Yes, I'm sure",
):
    """One object's action behind a confirmation page: GET shows the page (with a reason
    field), only a POST (CSRF-checked by the middleware) acts. ``perform(reason)`` returns the
    message for the operator and audits itself; it may raise ``ValueError`` to refuse."""
    if not allowed:
        raise PermissionDenied
    if request.method == "POST":
        try:
            done = perform(_reason(request))
        except ValueError as exc:
            model_admin.message_user(request, str(exc), messages.ERROR)
        else:
            model_admin.message_user(request, done, messages.SUCCESS)
        return HttpResponseRedirect(change_url(obj))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.model._meta,
        "original": obj,
        "explanation": explanation,
        "button": button,
        "back": change_url(obj),
    }
    return TemplateResponse(request, "admin/switchyard/confirm_object_action.html", context)


def field_names(fields) -> list[str]:
    """The names in an admin ``fields`` layout (names, or tuples of names shown on one row): a
    read-only screen's ``readonly_fields``."""
    return [name for group in fields for name in (group if isinstance(group, tuple) else (group,))]


class ReadOnlyAdminMixin:
    """Logs and state owned by traffic: viewable, never added, edited or deleted by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class WideListMixin:
    """Lists with many columns (logs) use the whole width: the navigation sidebar would push
    their last columns out of view at 1440 px; breadcrumbs and the index still lead back."""

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "is_nav_sidebar_enabled": False}
        return super().changelist_view(request, extra_context)


def confirmed_action(
    model_admin,
    request,
    queryset: QuerySet,
    *,
    action: str,
    question: str,
    explanation: str,
    describe: Callable[[object], str],
    perform: Callable[[QuerySet], int],
    done: tuple[str, str],
    ask_reason: bool = False,
):
    """Confirm, then ``perform(queryset)`` and report ``done`` (singular, plural; with %d).
    ``ask_reason``: the page asks for a reason, which ``perform`` reads with ``action_reason``."""
    if request.POST.get("post") == "yes":
        count = perform(queryset)
        model_admin.message_user(request, ngettext(*done, count) % count, messages.SUCCESS)
        return None
    count = queryset.count()
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "title": question,
        "opts": opts,
        "explanation": explanation,
        "items": [describe(obj) for obj in queryset[:LISTED_AT_MOST]],
        "count": count,
        "noun": opts.verbose_name if count == 1 else opts.verbose_name_plural,
        "more": max(count - LISTED_AT_MOST, 0),
        "action": action,
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        # "Select all N" acts on the whole filtered list, not the ticked rows: the confirming
        # POST must say so again, or it would act on fewer items than the count shown.
        "select_across": request.POST.get("select_across") == "1",
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "ask_reason": ask_reason,
    }
    return TemplateResponse(request, "admin/confirm_action.html", context)


def action_reason(request) -> str:
    """The reason typed on a confirmation page (empty when none was asked or given)."""
    return _reason(request)
