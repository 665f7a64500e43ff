/** Exit codes of the offline CLI (documented in `--help`). */
export const EXIT_OK = 0;
/** A verification, preflight, download or install step failed. */
export const EXIT_FAILED = 1;
/** The command line was wrong. */
export const EXIT_USAGE = 2;

/** A failure the operator can fix; `problems` are printed one per line. */
export class OfflineError extends Error {
  constructor(
    message: string,
    public readonly problems: string[] = [],
    public readonly exitCode: number = EXIT_FAILED,
  ) {
    super(problems.length ? `${message}\n${problems.map((p) => `  - ${p}`).join("\n")}` : message);
    this.name = "OfflineError";
  }
}

export class UsageError extends OfflineError {
  constructor(message: string) {
    super(message, [], EXIT_USAGE);
    this.name = "UsageError";
  }
}
