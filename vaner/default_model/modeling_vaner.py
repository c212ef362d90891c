"""VANER: a Llama-family decoder read bidirectionally, tagging entities of the type an instruction asks for.

Self-contained (torch and transformers only): the Hugging Face Hub serves this file as remote code,
for `AutoModelForTokenClassification`; pipeline_vaner.py serves `pipeline("token-classification")`.
"""

import importlib.util
import json
import os

import torch
from torch import nn
from transformers import LlamaForCausalLM, LlamaModel, LlamaPreTrainedModel
from transformers.initialization import no_init_weights
from transformers.masking_utils import create_bidirectional_mask, create_causal_mask
from transformers.modeling_outputs import BaseModelOutputWithPast, TokenClassifierOutput
from transformers.utils import cached_file, logging

# pipeline_vaner serves `pipeline("token-classification")` (config.custom_pipelines); importing it here makes
# `save_pretrained` (custom_object_save) copy it into every saved folder beside this file.
try:  # as remote code (a package built by transformers)
    from .configuration_vaner import VanerConfig, typed_labels
    from .files_vaner import written_atomically
    from .pipeline_vaner import VanerTokenClassificationPipeline  # noqa: F401
    from .precision_vaner import to_precision
except ImportError:  # imported from the project root
    from configuration_vaner import VanerConfig, typed_labels
    from files_vaner import written_atomically
    from pipeline_vaner import VanerTokenClassificationPipeline  # noqa: F401
    from precision_vaner import to_precision

logger = logging.get_logger(__name__)

# An adapter-only folder keeps its PEFT LoRA adapter (with the head) in this subfolder: at the root,
# transformers' Auto classes would take it for a plain PEFT repo and bypass this model class.
ADAPTER_CONFIG_NAME = "adapter/adapter_config.json"
ADAPTER_WEIGHTS_NAME = "adapter/adapter_model.safetensors"
# Arguments of `from_pretrained` that say where and how to fetch files, passed on to every fetch.
HUB_ARGUMENTS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")


class VanerPreTrainedModel(LlamaPreTrainedModel):
    config_class = VanerConfig
    config: VanerConfig
    base_model_prefix = "model"


class VanerModel(LlamaModel):
    """A Llama backbone whose tokens see the whole (non-padding) input when `config.bidirectional`.

    Position ids come from the attention mask, so padding anywhere (left, right, or between the
    instruction and the sentence) leaves the other tokens' outputs unchanged.
    """

    config_class = VanerConfig

    def __init__(self, config: VanerConfig):
        super().__init__(config)
        # sdpa falls back on each module's `is_causal` when no mask is materialised (nothing padded).
        for layer in self.layers:
            layer.self_attn.is_causal = not config.bidirectional

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        if attention_mask is None:
            attention_mask = torch.ones(inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device)
        if position_ids is None:
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        if self.config.bidirectional:
            mask = create_bidirectional_mask(
                config=self.config, inputs_embeds=inputs_embeds, attention_mask=attention_mask
            )
        else:
            mask = create_causal_mask(
                config=self.config,
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask,
                cache=None,
                position_ids=position_ids,
            )
        hidden_states = inputs_embeds
        position_embeddings = self.rotary_emb(hidden_states, position_ids=position_ids)
        for decoder_layer in self.layers[: self.config.num_hidden_layers]:
            hidden_states = decoder_layer(
                hidden_states,
                attention_mask=mask,
                position_embeddings=position_embeddings,
                position_ids=position_ids,
                **kwargs,
            )
        return BaseModelOutputWithPast(last_hidden_state=self.norm(hidden_states))


