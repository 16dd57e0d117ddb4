"""Bulk admin actions behind a confirmation page (the pattern of Django's delete_selected).

The first POST of an action renders ``admin/confirm_action.html`` listing what it will touch;
only the confirming POST (``post=yes``) performs it."""

from collections.abc import Callable

from django.contrib import messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.template.response import TemplateResponse
from django.utils.translation import ngettext

__all__ = ("LISTED_AT_MOST", "confirmed_action")

LISTED_AT_MOST = 100


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
