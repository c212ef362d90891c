"""Offline fixtures: a byte-level BPE tokenizer trained here and tiny random VANER models (hidden 32, 2 layers)."""

import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch
from datasets import DatasetDict
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from configuration_vaner import VanerConfig
from modeling_vaner import VanerForTokenClassification
from vaner.corpora import Sentence
from vaner.features import sentences_to_dataset

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

TOKENIZER_TEXTS = [
    "Cisplatin-induced nephrotoxicity in BRCA1 mutant mice.",
    "Identification of APC2, a homologue of the adenomatous polyposis coli tumour suppressor.",
    "The risk of ovarian cancer in women with mutations of the breast cancer gene was 12 %.",
    "Naloxone reverses the antihypertensive effect of clonidine in Homo sapiens and rats.",
    "IL-2 receptor alpha (CD25) expression in T cells; TNF-α and β-catenin levels rose.",
    "If any Disease entity is mentioned in the input, extract it. ##input: ",
    "If any Chemical entity is mentioned in the NCBI-disease input, extract it. ##input: ",
    "Gene Species BC5CDR-chem BC2GM JNLPBA linnaeus s800 BC4CHEMD",
]


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A small byte-level BPE tokenizer (the kind Llama-3 and SmolLM2 use), trained on a few sentences."""
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<unk>", "<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    backend.train_from_iterator(TOKENIZER_TEXTS * 20, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )


def tiny_config(tokenizer, **overrides) -> VanerConfig:
    fields = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        dataset_names=["NCBI-disease", "BC5CDR-chem"],
    )
    fields.update(overrides)
    return VanerConfig(**fields)


def tiny_vaner(tokenizer, seed=0, **overrides) -> VanerForTokenClassification:
    torch.manual_seed(seed)
    model = VanerForTokenClassification(tiny_config(tokenizer, **overrides)).eval()
    model.prepare_instructions(tokenizer)
    return model


@pytest.fixture(scope="session")
def tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="session")
def tiny_vaner_dir(tmp_path_factory, tokenizer) -> Path:
    """A saved tiny random VANER folder (weights, config, the two .py files, tokenizer)."""
    folder = tmp_path_factory.mktemp("tiny_vaner")
    tiny_vaner(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def folder_with_tokenizer_code(source: Path, folder: Path) -> Path:
    """A copy of a VANER folder whose config lacks instruction token ids (so loading tokenizes them) and
    whose tokenizer_config maps AutoTokenizer to a .py file of the folder; importing that file writes
    folder/CODE_RAN. Built in the test: it shows whether loading ran the folder's code."""
    shutil.copytree(source, folder)
    config = json.loads((folder / "config.json").read_text())
    config["instruction_token_ids"] = {}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer_code.py").write_text(
        f"from pathlib import Path\nPath({str(folder / 'CODE_RAN')!r}).write_text('ran')\n"
        "from transformers import PreTrainedTokenizerFast\n\n\nclass CodeTokenizer(PreTrainedTokenizerFast):\n    pass\n"
    )
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    tokenizer_config["auto_map"] = {"AutoTokenizer": [None, "tokenizer_code.CodeTokenizer"]}
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return folder


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not found: the benchmark corpora live in ../shared beside the project")
    return SHARED


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory, tokenizer) -> Path:
    """A tiny random Llama causal-LM checkpoint with its tokenizer, as a backbone on the Hub would be."""
    folder = tmp_path_factory.mktemp("llama")
    fields = tiny_config(tokenizer).to_dict()
    config = LlamaConfig(**{key: fields[key] for key in LlamaConfig.__dataclass_fields__ if key in fields})
    torch.manual_seed(1)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


DISEASES = ["ovarian cancer", "tumour", "nephrotoxicity", "breast cancer"]
CHEMICALS = ["Cisplatin", "Naloxone", "clonidine"]


def toy_sentences(count: int, offset: int = 0) -> list[Sentence]:
    """Sentences from one template with a Disease and a Chemical slot, labelled once per type."""
    sentences = []
    for index in range(offset, offset + count):
        disease = DISEASES[index % len(DISEASES)].split()
        chemical = [CHEMICALS[index % len(CHEMICALS)]]
        tokens = ["The", "risk", "of", *disease, "after", *chemical, "in", "mice", "."]
        disease_tags = ["O"] * 3 + ["B"] + ["I"] * (len(disease) - 1) + ["O"] * 5
        chemical_tags = ["O"] * (4 + len(disease)) + ["B", "O", "O", "O"]
        sentences.append(Sentence(tuple(tokens), tuple(disease_tags), "Disease", "toy-disease"))
        sentences.append(Sentence(tuple(tokens), tuple(chemical_tags), "Chemical", "toy-chem"))
    return sentences


@pytest.fixture(scope="session")
def toy_mixture_dir(tmp_path_factory) -> Path:
    """A training mixture in the layout build_dbr_dataset.py writes (Parquet per split)."""
    folder = tmp_path_factory.mktemp("mixture")
    splits = DatasetDict(
        train=sentences_to_dataset(toy_sentences(24)),
        validation=sentences_to_dataset(toy_sentences(6, offset=24)),
        test=sentences_to_dataset(toy_sentences(6, offset=30)),
    )
    for split, dataset in splits.items():
        dataset.to_parquet(str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    return folder
