"""The HTTP/1.1 connection layer under Daphne: Twisted's parser and Daphne's request, extended
so that a request reaches the application as soon as its headers are complete and its body is
read from the socket only while the application asks for it; a request's headers and its body
each have a deadline; and what this layer refuses itself is answered in the API's error envelope.

``install()`` (called by ``gateway_site.asgi``) makes Daphne serve through it. The package
imports Django settings, Daphne and Twisted, nothing of the API's views."""

from __future__ import annotations

import sys


def install() -> None:
    """Make Daphne serve with ``GatewayHTTPFactory``. Daphne's command line imports its server
    module before the application and builds its factory after, by that module's name, so
    ``daphne gateway_site.asgi:application`` (and ``manage.py serve``, which runs it) use it.
    Under any other server nothing changes, and Daphne and Twisted are not even imported. With
    ``GATEWAY_TLS_CERT_FILE`` set, the factory is wrapped in TLS (``tls``)."""
    if "daphne.server" in sys.modules:
        from daphne import server
        from django.conf import settings

        from gateway_site.http_edge.factory import GatewayHTTPFactory

        server.HTTPFactory = GatewayHTTPFactory
        if settings.GATEWAY_TLS_CERT_FILE:
            from gateway_site.http_edge.tls import server_options, tls_factory

            options = server_options(settings.GATEWAY_TLS_CERT_FILE, settings.GATEWAY_TLS_KEY_FILE)
            server.HTTPFactory = lambda daphne_server: tls_factory(GatewayHTTPFactory(daphne_server), options)
