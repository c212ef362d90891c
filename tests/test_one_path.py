"""Training, evaluation and annotation cut sentences into the same rows and read the same tags back."""

import ast
from pathlib import Path

import pytest
from conftest import tiny_vaner

from annotator_vaner import DocumentAnnotator
from text_vaner import tokenize_with_offsets
from vaner.corpora import Sentence
from vaner.evaluation import predict_sentence_tags
from vaner.features import sentences_to_dataset, tokenize_dataset
from windows_vaner import DEFAULT_MAX_LENGTH, DEFAULT_STRIDE, WordWindows

WORDS = ("Cisplatin induced nephrotoxicity in BRCA1 mutant mice and the risk of ovarian cancer in women with "
         "mutations of the breast cancer gene rose while Naloxone reverses the antihypertensive effect of clonidine "
         "in Homo sapiens and rats with IL 2 receptor alpha CD25 expression in T cells").split()


@pytest.mark.parametrize(("max_length", "stride"), [(16, 4), (24, 8), (40, 0)])
def test_evaluation_and_annotation_tag_a_long_sentence_alike(tokenizer, max_length, stride):
    text = " ".join(WORDS)
    assert [word for word, _, _ in tokenize_with_offsets(text)] == WORDS  # one sentence, these words
    model = tiny_vaner(tokenizer, seed=3, entity_types=["Disease", "Chemical"])
    model.config.dataset_name = None
    dataset = sentences_to_dataset([Sentence(tuple(WORDS), ("O",) * len(WORDS), "Chemical", "unseen-corpus")])
    evaluated, split_count = predict_sentence_tags(model, tokenizer, dataset, batch_size=4, max_length=max_length,
                                                   use_dataset_names=False, progress=False, stride=stride)
    assert split_count == 1, "the sentence is longer than one window"
    annotator = DocumentAnnotator(model, tokenizer, entity_types=["Chemical"], max_length=max_length, stride=stride,
                                  batch_size=3, word_tags=True)
    annotated = annotator.annotate(text)
    annotation_tags = ["O"] * len(WORDS)
    for index, tag in annotated.word_tags:
        annotation_tags[index] = tag.entity_type.split("-")[0]
    assert evaluated[0] == annotation_tags
    assert {"B", "I"} & set(annotation_tags), "a random model tags some words, so the comparison says something"


def test_training_rows_are_the_annotation_windows(tokenizer):
    windows = WordWindows(tokenizer, 16, 4).sentences([list(WORDS)])[0]
    dataset = sentences_to_dataset([Sentence(tuple(WORDS), ("O",) * len(WORDS), "Disease", "unseen-corpus")])
    rows, split_count = tokenize_dataset(dataset, tokenizer, 16, ["Disease"], [], stride=4)
    assert split_count == 1
    assert rows["input_ids"] == [window.input_ids for window in windows]


def window_default_literals(path: Path) -> list[str]:
    """Where a file writes the window size (128) or overlap (32) itself: a default argument, a dataclass field's
    default, a dict entry, or a help text saying "default 32, at most half a window"."""
    found = []
    wanted = {"max_length": 128, "stride": 32}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        pairs = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args.posonlyargs + node.args.args
            pairs += zip([a.arg for a in arguments[len(arguments) - len(node.args.defaults):]], node.args.defaults)
            pairs += [(a.arg, d) for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults) if d is not None]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(node.value, ast.Call):
            pairs += [(node.target.id, k.value) for k in node.value.keywords if k.arg == "default"]
        elif isinstance(node, ast.Dict):
            pairs += [(k.value, v) for k, v in zip(node.keys, node.values) if isinstance(k, ast.Constant)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "default 32, at most half" in node.value:
            found.append(f"{path.name}:{node.lineno}: {node.value!r}")
        found += [f"{path.name}:{value.lineno}: {name} = {value.value}" for name, value in pairs
                  if name in wanted and isinstance(value, ast.Constant) and value.value == wanted[name]]
    return found


def test_the_window_defaults_have_one_home():
    """128 and 32 are written once, in windows_vaner.py: the CLIs, the annotator, evaluation and the spaCy
    component take DEFAULT_MAX_LENGTH and DEFAULT_STRIDE from there, so no default drifts from the others."""
    root = Path(__file__).resolve().parents[1]
    files = [path for path in [*root.glob("*.py"), *(root / "vaner").glob("*.py")] if path.name != "windows_vaner.py"]
    assert [literal for path in sorted(files) for literal in window_default_literals(path)] == []
    assert window_default_literals(root / "windows_vaner.py") == [], "the home names them as constants"
    assert (DEFAULT_MAX_LENGTH, DEFAULT_STRIDE) == (128, 32)
