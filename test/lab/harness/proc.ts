/**
 * Process helpers shared by the lab harness: run a command (async or sync),
 * and tell whether a PID is still the process we started (PID reuse guard).
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";

/** PATH used for every command the harness runs, on the machine and in hosts. */
export const LAB_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** A finished command: exit code (128 + signal number when killed), output, wall time. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  /** Fed to the command's stdin, then stdin is closed. Default: empty stdin. */
  stdin?: string | Buffer;
  /** Full environment. Default: the current process's environment. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Kill the command (SIGKILL, by its PID) after this many ms. Default: none. */
  timeoutMs?: number;
}

const SIGNALS: Record<string, number> = {
  SIGKILL: 9,
  SIGTERM: 15,
  SIGINT: 2,
  SIGHUP: 1,
  SIGPIPE: 13,
};

/** Runs argv[0] with argv[1..] (no shell) and resolves with its result; never rejects on a non-zero exit. */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.stdin.on("error", () => undefined); // the command may exit without reading its stdin
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
      }, opts.timeoutMs);
    }
    child.on("error", (e) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`cannot run ${argv[0]}: ${e.message}`));
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({
        code: code ?? 128 + (signal ? (SIGNALS[signal] ?? 0) : 0),
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        ms: Date.now() - started,
      });
    });
    child.stdin.end(opts.stdin ?? "");
  });
}

/** Synchronous {@link run}, for teardown paths that must work inside `process.on("exit")`. */
export function runSync(argv: readonly string[], opts: RunOptions = {}): RunResult {
  const started = Date.now();
  const r = spawnSync(argv[0], argv.slice(1), {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    input: opts.stdin ?? "",
    timeout: opts.timeoutMs,
    killSignal: "SIGKILL",
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT") {
    return { code: 127, stdout: "", stderr: `${argv[0]}: not found`, ms: Date.now() - started };
  }
  return {
    code: r.status ?? 128 + (r.signal ? (SIGNALS[r.signal] ?? 0) : 0),
    stdout: r.stdout?.toString("utf8") ?? "",
    stderr: r.stderr?.toString("utf8") ?? "",
    ms: Date.now() - started,
  };
}

/** Throws an Error naming `what`, the exit code and stderr when `r` failed; returns `r` otherwise. */
export function mustSucceed(r: RunResult, what: string): RunResult {
  if (r.code !== 0)
    throw new Error(
      `${what} failed with exit code ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`,
    );
  return r;
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks), or undefined when the PID does not exist. */
export function procStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** True while `pid` exists and is not a zombie (and, when given, still has `startTime`). */
export function isAlive(pid: number, startTime?: string): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") return false;
    return startTime === undefined || fields[19] === startTime;
  } catch {
    return false;
  }
}

/** SIGKILLs `pid` if it is alive (and still has `startTime`); ignores a process that is already gone. */
export function killPid(pid: number, startTime?: string): void {
  if (!isAlive(pid, startTime)) return;
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    /* exited meanwhile */
  }
}

/** Waits (busy, synchronously) until none of `pids` is alive or `timeoutMs` passed; returns those still alive. */
export function waitGoneSync(pids: readonly number[], timeoutMs: number): number[] {
  const deadline = Date.now() + timeoutMs;
  let alive = pids.filter((p) => isAlive(p));
  while (alive.length > 0 && Date.now() < deadline) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    alive = alive.filter((p) => isAlive(p));
  }
  return alive;
}

/**
 * The real Node process object. Under jest, `process` is a per-test-file copy
 * with its own (never emitted) listeners, so `process.on("exit")` there does
 * nothing; a core module's function belongs to the outer realm, and its
 * `Function` constructor evaluates `process` there. Outside jest this is `process`.
 */
export function hostProcess(): NodeJS.Process {
  const OuterFunction = fs.readFileSync.constructor as FunctionConstructor;
  return OuterFunction("return process")() as NodeJS.Process;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Quotes `s` for a POSIX shell as one word. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
