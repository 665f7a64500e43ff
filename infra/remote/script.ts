/**
 * Script conventions for every remote step, as pure renderers:
 * - bash with `set -euo pipefail`;
 * - check, then change: helpers compare before they write;
 * - atomic writes (temp file in the target directory + `mv`), explicit owner and mode;
 * - one result line per step: `casd: <step>: changed` or `casd: <step>: unchanged`;
 * - secrets only through stdin (never argv, never echoed);
 * - `sudo -n` when the login user is not root;
 * - undo journal: steps that change a host note each path's prior state first
 *   (`casd_undo_begin`, `casd_tdir`, `casd_tfile`), and their delete replays it
 *   backwards (`casd_undo_run`), so a delete undoes exactly what create did.
 */
import { createHash } from "node:crypto";

/** Quotes a string for a POSIX shell (single quotes, embedded quotes escaped). */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'"'"'`)}'`;
}

/** sha256 hex of what a step ships; used as the step's trigger. */
export function sha256Hex(...parts: string[]): string {
  const h = createHash("sha256");
  for (const p of parts) {
    h.update(String(p.length));
    h.update(":");
    h.update(p);
  }
  return h.digest("hex");
}

/**
 * Bash functions shared by all steps. `changed` records whether anything
 * was modified; `finish` prints the step's one result line.
 */
export const PRELUDE = String.raw`set -euo pipefail
umask 077
# The last command of a pipeline runs in this shell, so that
# "printf ... | casd_file ..." can record a change (casd_mark).
shopt -s lastpipe
CASD_CHANGED=0
CASD_UNDO_ROOT=/var/lib/casd-registry-undo
CASD_UNDO_LIST=
CASD_UNDO_COPIES=
casd_mark() { CASD_CHANGED=1; }
casd_log() { printf 'casd: %s\n' "$*" >&2; }
casd_warn() { printf 'casd: warning: %s\n' "$*" >&2; }
casd_fail() { printf 'casd: error: %s\n' "$*" >&2; exit 1; }
# casd_mode MODE: canonical octal (0755 and 755 both give 755), as stat %a prints it.
casd_mode() { printf '%o' "$((8#$1))"; }
# casd_ver_ge A B: true when version A >= version B.
casd_ver_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]; }
# casd_dir PATH MODE OWNER GROUP: create or fix a directory.
casd_dir() {
  local p=$1 m o=$3 g=$4
  m=$(casd_mode "$2")
  if [ ! -d "$p" ]; then mkdir -p "$p"; casd_mark; fi
  if [ "$(stat -c '%a %U %G' "$p")" != "$m $o $g" ]; then
    chmod "$m" "$p"; chown "$o:$g" "$p"; casd_mark
  fi
}
# casd__put DEST MODE OWNER GROUP TRACK < content: atomic install via a temp file
# beside DEST; temps left by a killed run are swept first; unchanged when equal.
casd__put() {
  local dest=$1 m o=$3 g=$4 track=$5 dir base tmp stale
  m=$(casd_mode "$2")
  dir=$(dirname "$dest")
  base=$(basename "$dest")
  [ -d "$dir" ] || { mkdir -p "$dir"; casd_mark; }
  for stale in "$dir/.casd.$base."??????; do
    if [ -f "$stale" ]; then rm -f "$stale"; casd_mark; fi
  done
  tmp=$(mktemp "$dir/.casd.$base.XXXXXX")
  cat > "$tmp"
  if [ -f "$dest" ] && cmp -s "$tmp" "$dest" && [ "$(stat -c '%a %U %G' "$dest")" = "$m $o $g" ]; then
    rm -f "$tmp"
    return 0
  fi
  if [ "$track" = 1 ]; then casd_track "$dest"; fi
  chmod "$m" "$tmp"; chown "$o:$g" "$tmp"
  mv -f "$tmp" "$dest"
  if command -v restorecon >/dev/null 2>&1; then restorecon "$dest" 2>/dev/null || true; fi
  casd_mark
}
# casd_file DEST MODE OWNER GROUP < content: atomic install, unchanged when equal.
casd_file() { casd__put "$1" "$2" "$3" "$4" 0; }
# casd_rm PATH: remove a file if present.
casd_rm() {
  if [ -e "$1" ] || [ -L "$1" ]; then rm -f "$1"; casd_mark; fi
}
# Undo journal: before a step first changes a path it notes the path's prior
# state in $CASD_UNDO_ROOT/<id>.list (and a copy of a replaced file); the
# step's delete replays the journal backwards (casd_undo_run).
# casd_undo_begin ID: select the journal of this step.
casd_undo_begin() {
  CASD_UNDO_LIST="$CASD_UNDO_ROOT/$1.list"
  CASD_UNDO_COPIES="$CASD_UNDO_ROOT/$1.d"
}
# casd_track PATH: journal PATH's current state unless already journaled.
casd_track() {
  local p=$1 n copy
  [ -n "$CASD_UNDO_LIST" ] || casd_fail "internal: casd_track before casd_undo_begin"
  if [ ! -d "$CASD_UNDO_ROOT" ]; then mkdir -p "$CASD_UNDO_ROOT"; chmod 700 "$CASD_UNDO_ROOT"; fi
  if [ -f "$CASD_UNDO_LIST" ] && awk -F '\t' -v p="$p" '$2 == p { f = 1 } END { exit !f }' "$CASD_UNDO_LIST"; then
    return 0
  fi
  if [ -L "$p" ]; then
    casd_fail "$p is a symbolic link; this step manages plain files and directories only (remove the link or choose another path)"
  elif [ -d "$p" ]; then
    printf 'dir\t%s\t%s\n' "$p" "$(stat --printf '%a\t%U\t%G' "$p")" >> "$CASD_UNDO_LIST"
  elif [ -f "$p" ]; then
    mkdir -p "$CASD_UNDO_COPIES"; chmod 700 "$CASD_UNDO_COPIES"
    n=0
    if [ -f "$CASD_UNDO_LIST" ]; then n=$(wc -l < "$CASD_UNDO_LIST"); fi
    copy="$CASD_UNDO_COPIES/$((n + 1))"
    cp -p "$p" "$copy"
    printf 'file\t%s\t%s\t%s\n' "$p" "$(stat --printf '%a\t%U\t%G' "$p")" "$copy" >> "$CASD_UNDO_LIST"
  elif [ -e "$p" ]; then
    casd_fail "$p exists but is neither a file nor a directory; move it away"
  else
    printf 'absent\t%s\n' "$p" >> "$CASD_UNDO_LIST"
  fi
}
# casd_tdir PATH MODE OWNER GROUP: casd_dir that journals what it creates or
# changes; missing parents are created 0755, owned by the running user (root).
casd_tdir() {
  local p=$1 m o=$3 g=$4 a missing=""
  m=$(casd_mode "$2")
  a=$p
  while [ ! -e "$a" ] && [ ! -L "$a" ]; do missing="$a
$missing"; a=$(dirname "$a"); done
  while IFS= read -r a; do
    [ -n "$a" ] || continue
    casd_track "$a"
    mkdir "$a"; chmod 755 "$a"
    casd_mark
  done <<< "$missing"
  [ -d "$p" ] || casd_fail "$p exists and is not a directory; move it away or choose another path"
  if [ "$(stat -c '%a %U %G' "$p")" != "$m $o $g" ]; then
    casd_track "$p"
    chmod "$m" "$p"; chown "$o:$g" "$p"; casd_mark
  fi
}
# casd_tfile DEST MODE OWNER GROUP < content: casd_file that journals DEST first.
casd_tfile() { casd__put "$1" "$2" "$3" "$4" 1; }
# casd_undo_run ID [KEEP...]: replay the journal ID backwards: restore modes,
# owners and replaced files, remove what was absent (directories only when
# empty; KEEP directories never), then drop the journal. Tolerant of what is
# already gone.
casd_undo_run() {
  local id=$1 list kind p m o g copy k keep tmp
  shift
  list="$CASD_UNDO_ROOT/$id.list"
  if [ ! -f "$list" ]; then casd_log "nothing journaled for $id: nothing to undo"; return 0; fi
  while IFS=$'\t' read -r kind p m o g copy; do
    keep=0
    for k in "$@"; do if [ "$k" = "$p" ]; then keep=1; fi; done
    case $kind in
      absent)
        if [ -d "$p" ] && [ ! -L "$p" ]; then
          if [ "$keep" = 1 ]; then casd_log "kept $p: registry data is never deleted"
          elif rmdir "$p" 2>/dev/null; then casd_mark
          else casd_log "kept $p: not empty (holds files this step did not create)"; fi
        elif [ -e "$p" ] || [ -L "$p" ]; then
          rm -f "$p"; casd_mark
        fi ;;
      dir)
        if [ -d "$p" ] && [ "$(stat -c '%a %U %G' "$p")" != "$m $o $g" ]; then
          chmod "$m" "$p"; chown "$o:$g" "$p"; casd_mark
        fi ;;
      file)
        if [ -f "$copy" ]; then
          tmp=$(mktemp "$(dirname "$p")/.casd.$(basename "$p").XXXXXX")
          cat "$copy" > "$tmp"; chmod "$m" "$tmp"; chown "$o:$g" "$tmp"
          mv -f "$tmp" "$p"; casd_mark
        else
          casd_warn "the saved copy of $p is missing; left $p as it is"
        fi ;;
      *) casd_warn "unknown journal entry for $p ignored" ;;
    esac
  done < <(tac "$list")
  rm -rf "$CASD_UNDO_ROOT/$id.d"
  rm -f "$list"
  rmdir "$CASD_UNDO_ROOT" 2>/dev/null || true
}
`;

