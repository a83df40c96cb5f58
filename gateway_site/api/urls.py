"""The API's and the probes' routes: the URLconf of the lean handler (``gateway_site.asgi``), so a
process serving only ``/v1/*`` never imports the admin, the reports API or Django REST framework
(what that saves: docs/benchmarks.md). ``gateway_site.urls`` includes these routes too, for the
standard handler."""

from django.urls import path, re_path

from gateway_site.api.views import (
    chat,
    embeddings,
    messages,
    metrics,
    models,
    not_found,
    probes,
    responses,
    usage,
)

urlpatterns = [
    path("v1/chat/completions", chat.chat_completions),
    path("v1/embeddings", embeddings.embeddings),
    path("v1/responses", responses.create_response),
    path("v1/responses/input_tokens", responses.response_input_tokens),
    path("v1/responses/<str:response_id>", responses.response_detail),
    path("v1/responses/<str:response_id>/input_items", responses.response_input_items),
    path("v1/messages", messages.create_message),
    path("v1/messages/count_tokens", messages.count_tokens),
    path("v1/models", models.list_models),
    path("v1/models/<path:model_id>", models.retrieve_model),
    path("v1/usage", usage.key_usage),
    re_path(r"^[vV]1(?:/|$)", not_found.not_found),  # either case: the asgi module routes both here
    path("live", probes.live),
    path("ready", probes.ready),
    path("health", probes.health),
    path("metrics", metrics.metrics),
]
