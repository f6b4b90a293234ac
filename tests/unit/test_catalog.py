"""The catalogs are data, validated when they load."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.catalog import HERE, InstanceCatalog, ModelCatalog, instances, models
from shared.intent import parse

EVAL = Path(__file__).parents[2].parent / "shared" / "eval" / "intents.jsonl"


def test_at_least_fifteen_models_with_what_serving_needs() -> None:
    catalog = models()
    assert len(catalog.models) >= 15
    for m in catalog.models:
        assert m.params_b > 0 and m.context_length >= 4096 and m.aliases
        assert m.container.env["HF_MODEL_ID"] == m.id
        assert catalog.image(m, "us-east-1").startswith("763104351884.dkr.ecr.us-east-1.amazonaws.com/")
    with pytest.raises(ValueError, match="no container registry"):
        catalog.image(catalog.models[0], "mars-north-1")


def test_every_model_of_the_eval_set_is_in_the_catalog() -> None:
    wanted = {json.loads(line)["expected"]["model_id"] for line in EVAL.open() if line.strip()}
    wanted.discard(None)
    assert wanted and wanted <= {m.id for m in models().models}


def test_instances_span_cpu_to_p5_and_inferentia_with_a_dated_price_source() -> None:
    catalog = instances()
    families = {i.name.split(".")[1] for i in catalog.instances}
    assert {"m5", "g4dn", "g5", "g6", "g6e", "p4d", "p5", "inf2"} <= families
    assert catalog.region == "us-east-1" and "aws.amazon.com/sagemaker/pricing" in catalog.price_source
    assert catalog.price_date
    for i in catalog.instances:
        assert i.usd_per_hour > 0 and i.vcpu > 0 and i.memory_gib > 0
        assert (i.gpu_count == 0) == (i.accelerator == "cpu")


def test_a_broken_catalog_is_refused_at_load() -> None:
    raw = json.loads((HERE / "models.json").read_text())
    raw["models"][1]["aliases"] = raw["models"][0]["aliases"]
    with pytest.raises(ValidationError, match="alias"):
        ModelCatalog.model_validate(raw)
    inst = json.loads((HERE / "instances.json").read_text())
    inst["instances"].append(inst["instances"][0])
    with pytest.raises(ValidationError, match="duplicate"):
        InstanceCatalog.model_validate(inst)
    inst["instances"][0] = {**inst["instances"][0], "accelerator": "gpu"}
    with pytest.raises(ValidationError):
        InstanceCatalog.model_validate(inst)


# The SageMaker Python SDK's image configuration (src/sagemaker/image_uri_config/huggingface-llm.json
# and djl-lmi.json) names these repositories, tag shapes and, for the regions the catalog lists,
# this registry account.
SDK_REPOSITORIES = {"tgi": "huggingface-pytorch-tgi-inference", "djl-lmi": "djl-inference"}
SDK_TAGS = {
    "tgi": re.compile(r"^\d+\.\d+\.\d+-tgi(\d+)\.(\d+)\.(\d+)-gpu-py3\d+-cu\d+-ubuntu\d+\.\d+$"),
    "djl-lmi": re.compile(r"^0\.(\d+)\.(\d+)-lmi(\d+)\.\d+\.\d+-cu\d+$"),
}


def test_hub_models_get_current_serving_images_with_their_source_and_date() -> None:
    catalog = models()
    assert set(catalog.ecr_accounts.values()) == {"763104351884"}
    newest = {"tgi": (3, 3, 6), "djl-lmi": (35, 0)}  # TGI 3.3.6; LMI V17 (DJL-Serving 0.35.0)
    for framework, template in catalog.containers.items():
        repository, tag = template.image_uri.split("/", 1)[1].split(":")
        assert repository == SDK_REPOSITORIES[framework]
        version = SDK_TAGS[framework].fullmatch(tag)
        assert version is not None, tag
        assert tuple(int(v) for v in version.groups()[: len(newest[framework])]) >= newest[framework]
        assert template.source and date.fromisoformat(template.checked) >= date(2026, 1, 1)
        assert not template.env  # each model sets its own


def test_every_image_is_a_tag_the_sdk_would_build() -> None:
    for m in models().models:
        repository, tag = m.container.image_uri.split("/", 1)[1].split(":")
        assert repository == SDK_REPOSITORIES[m.container.framework], m.id
        assert SDK_TAGS[m.container.framework].fullmatch(tag), (m.id, tag)


@pytest.mark.parametrize(
    ("said", "model_id"),
    [
        ("qwen 3 8b", "Qwen/Qwen3-8B"),
        ("qwen3 32b", "Qwen/Qwen3-32B"),
        ("gemma 3 27b", "google/gemma-3-27b-it"),
        ("mistral small 24b", "mistralai/Mistral-Small-24B-Instruct-2501"),
        ("gpt-oss 120b", "openai/gpt-oss-120b"),
        ("llama 4 scout", "meta-llama/Llama-4-Scout-17B-16E-Instruct"),
        ("deepseek r1 distill qwen 14b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B"),
    ],
)
def test_current_open_models_are_in_the_catalog_on_current_images(said: str, model_id: str) -> None:
    parsed = parse(f"deploy {said} for new-bot", models())
    assert parsed.model_id == model_id
    spec = models().get(model_id)
    assert spec is not None and spec.container.image_uri == models().containers[spec.container.framework].image_uri
