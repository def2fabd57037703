"""Root URLconf: polls app, JSON test endpoints, health check and admin."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from . import views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="polls:index", permanent=False)),
    path("polls/", include("polls.urls")),
    path("api/sync/", views.sync_view, name="api-sync"),
    path("api/async/", views.async_view, name="api-async"),
    path("api/db/", views.db_view, name="api-db"),
    path("api/leak/", views.leak_view, name="api-leak"),
    path("api/slow/", views.slow_view, name="api-slow"),
    # Both spellings so probes need not care about APPEND_SLASH redirects.
    path("healthz", views.healthz, name="healthz"),
    path("healthz/", views.healthz),
    path("admin/", admin.site.urls),
]
