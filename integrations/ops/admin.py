"""Every operational notification, read-only: what was sent, when, and how often it repeated."""

from django.contrib import admin

from config.admin_tools import ReadOnlyAdminMixin
from integrations.models import OpsNotification


@admin.register(OpsNotification)
class OpsNotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "type", "subject", "status", "repeats", "attempts", "sent_at")
    list_filter = ("type", "status", "created_at")
    search_fields = ("subject",)
    date_hierarchy = "created_at"
    fields = (
        "type",
        "subject",
        "data",
        "status",
        "repeats",
        "attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
        "sent_at",
        "emailed_at",
    )
    readonly_fields = fields
