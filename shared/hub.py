"""Models outside the catalog, as users name them on the Hugging Face Hub (`org/name`).

The Hub's own metadata sizes them: the parameter count and dtype from the safetensors metadata
(or, without it, from the config's dimensions), the gated flag, and the architecture, which picks
the serving container (TGI for the architectures TGI serves, DJL LMI with vLLM for the rest).
`huggingface_hub` makes the request, so `HF_ENDPOINT` (a mirror, a test server) and `HF_TOKEN`
work as they do for every Hub tool. A model the Hub cannot describe is refused with the reason,
never sized by guess.

`spec_from_info` is the rule (pure); `Hub` asks the Hub and remembers the answer in the process's
catalog, so the planner, the guardian and the executor size a model once each and alike.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from shared.catalog import Container, ModelCatalog, ModelSpec

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")
# safetensors dtypes -> the catalog's, as the weights are served (a float32 checkpoint is served
# in bf16 by TGI and LMI, which is what sizing must assume)
DTYPES = {
    "F64": "bf16",
    "F32": "bf16",
    "BF16": "bf16",
    "F16": "fp16",
    "F8_E4M3": "fp8",
    "F8_E5M2": "fp8",
    "I8": "int8",
    "U8": "int8",
    "I4": "int4",
}
# What TGI serves (text-generation-inference's supported models); anything else goes to LMI (vLLM)
TGI_ARCHITECTURES = {
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "MixtralForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen2MoeForCausalLM",
    "Qwen3ForCausalLM",
    "GemmaForCausalLM",
    "Gemma2ForCausalLM",
    "Gemma3ForCausalLM",
    "Phi3ForCausalLM",
    "PhiForCausalLM",
    "GPT2LMHeadModel",
    "GPTNeoXForCausalLM",
    "GPTBigCodeForCausalLM",
    "Starcoder2ForCausalLM",
    "FalconForCausalLM",
    "CohereForCausalLM",
    "GraniteForCausalLM",
    "DbrxForCausalLM",
    "DeepseekV2ForCausalLM",
    "DeepseekV3ForCausalLM",
}
TEXT_GENERATION = {"text-generation", "text2text-generation", "image-text-to-text", None}
DEFAULT_ENDPOINT = "https://huggingface.co"
MAX_SERVED_TOKENS = 8192  # a Hub model starts with this context; the catalog's own entries say theirs


class HubError(Exception):
    """Why a model could not be taken from the Hub; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def looks_like_hub_id(text: str) -> bool:
    org, _, name = text.partition("/")
    return bool(HUB_ID.fullmatch(text)) and not org.isdigit() and name.lower() not in UNITS


UNITS = {"h", "hr", "hrs", "hour", "hours", "mo", "month", "day", "min", "month.", "hour."}


