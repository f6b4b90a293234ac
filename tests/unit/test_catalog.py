"""The catalogs are data, validated when they load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.catalog import HERE, InstanceCatalog, ModelCatalog, instances, models

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
