from django import template

from integrations.dashboard import dashboard_figures

register = template.Library()


@register.inclusion_tag("admin/switchyard_dashboard.html")
def switchyard_dashboard():
    return {"figures": dashboard_figures()}