def spec_from_info(info: Any, templates: Mapping[Any, Container]) -> ModelSpec:
    """The catalog entry for a Hub model, from what `HfApi.model_info` returned; HubError when it
    cannot be served or sized."""
    repo: str = info.id
    if getattr(info, "disabled", False):
        raise HubError(f"{repo} is disabled on the Hugging Face Hub")
    if getattr(info, "pipeline_tag", None) not in TEXT_GENERATION:
        raise HubError(f"{repo} is a {info.pipeline_tag} model: AgentOps deploys text-generation models")
    config: dict[str, Any] = dict(getattr(info, "config", None) or {})
    architectures = list(config.get("architectures") or [])
    params, dtype = _size(info, config)
    if not params:
        raise HubError(
            f"{repo} has no safetensors metadata and no config dimensions on the Hub, so its size is unknown: "
            "name a catalog model, or a repository with safetensors weights"
        )
    framework = "tgi" if any(a in TGI_ARCHITECTURES for a in architectures) else "djl-lmi"
    template = templates[framework]
    context = int(config.get("max_position_embeddings") or 4096)
    served = min(context, MAX_SERVED_TOKENS)
    if framework == "tgi":
        env = {"HF_MODEL_ID": repo, "MAX_INPUT_LENGTH": str(served // 2), "MAX_TOTAL_TOKENS": str(served)}
    else:
        env = {
            "HF_MODEL_ID": repo,
            "OPTION_ROLLING_BATCH": "vllm",
            "OPTION_TENSOR_PARALLEL_DEGREE": "max",
            "OPTION_MAX_MODEL_LEN": str(served),
        }
    family = str(config.get("model_type") or (architectures[0] if architectures else "unknown")).lower()
    return ModelSpec(
        id=repo,
        vendor=repo.split("/", 1)[0].lower(),
        family=family,
        params_b=round(params / 1e9, 3),
        context_length=context,
        dtype=dtype,  # type: ignore[arg-type]
        license=str(_card(info).get("license") or "see model card"),
        gated=getattr(info, "gated", False) not in (False, None),
        container=template.model_copy(update={"env": env}),
        aliases=[repo.lower()],
    )


def _card(info: Any) -> dict[str, Any]:
    card = getattr(info, "card_data", None) or getattr(info, "cardData", None)
    if card is None:
        return {}
    return dict(card.to_dict() if hasattr(card, "to_dict") else card)


def _size(info: Any, config: dict[str, Any]) -> tuple[int, str]:
    """Parameters and the dtype they are served in: the safetensors metadata, else the config."""
    safetensors = getattr(info, "safetensors", None)
    if safetensors and safetensors.get("total"):
        by_dtype: dict[str, int] = dict(safetensors.get("parameters") or {})
        main = max(by_dtype, key=lambda k: by_dtype[k]) if by_dtype else "BF16"
        return int(safetensors["total"]), DTYPES.get(main, "bf16")
    return _from_config(config), _dtype_of(config)


def _dtype_of(config: dict[str, Any]) -> str:
    said = str(config.get("torch_dtype") or config.get("dtype") or "bfloat16")
    return {"float16": "fp16", "float32": "bf16", "bfloat16": "bf16"}.get(said, "bf16")


def _from_config(config: dict[str, Any]) -> int:
    """A decoder's parameters from its dimensions (embeddings, attention with grouped KV heads,
    a gated MLP per layer, experts counted in full): within a few percent for Llama-like models."""
    try:
        hidden = int(config["hidden_size"])
        layers = int(config["num_hidden_layers"])
        vocab = int(config["vocab_size"])
        heads = int(config.get("num_attention_heads") or 1)
        kv_heads = int(config.get("num_key_value_heads") or heads)
        inter = int(config.get("intermediate_size") or 4 * hidden)
    except (KeyError, TypeError, ValueError):
        return 0
    head_dim = int(config.get("head_dim") or hidden // max(heads, 1))
    attention = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2
    experts = int(config.get("num_local_experts") or config.get("num_experts") or 1)
    mlp = 3 * hidden * inter * experts
    embeddings = vocab * hidden * (1 if config.get("tie_word_embeddings") else 2)
    return layers * (attention + mlp) + embeddings


class Hub:
    """Asks the Hub (through huggingface_hub) for a model's metadata, once per model per process:
    the spec is remembered in `models`, where every later `models.get` finds it."""

    def __init__(self, models: ModelCatalog, endpoint: str = "", token: str = "", timeout: float = 10.0) -> None:
        self.models, self.endpoint, self.token, self.timeout = models, endpoint, token, timeout
        self._lock = asyncio.Lock()

    async def spec(self, repo_id: str) -> ModelSpec:
        """The model's spec, from the catalog or the Hub; HubError says why there is none."""
        known = self.models.get(repo_id)
        if known is not None:
            return known
        if not looks_like_hub_id(repo_id):
            raise HubError(f"{repo_id!r} is not a Hugging Face model id (org/name): name a catalog model or one")
        async with self._lock:  # one lookup of a model at a time, so a burst asks the Hub once
            known = self.models.get(repo_id)
            if known is not None:
                return known
            info = await asyncio.to_thread(self._info, repo_id)
            spec = spec_from_info(info, self.models.containers)
            self.models.remember(spec)
            return spec

    def _info(self, repo_id: str) -> Any:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

        # explicit: huggingface_hub reads HF_ENDPOINT once at import, and an empty one breaks it
        api = HfApi(endpoint=self.endpoint.strip().rstrip("/") or DEFAULT_ENDPOINT, token=self.token or False)
        try:
            return api.model_info(repo_id, timeout=self.timeout)
        except GatedRepoError:  # the metadata of a gated model is public; this one's is not
            raise HubError(f"{repo_id} is gated on the Hub and its metadata needs a token: set HF_TOKEN") from None
        except RepositoryNotFoundError:
            raise HubError(
                f"no model {repo_id!r} on the Hugging Face Hub (or it is private): check the name", status=404
            ) from None
        except HfHubHTTPError as exc:
            code = exc.response.status_code if exc.response is not None else "error"
            raise HubError(f"the Hugging Face Hub answered {code} for {repo_id}: try again later", 503) from None
        except Exception as exc:  # unreachable, timed out, not the Hub at all
            where = self.endpoint or "huggingface.co"
            raise HubError(
                f"the Hugging Face Hub ({where}) could not be reached to size {repo_id} ({type(exc).__name__}): "
                "nothing was guessed; try again, set HF_ENDPOINT to a reachable mirror, or name a catalog model",
                503,
            ) from None
