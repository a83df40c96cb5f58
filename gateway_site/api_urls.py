"""The API's and the probes' routes: the URLconf of the lean handler (``gateway_site.asgi``), so a
process serving only ``/v1/*`` never imports the admin, the reports API or Django REST framework
(about 20 MB). ``gateway_site.urls`` includes these routes too, for the standard handler."""

from django.urls import path, re_path

from gateway_site import exposition, probes
from gateway_site.api import embeddings, self_usage, views

urlpatterns = [
    path("v1/chat/completions", views.chat_completions),
    path("v1/embeddings", embeddings.embeddings),
    path("v1/models", views.list_models),
    path("v1/models/<path:model_id>", views.retrieve_model),
    path("v1/usage", self_usage.key_usage),
    re_path(r"^[vV]1(?:/|$)", views.not_found),  # either case: the asgi module routes both here
    path("live", probes.live),
    path("ready", probes.ready),
    path("health", probes.health),
    path("metrics", exposition.metrics),
]
