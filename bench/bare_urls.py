"""The project's URLs plus a bare Django view answering 202: the baseline ``bench/ingest.py`` and
``bench/api.py`` compare with, served by the same gunicorn through the same middleware."""

from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def bare(request):
    return HttpResponse(status=202)


urlpatterns = [path("bench/bare/", bare), path("", include("config.urls"))]
