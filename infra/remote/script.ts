/**
 * Script conventions for every remote step, as pure renderers:
 * - bash with `set -euo pipefail`;
 * - check, then change: helpers compare before they write;
 * - atomic writes (temp file in the target directory + `mv`), explicit owner and mode;
 * - one result line per step: `casd: <step>: changed` or `casd: <step>: unchanged`;
 * - secrets only through stdin (never argv, never echoed);
 * - `sudo -n` when the login user is not root.
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
CASD_CHANGED=0
casd_mark() { CASD_CHANGED=1; }
casd_log() { printf 'casd: %s\n' "$*" >&2; }
casd_fail() { printf 'casd: error: %s\n' "$*" >&2; exit 1; }
# casd_dir PATH MODE OWNER GROUP: create or fix a directory.
casd_dir() {
  local p=$1 m=$2 o=$3 g=$4
  if [ ! -d "$p" ]; then mkdir -p "$p"; casd_mark; fi
  if [ "$(stat -c '%a %U %G' "$p")" != "$m $o $g" ]; then
    chmod "$m" "$p"; chown "$o:$g" "$p"; casd_mark
  fi
}
# casd_file DEST MODE OWNER GROUP < content: atomic install, unchanged when equal.
casd_file() {
  local dest=$1 m=$2 o=$3 g=$4 dir tmp
  dir=$(dirname "$dest")
  [ -d "$dir" ] || { mkdir -p "$dir"; casd_mark; }
  tmp=$(mktemp "$dir/.casd.XXXXXX")
  cat > "$tmp"
  if [ -f "$dest" ] && cmp -s "$tmp" "$dest" && [ "$(stat -c '%a %U %G' "$dest")" = "$m $o $g" ]; then
    rm -f "$tmp"
    return 0
  fi
  chmod "$m" "$tmp"; chown "$o:$g" "$tmp"
  mv -f "$tmp" "$dest"
  casd_mark
}
# casd_rm PATH: remove a file if present.
casd_rm() {
  if [ -e "$1" ] || [ -L "$1" ]; then rm -f "$1"; casd_mark; fi
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

/** A bash snippet that writes `content` (embedded, base64) to DEST atomically. */
export function embedFile(dest: string, content: string, mode: string, owner = "root", group = "root"): string {
  const b64 = Buffer.from(content, "utf8").toString("base64");
  return `printf '%s' ${shQuote(b64)} | base64 -d | casd_file ${shQuote(dest)} ${mode} ${owner} ${group}`;
}
