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

__all__ = ("LISTED_AT_MOST", "ReadOnlyAdminMixin", "confirmed_action")

LISTED_AT_MOST = 100


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
    context = {
        **model_admin.admin_site.each_context(request),
        "title": question,
        "opts": model_admin.model._meta,
        "explanation": explanation,
        "items": [describe(obj) for obj in queryset[:LISTED_AT_MOST]],
        "count": count,
        "more": max(count - LISTED_AT_MOST, 0),
        "action": action,
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/confirm_action.html", context)
