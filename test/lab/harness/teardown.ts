/**
 * Lab teardown: everything a lab made is found by its name prefix and removed,
 * synchronously, so the same code serves `lab.destroy()`, `process.on("exit")`,
 * SIGINT/SIGTERM and `cleanStale(prefix)` after a killed run.
 *
 * What a lab leaves on the machine, by design (see hosts.ts):
 * - network namespaces `<prefix>-ctl` and `<prefix>-<host>` (bind mounts under
 *   /run/netns) and `/etc/netns/<prefix>-ctl/`; the bridge and veths live only
 *   inside those namespaces, the root namespace gets no link and no address;
 * - processes: per host an `unshare` and the namespace's PID 1 (sshd), plus
 *   what runs in them; relays started by `lab.forward()` in `<prefix>-ctl`;
 * - a work dir `$TMPDIR/casd-lab/<prefix>-XXXXXX` (overlay upper/work dirs,
 *   keys, logs, an `owner` file "<pid> <starttime>");
 * - no mount in the root mount namespace: each host mounts its overlay inside
 *   its own private mount namespace, which dies with its PID 1. Teardown still
 *   unmounts anything found under the work dir (deepest first, `umount -l` as
 *   fallback) in case a test mounted something there.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { hostProcess, isAlive, killPid, runSync, waitGoneSync } from "./proc";

/** What one lab created; filled in as it is created, so a half-made lab tears down too. */
export interface LabState {
  prefix: string;
  workDir: string;
  /** Network namespaces created, control first. */
  namespaces: string[];
  /** Links created inside those namespaces (deleted explicitly before the namespaces). */
  links: { ns: string; name: string }[];
  /** Processes started (host `unshare` and PID 1, relays), with their start time. */
  pids: { pid: number; start?: string }[];
  /** In-process cleanups (servers of `lab.forward`). */
  closers: (() => void)[];
  destroyed: boolean;
}

/** Where lab work dirs live: `$TMPDIR/casd-lab`. */
export function labTmpBase(): string {
  return path.join(os.tmpdir(), "casd-lab");
}

/** Mount points (decoded) listed in /proc/self/mounts. */
export function mountPoints(): string[] {
  return fs
    .readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) =>
      l
        .split(" ")[1]
        .replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))),
    );
}

/** Names from `ip netns list` (without the "(id: N)" suffix). */
export function netnsList(): string[] {
  const r = runSync(["ip", "netns", "list"]);
  return r.stdout
    .split("\n")
    .map((l) => l.split(" ")[0])
    .filter(Boolean);
}

/** Tears one lab down; throws listing what could not be removed. Idempotent. */
export function teardownSync(state: LabState): void {
  state.destroyed = true;
  live.delete(state);
  for (const close of state.closers.splice(0)) {
    try {
      close();
    } catch {
      /* already closed */
    }
  }
  for (const p of state.pids) killPid(p.pid, p.start);
  removeResources(state.namespaces, [state.workDir], state.links);
}

/**
 * Removes what a killed earlier run left under `prefix`: namespaces named
 * `<prefix>-*` (and every process in them), mounts under its work dirs,
 * `/etc/netns/<prefix>-*`, root-namespace links named `<prefix>-*`, and the
 * work dirs. Throws when a live process still owns a lab with this prefix
 * (two concurrent labs must not share a prefix).
 */
export function cleanStale(prefix: string): void {
  const base = labTmpBase();
  const dirs = fs.existsSync(base)
    ? fs
        .readdirSync(base)
        .filter((d) => d.startsWith(`${prefix}-`))
        .map((d) => path.join(base, d))
    : [];
  for (const dir of dirs) {
    const [pid, start] = readOwner(dir);
    if (pid !== undefined && isAlive(pid, start)) {
      const mine = pid === process.pid && [...live].some((s) => s.workDir === dir);
      throw new Error(
        `lab prefix "${prefix}" is in use by ${mine ? "a live lab of this process" : `live pid ${pid}`} (${dir}); destroy it or pick another prefix`,
      );
    }
  }
  const namespaces = netnsList().filter((n) => n.startsWith(`${prefix}-`));
  removeResources(namespaces, dirs, []);
  for (const link of rootLinks().filter((l) => l.startsWith(`${prefix}-`)))
    runSync(["ip", "link", "del", link]);
}