class VanerForTokenClassification(VanerPreTrainedModel):
    """Backbone + dropout + linear O/B/I head, conditioned on an instruction it prepends itself.

    Inputs are the sentence's tokens only. With `entity_type_ids` (training, evaluation) each row asks for
    its own type and the logits are O/B/I scores aligned 1:1 with `input_ids`. Without it (the pipeline's
    call) every type of `config.entity_types` is asked and the logits are over the typed labels of
    `config.id2label`: the score of B-T (I-T) is the log-odds of B (I) against O for type T, and O scores 0,
    so softmax([0, B-T, I-T]) gives type T's O/B/I probabilities back exactly.

    Per-type mode (the paper): a row's instruction names its type, so k types cost k rows. Multi-type mode
    (`config.multi_type`): the instruction names the type set and the head has O/B/I columns for every known
    type, so one row yields all types; there `labels` may also be (batch, seq, known types), -100 where a
    row's corpus does not annotate a type (the partial-label loss).
    """

    # A causal-LM checkpoint's output layer is not used by the tagger.
    _keys_to_ignore_on_load_unexpected = [r"^lm_head\."]

    def __init__(self, config: VanerConfig):
        super().__init__(config)
        config.check_entity_types()
        config.check_dataset_name()
        config.id2label = dict(enumerate(typed_labels(config.entity_types)))
        config.label2id = {label: index for index, label in config.id2label.items()}
        self.model = VanerModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_iob_labels * max(1, len(config.head_types)))
        self.post_init()

    # ---------------------------------------------------------------- instructions

    def prepare_instructions(self, tokenizer):
        """Tokenize every instruction the model may use (each known type, with each dataset name and
        without) and store the ids in the config, which is saved with the model."""
        datasets = [None, *self.config.dataset_names]
        if self.config.dataset_name is not None and self.config.dataset_name not in datasets:
            datasets.append(self.config.dataset_name)
        for entity_type in self.config.known_entity_types:
            for dataset in datasets:
                text = self.config.row_instruction(entity_type, dataset)
                if text not in self.config.instruction_token_ids:
                    self.config.instruction_token_ids[text] = _instruction_ids(tokenizer, text)

    def _instruction(self, entity_type: str, dataset: str | None) -> list[int]:
        text = self.config.row_instruction(entity_type, dataset)
        ids = self.config.instruction_token_ids.get(text)
        if ids is None:
            raise ValueError(
                f"The instruction {text!r} has not been tokenized: call model.prepare_instructions(tokenizer) "
                "with this model's tokenizer (from_pretrained does it when the folder holds a tokenizer)."
            )
        return ids

    def _prefix(self, entity_type_ids: torch.Tensor, dataset_ids: torch.Tensor | None, device):
        """Instruction ids per row, left-padded to a common length, with their attention mask.

        A row's dataset is `config.dataset_names[dataset_ids[row]]` (none when negative); without
        `dataset_ids`, the load-time choice `config.dataset_name`.
        """
        rows = []
        for row, type_index in enumerate(entity_type_ids.tolist()):
            if dataset_ids is None:
                dataset = self.config.dataset_name
            else:
                dataset_index = int(dataset_ids[row])
                dataset = None if dataset_index < 0 else self.config.dataset_names[dataset_index]
            rows.append(self._instruction(self.config.entity_types[type_index], dataset))
        length = max(len(ids) for ids in rows)
        pad_id = self.config.pad_token_id if self.config.pad_token_id is not None else 0
        prefix_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
        prefix_mask = torch.zeros((len(rows), length), dtype=torch.long)
        for row, ids in enumerate(rows):
            if ids:
                prefix_ids[row, length - len(ids) :] = torch.tensor(ids)
                prefix_mask[row, length - len(ids) :] = 1
        return prefix_ids.to(device), prefix_mask.to(device)

    # ---------------------------------------------------------------- forward

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        entity_type_ids: torch.LongTensor | None = None,
        dataset_ids: torch.LongTensor | None = None,
        **kwargs,
    ) -> TokenClassifierOutput:
        r"""
        entity_type_ids (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Index in `config.entity_types` of the type each row asks for; the logits are then that type's O/B/I
            scores. Without it, every configured type is asked and typed logits are returned.
        dataset_ids (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Index in `config.dataset_names` of the dataset each row's instruction names; -1 names none.
            Without it, the instruction names `config.dataset_name` (None: no dataset).
        labels (`torch.LongTensor`, *optional*):
            O/B/I label ids (0, 1, 2) of the sentence tokens, -100 where no label applies: shape
            `(batch_size, sequence_length)` with `entity_type_ids`, or in multi-type mode
            `(batch_size, sequence_length, len(config.head_types))`, one column per known type.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if self.config.multi_type:
            return self._forward_multi_type(input_ids, attention_mask, labels, entity_type_ids, dataset_ids, **kwargs)
        ask_every_type = entity_type_ids is None
        if ask_every_type:
            if labels is not None:
                raise ValueError("labels are O/B/I tags for one entity type per row: pass entity_type_ids too.")
            batch_size, type_count = input_ids.shape[0], len(self.config.entity_types)
            input_ids = input_ids.repeat_interleave(type_count, dim=0)
            attention_mask = attention_mask.repeat_interleave(type_count, dim=0)
            entity_type_ids = torch.arange(type_count).repeat(batch_size)
            dataset_ids = None
        logits = self.classifier(self.dropout(self._sentence_states(input_ids, attention_mask, entity_type_ids,
                                                                    dataset_ids, **kwargs)))
        loss = None if labels is None else _iob_loss(logits, labels)
        if ask_every_type:
            logits = _typed_logits(logits.view(batch_size, type_count, -1, 3).transpose(1, 2))
        return TokenClassifierOutput(loss=loss, logits=logits)

    def _forward_multi_type(self, input_ids, attention_mask, labels, entity_type_ids, dataset_ids, **kwargs):
        """One row per input row whatever is asked: the head's columns are picked afterwards."""
        batch_size, length = input_ids.shape
        any_type = torch.zeros(batch_size, dtype=torch.long)  # the type set's instruction, whichever type
        states = self._sentence_states(input_ids, attention_mask, any_type, dataset_ids, **kwargs)
        per_type = self.classifier(self.dropout(states)).view(batch_size, length, -1, 3)
        head_types = self.config.head_types
        if entity_type_ids is not None:
            columns = torch.tensor([head_types.index(self.config.entity_types[i]) for i in entity_type_ids.tolist()],
                                   device=per_type.device)
            logits = per_type[torch.arange(batch_size, device=per_type.device)[:, None],
                              torch.arange(length, device=per_type.device)[None, :], columns[:, None]]
        elif labels is not None:
            if labels.dim() != 3 or labels.shape[-1] != len(head_types):
                raise ValueError(f"multi-type labels have one column per known type {head_types}: shape (batch, "
                                 f"sequence, {len(head_types)}), not {tuple(labels.shape)}; or pass entity_type_ids.")
            logits = per_type
        else:
            served = [head_types.index(entity_type) for entity_type in self.config.entity_types]
            logits = _typed_logits(per_type[:, :, served])
        loss = None if labels is None else _iob_loss(logits, labels)
        return TokenClassifierOutput(loss=loss, logits=logits)

    def _sentence_states(self, input_ids, attention_mask, entity_type_ids, dataset_ids, **kwargs) -> torch.Tensor:
        """Hidden states of the sentence tokens, read after each row's instruction."""
        prefix_ids, prefix_mask = self._prefix(entity_type_ids, dataset_ids, input_ids.device)
        outputs = self.model(
            input_ids=torch.cat([prefix_ids, input_ids], dim=1),
            attention_mask=torch.cat([prefix_mask, attention_mask.to(prefix_mask.dtype)], dim=1),
            **kwargs,
        )
        return outputs.last_hidden_state[:, prefix_ids.shape[1] :]

    # ---------------------------------------------------------------- loading

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """Load a VANER folder or Hub repo (full weights or adapter only), or start from a Llama-family
        backbone: a causal-LM checkpoint, or a GGUF file with `gguf_file=`."""
        path = str(pretrained_model_name_or_path)
        hub_kwargs = {name: kwargs[name] for name in HUB_ARGUMENTS if name in kwargs}
        # The folder's tokenizer code runs only when the caller trusted its code (AutoModel passes its choice on).
        trust_remote_code = bool(kwargs.get("trust_remote_code"))
        gguf_file = kwargs.pop("gguf_file", None)
        if gguf_file is not None:
            loaded = model = cls._from_gguf_backbone(path, gguf_file, kwargs)
        elif _find_file(path, ADAPTER_CONFIG_NAME, hub_kwargs) is not None:
            loaded = model = cls._from_adapter_folder(path, kwargs, hub_kwargs)
        else:
            if kwargs.get("config") is None:
                kwargs["config"] = cls._config_for(path, kwargs, hub_kwargs)
            loaded = super().from_pretrained(path, *model_args, **kwargs)
            model = loaded[0] if isinstance(loaded, tuple) else loaded  # output_loading_info=True
        model._tokenize_missing_instructions(path, gguf_file, hub_kwargs, trust_remote_code)
        return loaded

    @classmethod
    def _config_for(cls, path, kwargs, hub_kwargs):
        """The VANER config of a folder, or a new one around a Llama-family backbone's config (recording
        the backbone as base model); `kwargs` naming config fields are applied and removed."""
        overrides = {key: kwargs.pop(key) for key in list(kwargs) if key in VanerConfig.__dataclass_fields__}
        config_dict, _ = VanerConfig.get_config_dict(path, **hub_kwargs)
        if config_dict.get("model_type") == VanerConfig.model_type:
            return VanerConfig.from_dict(config_dict, **overrides)
        return _config_from_backbone(config_dict, overrides, base_model_name_or_path=path)

    @classmethod
    def _from_gguf_backbone(cls, path, gguf_file, kwargs):
        """A new VANER model on a GGUF backbone. The GGUF loader keys its tensor names on the model type,
        so the file is read as a plain Llama and its weights copied into the VANER backbone."""
        config = kwargs.pop("config", None)
        overrides = {key: kwargs.pop(key) for key in list(kwargs) if key in VanerConfig.__dataclass_fields__}
        dtype = kwargs.get("dtype")
        cache = None
        if config is not None and "quantization_config" not in kwargs:  # a model folder's backbone: cacheable
            cache = BackboneCache.for_gguf(path, gguf_file, config.num_hidden_layers,
                                           {name: kwargs[name] for name in HUB_ARGUMENTS if name in kwargs})
        state = cache.load() if cache is not None else None
        if state is not None:
            with no_init_weights():  # every weight but the head's comes from the cache
                model = cls(config)
            model._init_weights(model.classifier)
            model.model.load_state_dict(state)
        else:
            if cache is not None:  # the cache holds float32, whatever precision this load asks for
                kwargs["dtype"] = torch.float32
            backbone = LlamaForCausalLM.from_pretrained(path, gguf_file=gguf_file, **kwargs)
            if config is None:
                config = _config_from_backbone(
                    backbone.config.to_dict(), overrides, base_model_name_or_path=path, base_gguf_file=gguf_file
                )
            model = cls(config).to(backbone.dtype)
            # A config that keeps only the lower `num_hidden_layers` layers takes those of the backbone.
            wanted = model.model.state_dict().keys()
            model.model.load_state_dict({key: value for key, value in backbone.model.state_dict().items() if key in wanted})
            if cache is not None:
                cache.save(model.model.state_dict())
        if isinstance(dtype, torch.dtype):
            model = to_precision(model, dtype)
        model.config.dtype = model.dtype
        return model

    @classmethod
    def _from_adapter_folder(cls, path, kwargs, hub_kwargs):
        """Fetch the recorded backbone, build the model on it and merge the LoRA adapter (with its head), in
        float32; then cast to the `dtype` asked for (the config used to swallow it: a bf16 request ran float32)."""
        dtype = kwargs.pop("dtype", None)
        config = kwargs.pop("config", None)
        chosen_base = "base_model_name_or_path" in kwargs  # the caller's choice wins over an installed package
        if config is None:
            config, kwargs = VanerConfig.from_pretrained(path, return_unused_kwargs=True, **kwargs)
        installed = None if chosen_base else _installed_backbone(config)
        base, gguf_file = installed or (config.base_model_name_or_path, config.base_gguf_file)
        if config.base_model_package and installed is None and not chosen_base:
            package = config.base_model_package
            logger.warning(
                f"{path} was trained on {package['gguf_file']} from the Python package {package['package']}, which is "
                f"not installed: loading {base} instead, whose weights differ (e.g. full precision instead of the "
                f"quantized file), so its entities may differ from the model card's. For the exact backbone: pip "
                f"install --no-deps {package['package'].replace('_', '-')}"
            )
        if not base:
            raise ValueError(
                f"{path} holds a LoRA adapter but its config names no backbone: pass base_model_name_or_path=."
            )
        load_kwargs = {key: value for key, value in kwargs.items() if key not in HUB_ARGUMENTS}
        load_kwargs["dtype"] = torch.float32
        if gguf_file:
            model = cls._from_gguf_backbone(base, gguf_file, {**load_kwargs, "config": config})
        else:
            model = super().from_pretrained(base, config=config, **load_kwargs)
        with open(_find_file(path, ADAPTER_CONFIG_NAME, hub_kwargs), encoding="utf-8") as handle:
            adapter_config = json.load(handle)
        weights_file = _find_file(path, ADAPTER_WEIGHTS_NAME, hub_kwargs)
        if weights_file is None:
            raise FileNotFoundError(f"{path} has {ADAPTER_CONFIG_NAME} but no {ADAPTER_WEIGHTS_NAME}.")
        merge_lora_adapter(model, adapter_config, weights_file)
        if isinstance(dtype, torch.dtype) and dtype != model.dtype:
            to_precision(model, dtype)
            model.config.dtype = dtype
        return model

    def _tokenize_missing_instructions(self, path, gguf_file, hub_kwargs, trust_remote_code=False):
        """Tokenize instructions the config lacks (a new backbone, a new dataset name) with the tokenizer
        stored beside the weights; a tokenizer class of the folder's own code is used only when the caller
        passed `trust_remote_code=True`, else the folder's stock tokenizer is."""
        datasets = [self.config.dataset_name]
        needed = [self.config.row_instruction(t, d) for t in self.config.entity_types for d in datasets]
        if all(text in self.config.instruction_token_ids for text in needed) and self.config.instruction_token_ids:
            return
        from transformers import AutoConfig, AutoTokenizer
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING

        if VanerConfig.model_type not in CONFIG_MAPPING:  # AutoTokenizer reads the config: no remote code for it
            AutoConfig.register(VanerConfig.model_type, VanerConfig)
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                path, gguf_file=gguf_file, trust_remote_code=trust_remote_code, **hub_kwargs
            )
        except (OSError, ValueError) as error:
            logger.warning(
                f"No tokenizer could be loaded from {path} ({error}); call model.prepare_instructions(tokenizer) "
                "before using the model."
            )
            return
        self.prepare_instructions(tokenizer)


