"""Django's error reports (the DEBUG page, admin error emails) without secrets.

Django hides the variables named by ``sensitive_variables`` and the POST fields named by
``sensitive_post_parameters`` only when DEBUG is off; development and staging stacks hold real
provider secrets too, so this filter hides them whatever DEBUG says (DESIGN §10)."""

from django.views.debug import SafeExceptionReporterFilter

__all__ = ("AlwaysSafeExceptionReporterFilter",)


class AlwaysSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    def is_active(self, request) -> bool:
        return True
