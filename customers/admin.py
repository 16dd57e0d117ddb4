from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.translation import ngettext

from config.admin_tools import confirmed_action
from customers.lifecycle import customer_erase
from customers.models import ApiKey, ApiKeyAuditEntry, Customer, Region
from customers.services import (
    ApiKeyScopeInvalid,
    api_key_audit,
    api_key_issue,
    api_key_revoke,
    api_key_scope_check,
    api_key_update,
)


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
    actions = ["erase_customers"]

    @admin.action(permissions=["delete"], description="Erase the data of selected customers")
    def erase_customers(self, request, queryset):
        def perform(customers) -> int:
            for customer in customers:
                report = customer_erase(slug=customer.slug, actor=request.user)
                rows = sum(report.counts.values())
                self.log_change(request, customer, f"Erased the customer's data ({rows} rows).")
                if report.busy:
                    self.message_user(
                        request,
                        f"{customer}: {sum(report.busy.values())} rows in flight were left to "
                        "their worker; erase again once they have finished.",
                        messages.WARNING,
                    )
            return len(customers)

        return confirmed_action(
            self,
            request,
            queryset,
            action="erase_customers",
            question="Erase the data of these customers?",
            explanation="Their credentials are revoked and destroyed, their API keys revoked, "
            "their integrations, endpoints and subscriptions deactivated, and the inputs, "
            "payloads, bodies and errors of their deliveries and events deleted; ids, times, "
            "statuses and actions stay for the audit trail. This cannot be undone.",
            describe=str,
            perform=perform,
            done=("Erased the data of %d customer.", "Erased the data of %d customers."),
        )


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["name", "scope", "customers", "expires_at"]

    def clean(self):
        cleaned = super().clean()
        try:
            api_key_scope_check(
                scope=cleaned.get("scope"), customers=list(cleaned.get("customers") or [])
            )
        except ApiKeyScopeInvalid as exc:
            raise forms.ValidationError({"scope": str(exc)}) from None
        return cleaned


class ApiKeyAuditInline(admin.TabularInline):
    model = ApiKeyAuditEntry
    fields = ["created_at", "action", "actor", "changes"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "Audit log"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = [
        "name",
        "key_hint",
        "scope",
        "customer_list",
        "expires_at",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["name", "prefix"]
    filter_horizontal = ["customers"]
    readonly_fields = ["key_hint", "created_at", "last_used_at", "revoked_at"]
    inlines = [ApiKeyAuditInline]
    actions = ["revoke_selected"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "scope", "customers", "expires_at"]
        return [
            "name",
            "key_hint",
            "scope",
            "customers",
            "expires_at",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    @admin.display(description="Key")
    def key_hint(self, api_key):
        return f"sy_{api_key.prefix}_…"

    @admin.display(description="Customers")
    def customer_list(self, api_key):
        slugs = [c.slug for c in api_key.customers.all()]
        return ", ".join(slugs) if slugs else "all customers"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("customers")

    def save_model(self, request, obj, form, change):
        # Customers are set with the audit in save_related, once the key has its row.
        if not change:
            request.switchyard_raw_api_key = api_key_issue(api_key=obj)

    def save_related(self, request, form, formsets, change):
        for formset in formsets:  # the read-only audit inline: nothing to save, but expected
            self.save_formset(request, form, formset, change=change)
        obj = form.instance
        changes = {name: form.cleaned_data[name] for name in ("name", "scope", "expires_at")}
        customers = list(form.cleaned_data.get("customers") or [])
        if change:
            api_key_update(api_key=obj, actor=request.user, customers=customers, **changes)
        else:
            obj.customers.set(customers)
            api_key_audit(
                api_key=obj,
                action=ApiKeyAuditEntry.Action.CREATE,
                actor=request.user,
                changes={
                    "scope": [None, obj.scope],
                    "customers": [None, [c.slug for c in customers]],
                },
            )

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
            api_key_revoke(api_key=api_key, actor=request.user)
        count = queryset.count()
        self.message_user(
            request,
            ngettext("Revoked %d API key.", "Revoked %d API keys.", count) % count,
            messages.SUCCESS,
        )