export interface StepScript {
  /** Short step name printed in the result line. */
  step: string;
  /** Bash lines run after the prelude. */
  body: string;
}

/** The full bash text of a step (prelude, body, result line). */
export function renderStepScript(s: StepScript): string {
  return [
    "#!/usr/bin/env bash",
    `# casd-registry step: ${s.step}`,
    PRELUDE,
    s.body.trimEnd(),
    `if [ "$CASD_CHANGED" = 1 ]; then echo ${shQuote(`casd: ${s.step}: changed`)}; else echo ${shQuote(`casd: ${s.step}: unchanged`)}; fi`,
    "",
  ].join("\n");
}

/**
 * The command line that runs a rendered script on the host: the script
 * travels as one argv word to `bash -c` (it holds no secrets by convention),
 * so stdin stays free for secret payloads.
 */
export function remoteInvocation(script: string, opts: { sudo: boolean }): string {
  return `${opts.sudo ? "sudo -n " : ""}bash -c ${shQuote(script)}`;
}

/**
 * A bash snippet that writes `content` (embedded, base64) to DEST atomically.
 * With `track`, the destination's prior state is journaled first
 * (`casd_tfile`, see `casd_undo_begin`) so the step's delete can restore it.
 */
export function embedFile(
  dest: string,
  content: string,
  mode: string,
  owner = "root",
  group = "root",
  track = false,
): string {
  const b64 = Buffer.from(content, "utf8").toString("base64");
  return `printf '%s' ${shQuote(b64)} | base64 -d | ${track ? "casd_tfile" : "casd_file"} ${shQuote(dest)} ${mode} ${owner} ${group}`;
}
