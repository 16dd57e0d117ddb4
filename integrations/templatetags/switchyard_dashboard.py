from django import template

from integrations.dashboard import dashboard

register = template.Library()


@register.inclusion_tag("admin/switchyard_dashboard.html", takes_context=True)
def switchyard_dashboard(context):
    request = context.get("request")
    window = request.GET.get("window") if request is not None else None
    return {"board": dashboard(window)}
