"""The Django project and the HTTP edge: settings, URLs, the ASGI entry point, the
OpenAI-compatible API views (``api/``) and the commands that span apps (``serve``,
``applyconfig``, ``setupdemo``). May import every other package of ours."""