class BackboneCache:
    """The dequantized lower layers of a GGUF backbone, kept as safetensors so that the next load takes a second
    instead of dequantizing every layer (about 15 s for SmolLM2-135M on a CPU).

    One file per (GGUF content, layers kept, dtype, transformers version), named by the SHA-256 of the GGUF file
    and checked against the metadata stored in it, so a changed backbone is never read from the cache. Location:
    `$VANER_CACHE_DIR`, else `$XDG_CACHE_HOME/vaner`, else `~/.cache/vaner`; `VANER_CACHE_DIR=off` disables it.
    A cache that cannot be written costs a warning and the slow load, nothing else."""

    def __init__(self, file: str, metadata: dict[str, str]):
        self.file, self.metadata = file, metadata

    @classmethod
    def for_gguf(cls, path: str, gguf_file: str, num_hidden_layers: int, hub_kwargs: dict) -> "BackboneCache | None":
        folder = os.environ.get("VANER_CACHE_DIR") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "vaner")
        if folder.lower() in ("off", "0", "none"):
            return None
        source = _find_file(path, gguf_file, hub_kwargs)
        if source is None:
            return None
        import hashlib

        import transformers

        digest = hashlib.sha256()
        with open(source, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        metadata = {"gguf_sha256": digest.hexdigest(), "gguf_file": os.path.basename(gguf_file),
                    "num_hidden_layers": str(num_hidden_layers), "transformers": transformers.__version__,
                    "dtype": "float32"}
        name = f"{metadata['gguf_sha256'][:24]}-{num_hidden_layers}layers-{transformers.__version__}.safetensors"
        return cls(os.path.join(folder, "backbones", name), metadata)

    def load(self) -> dict[str, torch.Tensor] | None:
        """The cached state dict of the backbone, or None (absent, or written for another backbone)."""
        if not os.path.isfile(self.file):
            return None
        from safetensors import safe_open
        from safetensors.torch import load_file

        try:
            with safe_open(self.file, framework="pt") as handle:
                if handle.metadata() != self.metadata:
                    return None
            return load_file(self.file)
        except Exception as error:  # noqa: BLE001 - a damaged cache file is rebuilt, not fatal
            logger.warning(f"Backbone cache {self.file} is unreadable ({error}): dequantizing the GGUF file again.")
            return None

    def save(self, state: dict[str, torch.Tensor]) -> None:
        """Write the cache file with the project's atomic writer (files_vaner), so a reader never sees half of one."""
        from safetensors.torch import save_file

        try:
            os.makedirs(os.path.dirname(self.file), exist_ok=True)
            with written_atomically(self.file) as (_, temporary):
                save_file({key: value.contiguous() for key, value in state.items()}, temporary, metadata=self.metadata)
        except OSError as error:
            logger.warning(f"Could not cache the dequantized backbone in {self.file} ({error}): the next load "
                           "dequantizes it again (set VANER_CACHE_DIR to a writable folder).")


def _installed_backbone(config: VanerConfig) -> tuple[str, str] | None:
    """(folder, GGUF file) of `config.base_model_package` when that package is installed, else None."""
    package = config.base_model_package
    spec = importlib.util.find_spec(package["package"]) if package else None
    if spec is None or spec.origin is None:
        return None
    return os.path.dirname(spec.origin), package["gguf_file"]


def _config_from_backbone(config_dict: dict, overrides: dict, **base) -> VanerConfig:
    """A new VANER config keeping a backbone config's architecture fields; the types asked for become the
    model's known types."""
    dropped = ("model_type", "architectures", "id2label", "label2id")
    fields = {key: value for key, value in config_dict.items() if key not in dropped}
    if str(fields.get("quantization_config", {}).get("quant_method", "")).lower().endswith("gguf"):
        del fields["quantization_config"]  # GGUF weights are dequantized on loading: the model is not quantized
    return VanerConfig.from_dict({**fields, **base, **overrides})


def _instruction_ids(tokenizer, text: str) -> list[int]:
    """Token ids of an instruction, with the tokenizer's leading special tokens (e.g. BOS) but no
    trailing ones (e.g. EOS): the sentence follows it."""
    ids = tokenizer(text)["input_ids"]
    special = set(tokenizer.all_special_ids)
    while ids and ids[-1] in special:
        ids = ids[:-1]
    return list(ids)


def _typed_logits(per_type: torch.Tensor) -> torch.Tensor:
    """(batch, seq, types, 3) O/B/I logits -> (batch, seq, 1 + 2*types) float32 logits over O, B-T1, I-T1, ...
    (kept in float32: rounding the log-odds to bf16 would move the probabilities read back from them)."""
    log_probs = per_type.float().log_softmax(-1)
    entity_vs_outside = (log_probs[..., 1:] - log_probs[..., :1]).flatten(2)  # (batch, seq, 2*types)
    return torch.cat([torch.zeros_like(entity_vs_outside[..., :1]), entity_vs_outside], dim=-1)


def _iob_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the O/B/I scores of every labelled (token, type); -100 labels teach nothing."""
    return nn.functional.cross_entropy(logits.float().reshape(-1, 3), labels.reshape(-1), ignore_index=-100)


def _find_file(path: str, filename: str, hub_kwargs: dict) -> str | None:
    """Local path of `filename` in a folder or Hub repo, or None when the repo has no such file."""
    return cached_file(
        path,
        filename,
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
        **hub_kwargs,
    )


def merge_lora_adapter(model: nn.Module, adapter_config: dict, weights_file: str):
    """Add a PEFT LoRA adapter's low-rank updates into the model's linear weights and load the modules it
    saved in full (the tagging head), so inference runs on plain layers with no PEFT dependency."""
    from safetensors.torch import load_file

    if adapter_config.get("peft_type", "LORA") != "LORA" or adapter_config.get("use_dora"):
        raise ValueError(f"Only plain LoRA adapters can be merged, not {adapter_config.get('peft_type')} / DoRA.")
    unmergeable = [name for name in ("rank_pattern", "alpha_pattern", "lora_bias") if adapter_config.get(name)]
    if unmergeable:  # one rank and alpha for every module, no bias on the LoRA branch: anything else is refused
        raise ValueError(f"This adapter sets {', '.join(unmergeable)}, which this loader does not merge: merge it with "
                         "peft (PeftModel.merge_and_unload()) and save the full weights instead.")
    rank, alpha = adapter_config["r"], adapter_config["lora_alpha"]
    scaling = alpha / rank**0.5 if adapter_config.get("use_rslora") else alpha / rank
    try:
        weights = load_file(weights_file)
    except Exception as error:  # safetensors' own errors do not name the file
        raise OSError(f"{weights_file} cannot be read as safetensors ({error}): the file is damaged or cut short; "
                      "download or copy the model folder again") from error
    state = {key.removeprefix("base_model.model."): value for key, value in weights.items()}
    parameters = dict(model.named_parameters())
    full_weights = {}
    for key, value in state.items():
        if ".lora_A." in key:
            module_name = key.split(".lora_A.")[0]
            lora_b = state[key.replace(".lora_A.", ".lora_B.")]
            weight = parameters[f"{module_name}.weight"]
            update = (lora_b.float() @ value.float()) * scaling
            with torch.no_grad():
                weight += update.to(weight.dtype)
        elif ".lora_B." in key and not key.endswith(".weight"):
            raise ValueError(f"The adapter holds {key}, a LoRA bias, which this loader does not merge.")
        elif ".lora_B." not in key:
            full_weights[key] = value
    missing = [key for key in full_weights if key not in parameters]
    if missing:
        raise ValueError(f"The adapter holds weights this model does not have: {missing[:5]}")
    with torch.no_grad():
        for key, value in full_weights.items():
            parameters[key].copy_(value.to(parameters[key].dtype))


VanerConfig.register_for_auto_class()
VanerForTokenClassification.register_for_auto_class("AutoModelForTokenClassification")

__all__ = ["VanerModel", "VanerForTokenClassification", "VanerPreTrainedModel", "merge_lora_adapter"]
