"""A key given customers is limited to them, however they were given (service, admin, shell)."""

from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from customers.models import ApiKey

__all__ = ("api_key_limit_on_customers_added",)


@receiver(m2m_changed, sender=ApiKey.customers.through)
def api_key_limit_on_customers_added(sender, instance, action, reverse, pk_set, **kwargs):
    if action != "post_add" or not pk_set:
        return
    ApiKey.objects.filter(pk__in=pk_set if reverse else [instance.pk]).update(customer_limited=True)
    if not reverse:
        instance.customer_limited = True
