"""The model and instance catalogs: data files validated at load time."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

HERE = Path(__file__).parent
MAX_REMEMBERED = 512
BYTES_PER_PARAM = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}
# Weights plus 20% for KV cache, activations and the serving runtime.
MEMORY_HEADROOM = 1.2


class Container(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    framework: Literal["tgi", "djl-lmi", "nim"]
    # {region} and {account} are filled in per region; the account map covers the regions we know.
    image_uri: str
    env: dict[str, str] = Field(default_factory=dict)
    # where the image tag was taken from and when (the catalog's container templates say so)
    source: str = ""
    checked: str = ""


class ModelSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    vendor: str
    family: str
    params_b: float = Field(gt=0)
    context_length: int = Field(gt=0)
    dtype: Literal["fp32", "bf16", "fp16", "fp8", "int8", "int4"]
    license: str
    gated: bool = False
    container: Container
    aliases: list[str] = Field(min_length=1)

    @property
    def memory_gib(self) -> float:
        """GPU memory the model needs: params x bytes per param x headroom."""
        return round(self.params_b * BYTES_PER_PARAM[self.dtype] * MEMORY_HEADROOM, 1)


class InstanceSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    accelerator: Literal["cpu", "gpu", "inferentia"]
    gpu: str | None = None
    gpu_count: int = Field(ge=0)
    gpu_memory_gib: float = Field(ge=0)
    vcpu: int = Field(gt=0)
    memory_gib: float = Field(gt=0)
    usd_per_hour: float = Field(gt=0)

    @model_validator(mode="after")
    def _gpu_fields_agree(self) -> InstanceSpec:
        if (self.accelerator == "cpu") != (self.gpu_count == 0):
            raise ValueError(f"{self.name}: a cpu instance has no accelerators and only it")
        return self


class ModelCatalog(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    ecr_accounts: dict[str, str]
    # the current serving images, for models sized from the Hugging Face Hub (shared/hub.py)
    containers: dict[Literal["tgi", "djl-lmi"], Container]
    models: list[ModelSpec] = Field(min_length=1)
    # models taken from the Hub while this process runs: found by `get` like the catalog's own
    _extra: dict[str, ModelSpec] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _unique(self) -> ModelCatalog:
        ids = [m.id.lower() for m in self.models]
        if len(ids) != len(set(ids)):
            raise ValueError("duplicate model ids in models.json")
        owners: dict[str, str] = {}
        for m in self.models:
            for alias in m.aliases:
                if owners.setdefault(alias.lower(), m.id) != m.id:
                    raise ValueError(f"alias {alias!r} names both {owners[alias.lower()]} and {m.id}")
            if "{region}" not in m.container.image_uri or "{account}" not in m.container.image_uri:
                raise ValueError(f"{m.id}: image_uri must be a template with {{account}} and {{region}}")
        return self

    def image(self, model: ModelSpec, region: str) -> str:
        """The serving image of `model` in `region`; a region without a known registry is an error."""
        account = self.ecr_accounts.get(region)
        if account is None:
            raise ValueError(f"no container registry known for {region}: add it to models.json ecr_accounts")
        return model.container.image_uri.format(account=account, region=region)

    def get(self, model_id: str) -> ModelSpec | None:
        key = model_id.lower()
        return next((m for m in self.models if m.id.lower() == key), None) or self._extra.get(key)

    def remember(self, spec: ModelSpec) -> None:
        """A model sized from the Hub, found by `get` from now on (bounded: the oldest go first)."""
        if len(self._extra) >= MAX_REMEMBERED:
            self._extra.pop(next(iter(self._extra)))
        self._extra[spec.id.lower()] = spec


class InstanceCatalog(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    price_source: str
    price_date: str
    region: str
    instances: list[InstanceSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> InstanceCatalog:
        names = [i.name for i in self.instances]
        if len(names) != len(set(names)):
            raise ValueError("duplicate instance types in instances.json")
        return self

    def get(self, name: str) -> InstanceSpec | None:
        return next((i for i in self.instances if i.name == name), None)


@cache
def models() -> ModelCatalog:
    return ModelCatalog.model_validate(json.loads((HERE / "models.json").read_text()))


@cache
def instances() -> InstanceCatalog:
    return InstanceCatalog.model_validate(json.loads((HERE / "instances.json").read_text()))


def fits(model: ModelSpec, instance: InstanceSpec) -> bool:
    return instance.accelerator == "gpu" and instance.gpu_memory_gib >= model.memory_gib


def cheapest_fit(
    model: ModelSpec, instances: InstanceCatalog, allowed: Callable[[str], bool] = lambda _: True
) -> InstanceSpec | None:
    """The cheapest instance whose GPUs hold the model, among those `allowed` (the env's list):
    the planner sizes a new plan with it, the guardian an update that changes the model."""
    fitting = [i for i in instances.instances if fits(model, i) and allowed(i.name)]
    return min(fitting, key=lambda i: (i.usd_per_hour, i.gpu_memory_gib), default=None)


def gpus_needed(model: ModelSpec, instance: InstanceSpec) -> int:
    per_gpu = instance.gpu_memory_gib / max(instance.gpu_count, 1)
    return min(instance.gpu_count, max(1, math.ceil(model.memory_gib / per_gpu)))
