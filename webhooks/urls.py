from django.urls import path

from webhooks.views import receive

app_name = "webhooks"

urlpatterns = [
    path("<str:provider>/<uuid:endpoint_id>/", receive, name="receive"),
]
