#!/usr/bin/env bash
# Runs the builder stage of deploy/Dockerfile without docker, on this machine: a clean clone
# of the repository's HEAD as the build context, then the stage's WORKDIR / ENV / COPY / RUN
# instructions in order, taken from the working tree's deploy/Dockerfile text (continuation lines joined as docker joins
# them, `--mount=` flags dropped: the cache mount only shares cargo's registry, which this
# machine's CARGO_HOME does anyway). It proves the build commands work; it does not prove
# the base image has the same toolchain (rust:1.92-bookworm; this machine may have a newer
# rustc) and does not run the runtime stage.
#
# Usage: bash deploy/check-builder-stage.sh [SCRATCH_DIR]   (default: a new /tmp directory)
# Leaves the clone (with target/release/artifact-gateway) in SCRATCH_DIR.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRATCH=${1:-$(mktemp -d /tmp/agw-builder.XXXXXX)}
CONTEXT="$SCRATCH/context" # the docker build context: a clean clone of HEAD
ROOT="$SCRATCH/root"       # stands for the builder's filesystem root

log() { printf '[check-builder-stage] %s\n' "$*" >&2; }

rm -rf "$CONTEXT" "$ROOT"
mkdir -p "$ROOT"
git clone --quiet --no-hardlinks "$REPO" "$CONTEXT"
log "context: clean clone of $(git -C "$CONTEXT" rev-parse --short HEAD) in $CONTEXT"
DOCKERFILE="$REPO/deploy/Dockerfile"
# As in the image: no target directory from this machine's environment.
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR

# The builder stage's instructions, one per line, continuations joined, comments dropped.
instructions() {
    awk '
        /^[[:space:]]*#/ { next }                      # comment lines (also inside continuations)
        /^[[:space:]]*$/ { if (cur == "") next }
        {
            line = $0
            if (sub(/\\[[:space:]]*$/, "", line)) { cur = cur line; next }
            cur = cur line
            print cur
            cur = ""
        }
    ' "$DOCKERFILE" | awk '
        toupper($1) == "FROM" { stage = ($NF == "builder"); next }
        stage
    '
}

workdir="$ROOT"
shell=(/bin/sh -c) # docker's default, until a SHELL instruction
count=0
while IFS= read -r instruction; do
    keyword=$(awk '{print toupper($1)}' <<<"$instruction")
    rest=${instruction#* }
    case $keyword in
    WORKDIR)
        workdir="$ROOT$rest"
        mkdir -p "$workdir"
        ;;
    SHELL)
        # A JSON array of plain strings, e.g. ["/bin/bash", "-o", "pipefail", "-c"].
        mapfile -t shell < <(tr -d '[]' <<<"$rest" | tr ',' '\n' | sed 's/^ *"//; s/" *$//')
        log "SHELL ${shell[*]}"
        ;;
    ENV)
        # KEY=VALUE pairs (this Dockerfile uses no quoting or spaces in values).
        for pair in $rest; do
            log "ENV $pair"
            export "${pair?}"
        done
        ;;
    COPY)
        [[ $rest != --from=* ]] || { log "unexpected COPY --from in the builder stage"; exit 1; }
        read -r -a words <<<"$rest"
        dest=${words[-1]}
        [[ $dest == /* ]] && target="$ROOT$dest" || target="$workdir/$dest"
        sources=("${words[@]:0:${#words[@]}-1}")
        for src in "${sources[@]}"; do
            log "COPY $src -> ${target#"$ROOT"}"
            # docker's rules: a directory's contents go into DEST; a file goes into DEST when
            # DEST ends in / or there are several sources, else it becomes DEST. -a keeps
            # mtimes, as COPY does.
            if [[ -d $CONTEXT/$src ]]; then
                mkdir -p "$target"
                cp -a "$CONTEXT/$src/." "$target/"
            elif [[ $dest == */ || ${#sources[@]} -gt 1 ]]; then
                mkdir -p "$target"
                cp -a "$CONTEXT/$src" "$target/"
            else
                mkdir -p "$(dirname "$target")"
                cp -a "$CONTEXT/$src" "$target"
            fi
        done
        ;;
    RUN)
        command=$rest
        while [[ $command == --* ]]; do command=${command#* }; done
        log "RUN (in ${workdir#"$ROOT"}): $command"
        (cd "$workdir" && "${shell[@]}" "$command")
        ;;
    *)
        log "unexpected instruction in the builder stage: $keyword"
        exit 1
        ;;
    esac
    count=$((count + 1))
done < <(instructions)

[[ $count -gt 0 ]] || { log "no builder stage found"; exit 1; }
binary="$ROOT/src/target/release/artifact-gateway"
[[ -x $binary ]] || { log "$binary was not built"; exit 1; }
log "built $binary ($(du -h "$binary" | cut -f1)); the runtime stage copies it from /src/target/release/artifact-gateway"
