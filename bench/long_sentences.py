"""Tags of the test sentences longer than a window, to compare two versions of the windowing.

    python bench/long_sentences.py tags.json                    # in each checkout (PYTHONPATH=that checkout)
    python bench/long_sentences.py --compare old.json new.json  # word tags that differ, strict F1 of each

Among the first 500 test sentences of each corpus, the sentences longer than 128 sub-tokens of the default
model's tokenizer are tagged by vaner.evaluation.predict_sentence_tags (as evaluate_vaner.py tags them).
"""

import json
import sys

CORPORA = ("bc2gm", "bc5cdr-disease", "bc5cdr-chem", "jnlpba", "linnaeus", "ncbi-disease", "s800")


def tag(output: str, shared: str = "../shared/corpora") -> None:
    from vaner import DEFAULT_MODEL
    from vaner.corpora import load_corpus
    from vaner.documents import load_model
    from vaner.evaluation import predict_sentence_tags, score_by_corpus
    from vaner.features import sentences_to_dataset

    model, tokenizer = load_model(DEFAULT_MODEL, dtype="float32", device="cpu")
    model.config.entity_types = list(model.config.known_entity_types)
    results = {}
    for corpus in CORPORA:
        sentences = load_corpus(corpus, f"{shared}/{corpus}/test.tsv")[:500]
        lengths = [len(ids) for ids in tokenizer([" ".join(s.tokens) for s in sentences])["input_ids"]]
        long = [sentence for sentence, length in zip(sentences, lengths) if length > 128]
        if not long:
            continue
        dataset = sentences_to_dataset(long)
        tags, _ = predict_sentence_tags(model, tokenizer, dataset, 8, 128, True, False)
        results[corpus] = {"tags": tags, "scores": score_by_corpus(dataset, tags)["corpora"]}
    with open(output, "w", encoding="utf-8") as handle:
        json.dump(results, handle)


def compare(old_path: str, new_path: str) -> None:
    with open(old_path, encoding="utf-8") as handle:
        old = json.load(handle)
    with open(new_path, encoding="utf-8") as handle:
        new = json.load(handle)
    for corpus, result in new.items():
        differ = sum(a != b for x, y in zip(result["tags"], old[corpus]["tags"]) for a, b in zip(x, y))
        (scores_new,), (scores_old,) = result["scores"].values(), old[corpus]["scores"].values()
        print(f"{corpus}: {len(result['tags'])} sentences, {differ} word tags differ; strict F1 "
              f"{100 * scores_old['f1']:.2f} -> {100 * scores_new['f1']:.2f}, predicted entities "
              f"{scores_old['n_pred']} -> {scores_new['n_pred']}, correct {scores_old['n_correct']} -> "
              f"{scores_new['n_correct']}")


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        tag(sys.argv[1])
