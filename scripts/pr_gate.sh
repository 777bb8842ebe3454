#!/usr/bin/env bash
# The pull-request gate: measure the base commit and this checkout on the same machine, then judge
# this checkout against the base, case by case (`artifact check RUN --baseline BASE`): exit 1 when
# a case is slower beyond its tolerance or less correct, 3/4 when a case is invalid or the GPU was
# shared (the runner, not the change), 2 when something could not be measured or read.
#
#   bash scripts/pr_gate.sh BASE_REV [OUT]        (make gate BASE=origin/main does the same)
#
# The base is measured with the base's own code (a git worktree at BASE_REV), and stored in
# GATE_STORE under its commit and the GPU model: the next pull request on the same base reuses it
# instead of measuring it again. OUT gets head/ (this checkout's run), base/ (a copy of the base
# run) and head/vs-baseline.md/json.
#
# Environment:
#   GATE_STORE      stored base runs (default: $HOME/.cache/gpu-kernel-artifact/gate)
#   GATE_MEASURE    how a checkout is measured: a command run inside the checkout with GATE_OUT set
#                   to the results folder to write (default: make reproduce, results moved there)
#   GATE_ARGS       more options for `artifact check --baseline` (e.g. --tolerance 0.05)
#   ARTIFACT        the artifact command that judges (default: .venv-reproduce/bin/artifact, which
#                   make reproduce installs; else artifact on PATH)
#   REPRODUCE_ARGS  passed to make reproduce by the default GATE_MEASURE
set -euo pipefail

die() { echo "pr_gate: $*" >&2; exit 2; }

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: bash scripts/pr_gate.sh BASE_REV [OUT] (e.g. origin/main)"
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || die "run it inside the project's git checkout"
base_sha=$(git rev-parse --verify --quiet "$1^{commit}") \
  || die "$1: not a commit here; fetch it first (git fetch origin main, or actions/checkout with fetch-depth: 0)"
head_sha=$(git rev-parse HEAD)
root=$(git rev-parse --show-toplevel)
out=$(realpath -m "${2:-results/gate-${head_sha:0:12}}")
[ ! -e "$out/head/manifest.json" ] || die "$out already holds a measured run; give another OUT or remove it"
mkdir -p "$out"

# The machine the base run must match: the GPU model (a base run of another model is not comparable).
if command -v nvidia-smi >/dev/null 2>&1 && model=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1) \
    && [ -n "$model" ]; then :; else model=cpu; fi
slug=$(printf '%s' "$model" | tr -cs 'A-Za-z0-9' '-' | sed 's/^-*//; s/-*$//' | tr 'A-Z' 'a-z')
store_root=${GATE_STORE:-$HOME/.cache/gpu-kernel-artifact/gate}
stored="$store_root/${base_sha}-${slug}"

default_measure() {
  # make reproduce in this checkout (its own pinned environment and image); the results folder is
  # moved to GATE_OUT. A FAIL against the shipped reference (exit 1) is not the gate's question:
  # the comparison with the base decides; a folder that was not finished is refused by the check.
  local stamp rc=0
  stamp="gate-$(date -u +%Y%m%dT%H%M%SZ)-$$"
  make reproduce STAMP="$stamp" REPRODUCE_ARGS="${REPRODUCE_ARGS:-}" || rc=$?
  [ -f "results/$stamp/manifest.json" ] || { echo "pr_gate: make reproduce wrote no results (exit $rc)" >&2; return 2; }
  mv "results/$stamp" "$GATE_OUT"
}

measure() {  # measure TREE FOLDER
  local tree=$1 folder=$2
  echo "pr_gate: measuring $(git -C "$tree" rev-parse --short HEAD) in $tree -> $folder"
  if [ -n "${GATE_MEASURE:-}" ]; then
    (cd "$tree" && GATE_OUT="$folder" bash -c "$GATE_MEASURE")
  else
    (cd "$tree" && GATE_OUT="$folder" default_measure)
  fi
  [ -f "$folder/manifest.json" ] || die "measuring $tree wrote no results folder at $folder"
}

worktree=""
cleanup() { if [ -n "$worktree" ]; then git -C "$root" worktree remove --force "$worktree" >/dev/null 2>&1 || rm -rf "$worktree"; fi; }
trap cleanup EXIT

if [ -f "$stored/manifest.json" ]; then
  echo "pr_gate: reusing the stored base run of ${base_sha:0:12} on $model ($stored)"
else
  worktree="$out/base-src"
  rm -rf "$worktree"
  git -C "$root" worktree add --quiet --detach --force "$worktree" "$base_sha"
  measure "$worktree" "$out/base-new"
  mkdir -p "$store_root"
  # Stored whole or not at all: a copy under another name, then one rename.
  rm -rf "$stored.partial.$$" && cp -a "$out/base-new" "$stored.partial.$$" && mv -T "$stored.partial.$$" "$stored"
  rm -rf "$out/base-new"
  cleanup && worktree=""
  echo "pr_gate: stored the base run of ${base_sha:0:12} on $model in $stored"
fi
rm -rf "$out/base" && cp -a "$stored" "$out/base"

measure "$root" "$out/head"

if [ -n "${ARTIFACT:-}" ]; then judge=$ARTIFACT
elif [ -x "$root/.venv-reproduce/bin/artifact" ]; then judge="$root/.venv-reproduce/bin/artifact"
else judge=artifact; fi
rc=0
# shellcheck disable=SC2086 # ARTIFACT may be a command with arguments, GATE_ARGS a list of options
$judge check "$out/head" --baseline "$out/base" ${GATE_ARGS:-} || rc=$?
exit "$rc"
