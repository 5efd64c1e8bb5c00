from tests import helpers
from tests.conftest import Api


async def test_a_ready_draft_campaign_starts_active_with_its_lead_queued(api: Api) -> None:
    cmp = await helpers.campaign(api, ready=True)
    assert cmp["status"] == "draft"
    started = await api.ok("post", f"/v1/campaigns/{cmp['id']}/start")
    assert started["status"] == "active"
    assert started["counts"]["queued"] == 1