function readOwner(dir: string): [number | undefined, string | undefined] {
  try {
    const [pid, start] = fs.readFileSync(path.join(dir, "owner"), "utf8").trim().split(" ");
    return [Number(pid), start];
  } catch {
    return [undefined, undefined];
  }
}

function rootLinks(): string[] {
  return runSync(["ip", "-o", "link", "show"])
    .stdout.split("\n")
    .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined);
}

/** Kills every process in `namespaces`, deletes links and namespaces, unmounts and removes `dirs`. */
function removeResources(
  namespaces: readonly string[],
  dirs: readonly string[],
  links: LabState["links"],
): void {
  const problems: string[] = [];
  const existing = new Set(netnsList());
  const pids: number[] = [];
  for (const ns of namespaces) {
    if (!existing.has(ns)) continue;
    for (const p of runSync(["ip", "netns", "pids", ns]).stdout.split("\n").filter(Boolean)) {
      killPid(Number(p));
      pids.push(Number(p));
    }
  }
  const stuck = waitGoneSync(pids, 10_000);
  if (stuck.length > 0) problems.push(`processes still alive after SIGKILL: ${stuck.join(" ")}`);

  for (const l of [...links].reverse())
    if (existing.has(l.ns)) runSync(["ip", "-n", l.ns, "link", "del", l.name]);
  for (const ns of namespaces) {
    if (existing.has(ns)) {
      const r = runSync(["ip", "netns", "del", ns]);
      if (r.code !== 0) problems.push(`ip netns del ${ns}: ${r.stderr.trim()}`);
    }
    fs.rmSync(path.join("/etc/netns", ns), { recursive: true, force: true });
  }

  for (const dir of dirs) {
    const under = (m: string) => m === dir || m.startsWith(dir + "/");
    for (const m of mountPoints()
      .filter(under)
      .sort((a, b) => b.length - a.length)) {
      if (runSync(["umount", m]).code !== 0) runSync(["umount", "-l", m]);
    }
    const left = mountPoints().filter(under);
    if (left.length > 0) {
      problems.push(`mounts left under ${dir}, not removing it: ${left.join(" ")}`);
      continue;
    }
    const r = runSync(["rm", "-rf", "--one-file-system", dir]);
    if (r.code !== 0) problems.push(`rm -rf ${dir}: ${r.stderr.trim()}`);
  }
  const leftNs = netnsList().filter((n) => namespaces.includes(n));
  if (leftNs.length > 0) problems.push(`namespaces left: ${leftNs.join(" ")}`);
  if (problems.length > 0) throw new Error(`lab teardown incomplete:\n- ${problems.join("\n- ")}`);
}

// ---- cleanup on exit and signals -------------------------------------------

const live = new Set<LabState>();
let installed = false;

/**
 * Registers `state` for teardown on process exit, SIGINT and SIGTERM (until
 * torn down). With other SIGINT/SIGTERM listeners (jest has some) they decide
 * whether the process ends; alone, the signal is re-raised after cleanup.
 */
export function track(state: LabState): void {
  live.add(state);
  if (installed) return;
  installed = true;
  const all = () => {
    for (const s of [...live]) {
      try {
        teardownSync(s);
      } catch (e) {
        process.stderr.write(`casd lab ${s.prefix}: ${(e as Error).message}\n`);
      }
    }
  };
  const proc = hostProcess(); // the real one: jest's per-file copy never emits these
  proc.on("exit", all);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    const onSignal = () => {
      all();
      proc.removeListener(sig, onSignal);
      if (proc.listenerCount(sig) === 0) proc.kill(proc.pid, sig); // default action now that we are done
    };
    proc.on(sig, onSignal);
  }
}
