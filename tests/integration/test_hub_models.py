"""Models outside the catalog, sized from the Hugging Face Hub's metadata through huggingface_hub,
against a local server answering in the Hub's wire format (tests/hub_server.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from shared import catalog
from shared.catalog import ModelCatalog
from shared.hub import Hub, HubError
from tests.hub_server import HubServer, hub_server
from tests.integration.conftest import System, running, system_settings

pytestmark = pytest.mark.integration
SMOL = "HuggingFaceTB/SmolLM2-1.7B-Instruct"


@pytest.fixture
def hub() -> Iterator[HubServer]:
    with hub_server() as server:
        yield server


def fresh_catalog() -> ModelCatalog:
    """A catalog of its own, so what one test remembers from the Hub another does not see."""
    return ModelCatalog.model_validate(catalog.models().model_dump())


async def test_a_hub_model_is_sized_from_its_safetensors_metadata_and_asked_for_once(hub: HubServer) -> None:
    models = fresh_catalog()
    client = Hub(models, hub.url)
    spec = await client.spec(SMOL.lower())  # the Hub matches ids whatever their case
    assert spec.id == SMOL and spec.params_b == pytest.approx(1.711, abs=0.001) and spec.dtype == "bf16"
    assert spec.gated is False and spec.license == "apache-2.0" and spec.context_length == 8192
    assert spec.container.framework == "tgi" and spec.container.image_uri == models.containers["tgi"].image_uri
    assert spec.container.env["HF_MODEL_ID"] == SMOL
    assert spec.memory_gib == pytest.approx(1.711 * 2 * 1.2, abs=0.1)
    assert await client.spec(SMOL) == spec and models.get(SMOL) == spec
    assert hub.requests == [f"/api/models/{SMOL.lower()}"]  # once: then remembered


async def test_an_architecture_tgi_does_not_serve_goes_to_lmi(hub: HubServer) -> None:
    spec = await Hub(fresh_catalog(), hub.url).spec("acme-labs/gpt-oss-fork-21b")  # a gpt-oss fork the catalog lacks
    assert spec.container.framework == "djl-lmi" and spec.container.env["OPTION_ROLLING_BATCH"] == "vllm"
    assert spec.dtype == "int8" and spec.params_b == pytest.approx(21.512, abs=0.001)  # U8 weights dominate


async def test_without_safetensors_metadata_the_config_sizes_it_within_a_few_percent(hub: HubServer) -> None:
    spec = await Hub(fresh_catalog(), hub.url).spec("acme-labs/smollm2-1.7b-config-only")
    assert spec.params_b == pytest.approx(1.711, rel=0.03)  # the same model's safetensors count


async def test_a_gated_hub_model_is_known_to_be_gated(hub: HubServer) -> None:
    spec = await Hub(fresh_catalog(), hub.url).spec("acme-labs/Gated-Llama-8B-Instruct")
    assert spec.gated is True and spec.params_b == pytest.approx(8.03, abs=0.01)


@pytest.mark.parametrize(
    ("repo", "status", "says"),
    [
        ("nobody/NoSuchModel-9B", 404, "no model 'nobody/NoSuchModel-9B' on the Hugging Face Hub"),
        ("stabilityai/stable-diffusion-xl-base-1.0", 422, "text-to-image model"),
    ],
)
async def test_what_the_hub_cannot_serve_is_refused_naming_it(
    hub: HubServer, repo: str, status: int, says: str
) -> None:
    with pytest.raises(HubError) as refused:
        await Hub(fresh_catalog(), hub.url).spec(repo)
    assert refused.value.status == status and says in str(refused.value)


async def test_an_unreachable_hub_is_refused_never_guessed() -> None:
    models = fresh_catalog()
    with pytest.raises(HubError) as refused:
        await Hub(models, "http://127.0.0.1:9", timeout=2).spec(SMOL)
    assert refused.value.status == 503 and "could not be reached" in str(refused.value)
    assert models.get(SMOL) is None


@pytest.fixture
async def with_hub(nats_url: str, database_url: str, hub: HubServer) -> AsyncIterator[System]:
    settings = system_settings(nats_url, database_url, hf_endpoint=hub.url)
    async with running(settings) as client:
        yield System(client, settings)


async def test_deploying_a_hub_model_plans_sizes_and_deploys_it(with_hub: System) -> None:
    answer = await with_hub.command(f"deploy {SMOL} for smol-bot", env="staging")
    assert answer["status"] == "success", answer
    plan = await with_hub.wait_status(answer["plan_id"], "deployed")
    artifact: dict[str, Any] = plan["artifact"]
    assert (
        artifact["model_name"] == SMOL and artifact["instance_type"] == "ml.g4dn.xlarge"
    )  # cheapest that holds 4.1 GiB
    create = plan["details"]["sagemaker_calls"][0]
    assert create["operation"] == "CreateModel"
    assert create["params"]["PrimaryContainer"]["Environment"]["HF_MODEL_ID"] == SMOL
    assert "tgi3.3.6" in create["params"]["PrimaryContainer"]["Image"]


async def test_a_hub_model_that_does_not_exist_is_refused_naming_it(with_hub: System) -> None:
    answer = await with_hub.command("deploy nobody/NoSuchModel-9B for ghost-bot", env="staging")
    assert answer["status"] == "validation_failed"
    assert "no model 'nobody/NoSuchModel-9B' on the Hugging Face Hub" in answer["message"]
    live = await with_hub.command("deploy qwen 2.5 7b for hub-upd", env="staging")
    await with_hub.wait_status(live["plan_id"], "deployed")
    refused = await with_hub.client.post(
        f"/api/deployments/{live['plan_id']}/update", json={"model_id": "nobody/NoSuchModel-9B"}
    )
    assert refused.status_code == 404 and "nobody/NoSuchModel-9B" in refused.json()["detail"]
    moved = await with_hub.client.post(f"/api/deployments/{live['plan_id']}/update", json={"model_id": SMOL})
    assert moved.status_code == 200, moved.text
