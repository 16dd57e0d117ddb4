"""Admin building blocks shared by the apps: read-only log screens, and bulk actions behind a
confirmation page (the pattern of Django's delete_selected: the first POST of an action renders
``admin/confirm_action.html`` listing what it will touch; only the confirming POST, with
``post=yes``, performs it)."""

from collections.abc import Callable

from django.contrib import messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.template.response import TemplateResponse
from django.utils.translation import ngettext

__all__ = ("LISTED_AT_MOST", "ReadOnlyAdminMixin", "confirmed_action", "field_names")

LISTED_AT_MOST = 100


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
):
    """Confirm, then ``perform(queryset)`` and report ``done`` (singular, plural; with %d)."""
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
    }
    return TemplateResponse(request, "admin/confirm_action.html", context)
