"""The framework's limit: a bare Django JSON endpoint in one file (no middleware, no app, no
database), served like the allauth peer (gunicorn, bench/.venvs/allauth)."""

import os

from django.http import JsonResponse

MODULE = "bench.peers.bare_django"  # these settings, the URLconf and the WSGI application

SECRET_KEY = "bare-endpoint-no-secret-used"  # noqa: S105 - nothing is signed
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = MODULE
MIDDLEWARE: list[str] = []
INSTALLED_APPS: list[str] = []
USE_TZ = True

os.environ.setdefault("DJANGO_SETTINGS_MODULE", MODULE)


def bare(request):
    """Return a small JSON object (what /auth/me returns, minus all of the work)."""
    return JsonResponse({"id": 1, "name": "Ada", "email": "ada@example.com", "role": "customer"})


if __name__ == MODULE:
    from django.core.wsgi import get_wsgi_application
    from django.urls import path

    application = get_wsgi_application()
    urlpatterns = [path("bare", bare)]
