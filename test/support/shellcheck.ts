/**
 * Runs the real `shellcheck` binary on rendered scripts. Shared by every
 * room's tests: `shellcheckFindings(script)` returns the findings (empty when
 * clean), `SHELLCHECK_AVAILABLE` tells whether the binary is installed.
 */
import { spawnSync } from "node:child_process";

/** Path of the shellcheck binary (override with $SHELLCHECK). */
export const SHELLCHECK = process.env.SHELLCHECK ?? "shellcheck";

/** True when the binary runs. Tests must fail (not skip) when it is missing. */
export const SHELLCHECK_AVAILABLE = spawnSync(SHELLCHECK, ["--version"]).status === 0;

/**
 * Checks one bash script (read from stdin, dialect bash, every severity,
 * external sources not followed). Returns one line per finding,
 * `<line>:<col>: <level>: <message> [SCxxxx]`; throws when shellcheck
 * cannot run at all.
 */
export function shellcheckFindings(script: string, opts: { exclude?: string[] } = {}): string[] {
  const args = ["--shell=bash", "--severity=style", "--format=gcc", "--norc"];
  if (opts.exclude && opts.exclude.length > 0) args.push(`--exclude=${opts.exclude.join(",")}`);
  args.push("-");
  const r = spawnSync(SHELLCHECK, args, {
    input: script,
    encoding: "utf8",
    maxBuffer: 16 * 1024 * 1024,
  });
  if (r.error)
    throw new Error(
      `cannot run ${SHELLCHECK}: ${r.error.message} (install the shellcheck package)`,
    );
  if (r.status !== 0 && r.status !== 1)
    throw new Error(`${SHELLCHECK} failed with exit code ${r.status}: ${r.stderr}`);
  return r.stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => l.replace(/^-:/, ""));
}
