"""The admin usage page per tenant, in process: charts drawn server-side from the rollups (one
bar per day with usage), quota spend against limits, top keys; staff only."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth.models import User

from accounting.recorder import write_events
from accounting.rollups import usage_rollup
from quotas.models import CostQuota
from tests.gateway_site.console.test_usage_api import usage_event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tenant_usage(make_key):
    a = make_key("acme", name="a")
    other = make_key("globex", name="b")
    now = dt.datetime.now(dt.UTC)
    write_events(
        [
            usage_event(a, 1, at=now - dt.timedelta(days=2), model="m1", cost="0.25"),
            usage_event(a, 2, at=now - dt.timedelta(days=1), model="m2", cost="0.50", status=500),
            usage_event(other, 3, at=now, model="<script>x</script>", cost="3"),
        ]
    )
    usage_rollup(lag=dt.timedelta(0))
    write_events([usage_event(a, 4, at=now, model="m1", cost="0.25")])  # not rolled up yet
    CostQuota.objects.create(tenant=a.tenant, period="lifetime", limit_usd="2", hard=True)
    return a


def test_the_usage_page_draws_the_tenants_charts_quotas_and_top_keys(tenant_usage, client):
    client.force_login(User.objects.create_user("admin", is_staff=True, is_superuser=True))
    response = client.get(f"/admin/usage/{tenant_usage.tenant.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="usage-chart"') == 3
    # Daily cost: three days with usage; tokens by model: two models; requests: three days, one error.
    assert len(re.findall(r'<rect class="bar"', html)) == 3 + 2 + 3
    assert len(re.findall(r'<rect class="bar-second"', html)) == 1
    assert '<strong id="total-requests">3</strong>' in html
    assert "$1" in html  # 0.25 + 0.50 + 0.25
    assert "script>x" not in html  # another tenant's data never appears (and labels are escaped)
    quotas = html.split('id="quotas"')[1].split("</table>")[0]
    assert "lifetime" in quotas and "$2.0000" in quotas
    assert f"gw-{tenant_usage.key_id}" in html.split('id="top-keys"')[1]


def test_the_usage_page_is_for_staff_only(tenant_usage, client):
    client.force_login(User.objects.create_user("plain"))
    response = client.get(f"/admin/usage/{tenant_usage.tenant.pk}/")
    assert response.status_code == 302
    assert "/admin/login/" in response["location"]
