#!/usr/bin/env bash
# Annotate text with the shipped four-type default model, offline on a CPU; sets up .venv first when needed.
#   bash examples/annotate.sh                      # a sample sentence, JSONL on standard output
#   bash examples/annotate.sh FILE_OR_FOLDER ...   # text, JSONL, PubTator or BioC files (vaner-predict --help)
# Runs in the caller's directory, so relative file arguments (and --output) are read from there.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

[ -x "$ROOT/.venv/bin/vaner-predict" ] || bash "$ROOT/.ci/setup"
source "$ROOT/.venv/bin/activate"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if [ "$#" -eq 0 ]; then
    echo "Naloxone reverses the antihypertensive effect of clonidine in BRCA1 mutant mice with breast cancer." |
        vaner-predict --input - --no_progress
else
    vaner-predict --input "$@" --no_progress
fi
