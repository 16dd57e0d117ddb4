from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.translation import ngettext

from customers.models import ApiKey, Customer, Region
from customers.services import api_key_issue, api_key_revoke


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "customer_count", "created_at"]
    search_fields = ["code", "name"]

    @admin.display(description="Customers")
    def customer_count(self, region):
        return region.customers.count()


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "region", "tier", "active", "created_at"]
    list_filter = ["region", "tier", "active"]
    search_fields = ["slug", "name"]
    list_select_related = ["region"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "key_hint", "scope", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["name", "prefix"]
    filter_horizontal = ["customers"]
    readonly_fields = ["key_hint", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke_selected"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "customers"]
        return ["name", "key_hint", "customers", "created_at", "last_used_at", "revoked_at"]

    @admin.display(description="Key")
    def key_hint(self, api_key):
        return f"sy_{api_key.prefix}_…"

    @admin.display(description="Customers")
    def scope(self, api_key):
        slugs = [c.slug for c in api_key.customers.all()]
        return ", ".join(slugs) if slugs else "all customers"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("customers")

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        request.switchyard_raw_api_key = api_key_issue(api_key=obj)

    def response_add(self, request, obj, post_url_continue=None):
        # The raw key is shown on this one response and stored nowhere (no message, no session).
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "api_key": obj,
            "raw_key": request.switchyard_raw_api_key,
            "title": "API key created",
        }
        return TemplateResponse(request, "admin/customers/apikey/created.html", context)

    @admin.action(description="Revoke selected API keys")
    def revoke_selected(self, request, queryset):
        for api_key in queryset:
            api_key_revoke(api_key=api_key)
        count = queryset.count()
        self.message_user(
            request,
            ngettext("Revoked %d API key.", "Revoked %d API keys.", count) % count,
            messages.SUCCESS,
        )
