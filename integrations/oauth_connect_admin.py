"""Admin pages of the OAuth 2.0 Connect flow (integrations/oauth_connect.py): the Connect page of
a customer and the callback the provider sends the operator's browser back to. Both are staff
pages (``admin_view``) that need the ``add_credential`` and ``rotate_credential`` permissions;
each failure is an admin message naming what to do, never a 500 and never a secret.

Included by ``config/urls.py`` under ``admin/oauth/``."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.debug import sensitive_variables

from customers.models import Customer
from integrations.oauth_connect import (
    ConnectFailed,
    connect_providers,
    oauth_connect_finish,
    oauth_connect_start,
)

__all__ = ("app_name", "urlpatterns")

app_name = "oauth_connect"
PERMISSIONS = ("credentials.add_credential", "credentials.rotate_credential")


def _permitted(request) -> None:
    if not request.user.has_perms(PERMISSIONS):
        raise PermissionDenied


def connect_view(request, customer_id: int):
    """GET: one *Connect <provider> for <customer>* button per provider; POST: start it."""
    _permitted(request)
    customer = get_object_or_404(Customer.objects.select_related("region"), pk=customer_id)
    targets = {target.provider_key: target for target in connect_providers()}
    if request.method == "POST":
        target = targets.get(request.POST.get("provider", ""))
        if target is None:
            raise Http404("No such OAuth provider.")
        try:
            url = oauth_connect_start(
                session=request.session,
                provider_key=target.provider_key,
                customer=customer,
                redirect_uri=request.build_absolute_uri(reverse("oauth_connect:callback")),
                scope=request.POST.get("scope", ""),
            )
        except ConnectFailed as exc:
            messages.error(request, str(exc))
        else:
            return HttpResponseRedirect(url)
    context = {
        **admin.site.each_context(request),
        "title": f"Connect an OAuth 2.0 provider for {customer}",
        "customer": customer,
        "opts": Customer._meta,
        "targets": targets.values(),
    }
    return TemplateResponse(request, "admin/credentials/oauth_connect.html", context)


@sensitive_variables()
def callback_view(request):
    """The provider's redirect: store the tokens, then show the (masked) credential."""
    _permitted(request)
    try:
        credential, version = oauth_connect_finish(
            session=request.session, query=request.GET, actor=request.user
        )
    except ConnectFailed as exc:
        messages.error(request, f"Connect failed: {exc}")
        return HttpResponseRedirect(reverse("admin:credentials_credential_changelist"))
    messages.success(
        request,
        f"Connected: {credential} now holds the tokens as version {version.version} "
        f"({version.hint}).",
    )
    return HttpResponseRedirect(
        reverse("admin:credentials_credential_change", args=[credential.pk])
    )


urlpatterns = [
    path(
        "connect/<int:customer_id>/",
        admin.site.admin_view(connect_view),
        name="connect",
    ),
    path("callback/", admin.site.admin_view(callback_view), name="callback"),
]
