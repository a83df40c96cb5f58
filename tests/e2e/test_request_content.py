"""Request content through a running gateway: a tenant that logs content gets its request's
redacted prompt and reply stored, encrypted, by the gateway's content thread; a tenant that does
not gets nothing stored (its usage record is, as always)."""

from __future__ import annotations

import httpx
import orjson
import pytest

from accounting.models import RequestContent, UsageRecord
from providers.secrets import decrypt_secret
from tests.conftest import wait_for
from tests.e2e.conftest import Proxy
from tests.fakes.openai_upstream import Reply

pytestmark = pytest.mark.e2e


def test_content_is_stored_encrypted_for_a_logging_tenant_only(start_proxy, configure, make_key):
    configure("tenants:\n  - name: acme\n    log_content: true\n  - name: globex\n")
    proxy: Proxy = start_proxy()
    globex = make_key("globex", name="g")
    proxy.upstream.enqueue(Reply(content="Call me at 415-555-2671"))
    proxy.upstream.enqueue(Reply(content="globex reply"))
    logged = proxy.http.post("/v1/chat/completions", json=proxy.chat_body("I am jo@example.com"))
    assert logged.status_code == 200
    other = httpx.post(
        f"{proxy.gateway.base_url}/v1/chat/completions",
        json=proxy.chat_body("globex prompt"),
        headers={"Authorization": f"Bearer {globex.raw}"},
        timeout=30,
    )
    assert other.status_code == 200
    wait_for(lambda: UsageRecord.objects.count() == 2, timeout=15)
    (stored,) = wait_for(lambda: list(RequestContent.objects.all()), timeout=15)
    acme_record = UsageRecord.objects.get(tenant_name="acme")
    assert (stored.request_id, stored.tenant_id) == (acme_record.request_id, acme_record.tenant_id)
    assert "jo@example.com" not in stored.prompt and "415" not in stored.reply
    (prompt,) = orjson.loads(decrypt_secret(stored.prompt))
    assert prompt.startswith("I am [EMAIL:")
    assert decrypt_secret(stored.reply).startswith("Call me at [PHONE:")
    assert UsageRecord.objects.get(tenant_name="globex").attempts == 1
    # One queue, one thread: once a later acme request's content is stored, globex's would have
    # been too, had it been queued.
    proxy.upstream.enqueue(Reply(content="again"))
    assert proxy.http.post("/v1/chat/completions", json=proxy.chat_body("again")).status_code == 200
    wait_for(lambda: RequestContent.objects.count() == 2, timeout=15)
    assert RequestContent.objects.filter(tenant_id=globex.tenant.pk).count() == 0
    assert set(RequestContent.objects.values_list("tenant_id", flat=True)) == {acme_record.tenant_id}
