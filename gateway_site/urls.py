from django.contrib import admin
from django.urls import path, re_path

from gateway_site import probes
from gateway_site.api import embeddings, views

urlpatterns = [
    path("v1/chat/completions", views.chat_completions),
    path("v1/embeddings", embeddings.embeddings),
    path("v1/models", views.list_models),
    path("v1/models/<path:model_id>", views.retrieve_model),
    re_path(r"^v1/", views.not_found),
    path("live", probes.live),
    path("ready", probes.ready),
    path("health", probes.health),
    path("admin/", admin.site.urls),
]
