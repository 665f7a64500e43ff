/**
 * The REAL program (infra/index.ts) against lab hosts: shared by
 * `npm run lab` (test/lab/run.ts) and test/lab/program.test.ts.
 *
 * What it is: the program's own scripts, stdin and connections run over real
 * SSH with pinned host keys against real hosts (network namespaces running
 * sshd over the cached Debian rootfs; Docker inside the registry host), the
 * PKI as real X.509, with a lab stack config (the dev stack pointed at the
 * lab). What it is not: no Pulumi engine, no state, no diff (every step runs
 * on every run; idempotence is what the scripts report), and Harbor is
 * replaced by a STAND-IN installer built from local parts
 * (test/lab/standin: it keeps the installer's contract and serves a real
 * Distribution `/v2/`).
 *
 * Hosts: `reg` (registry host, Docker), `cli1` (trusts for docker,
 * containerd, podman and the OS store) and `cli2` (containerd and the OS
 * store). No host has a lab alias for reg.casd.local: the registry host
 * resolves it through the host room's /etc/hosts pin, the clients through
 * the trust room's (`etcHostsAddress`).
 */
import type * as pulumiType from "@pulumi/pulumi";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  captureRegistrationFailures,
  createLab,
  defaultCacheDir,
  ensureRootfs,
  labPrerequisites,
  runSync,
  statefulTls,
  type Lab,
  type LiveMocks,
  type Operation,
  type TlsMaterializer,
} from "./harness";
import { buildStandinInstaller, type StandinInstaller } from "./standin/build";
import { devStack, TEST_SECRETS } from "../support/stack";

export const PROJECT = "casd-registry";
export const HOSTNAME = "reg.casd.local";
export const HARBOR_VERSION = "2.15.1";
/** Lab host names; clients are named the same in the stack config. */
export const REGISTRY_HOST = "reg";
export const CLIENTS: Readonly<Record<string, readonly string[]>> = {
  cli1: ["docker", "containerd", "podman", "os"],
  cli2: ["containerd", "os"],
};

/** The registry host's data dir (as in the dev stack). */
export const DATA_DIR = "/data";

/**
 * Steps that only check (they change nothing, so they say `unchanged` on
 * every run, first or not) and why they exist. In the lab every step runs
 * on every run (no diff); under the engine a re-run with unchanged config
 * runs only `registry-host-preflight` (its stdin carries the operator's
 * clock, a new input every time), and `harbor-upload` copies only when the
 * installer's checksum changes (here it copies on every run).
 */
export const CHECK_ONLY: Readonly<Record<string, string>> = {
  "registry-host-ready":
    "waits for boot and cloud-init to finish, then checks root (or sudo) works",
  "registry-host-preflight":
    "checks OS, Docker, ports, disk and clock; re-runs on every `pulumi up` by design",
  "harbor-health":
    "waits until Harbor's /api/v2.0/health answers healthy through the real name and CA",
  "trust-cli1-verify": "proves TLS from cli1 with each installed trust alone",
  "trust-cli2-verify": "proves TLS from cli2 with each installed trust alone",
};

/** Reasons this machine cannot run the program's lab (empty when it can): the harness's, plus what builds the stand-in. */
export function programLabPrerequisites(): string[] {
  const missing = labPrerequisites();
  for (const cmd of ["go", "tar", "ldd", "docker-registry"])
    if (runSync(["sh", "-c", `command -v ${cmd}`]).code !== 0)
      missing.push(`command ${cmd} not found`);
  return missing;
}

export interface ProgramLab {
  lab: Lab;
  installer: StandinInstaller;
  /** The TLS "state" shared by the runs, so a re-run sees the same certificates. */
  tls: TlsMaterializer;
  /** Known secret values, scrubbed from anything printed. */
  secrets: string[];
  timings: { rootfsMs: number; standinMs: number; hostsMs: number; dockerMs: number };
}

export interface LabOptions {
  /** Namespace prefix (default "casdprg"). */
  prefix?: string;
  /** The lab's private /24 (default 10.236.0.0/24). */
  subnet?: string;
  log?: (line: string) => void;
}

/** Rootfs, stand-in installer (both cached), the three hosts, Docker on the registry host. */
export async function bringUpLab(opts: LabOptions = {}): Promise<ProgramLab> {
  const log = opts.log ?? (() => undefined);
  let t = Date.now();
  const rootfs = await ensureRootfs({ log });
  const rootfsMs = Date.now() - t;
  t = Date.now();
  const installer = buildStandinInstaller({
    version: HARBOR_VERSION,
    outDir: path.join(defaultCacheDir(), "standin"),
  });
  const standinMs = Date.now() - t;
  log(`stand-in installer ${installer.path} (sha256 ${installer.sha256.slice(0, 12)}...)`);
  t = Date.now();
  const lab = await createLab({
    prefix: opts.prefix ?? "casdprg",
    subnet: opts.subnet ?? "10.236.0.0/24",
    rootfs: rootfs.dir,
    hosts: [
      { name: REGISTRY_HOST, docker: true },
      ...Object.keys(CLIENTS).map((name) => ({ name })),
    ],
    log,
  });
  const hostsMs = Date.now() - t;
  t = Date.now();
  try {
    await lab.startDocker(REGISTRY_HOST);
  } catch (e) {
    await lab.destroy();
    throw e;
  }
  const dockerMs = Date.now() - t;
  const secrets = [
    TEST_SECRETS.harborAdminPassword,
    TEST_SECRETS.harborDatabasePassword,
    lab.clientKey.privateKey,
  ];
  return {
    lab,
    installer,
    tls: statefulTls(),
    secrets,
    timings: { rootfsMs, standinMs, hostsMs, dockerMs },
  };
}

/** The lab stack: the dev stack pointed at the lab's hosts, the stand-in installer and the lab's client key. */
export function labStack(p: ProgramLab): {
  config: Record<string, unknown>;
  secrets: Record<string, string>;
} {
  const { lab, installer } = p;
  const dev = devStack();
  const reg = lab.host(REGISTRY_HOST);
  return {
    config: {
      ...dev.config,
      registryHost: {
        ...(dev.config.registryHost as Record<string, unknown>),
        address: reg.address,
        port: reg.port,
        user: reg.user,
        hostKey: reg.hostKey,
        minFreeGiB: 1,
      },
      harbor: {
        ...(dev.config.harbor as Record<string, unknown>),
        version: installer.version,
        installerPath: installer.path,
        installerSha256: installer.sha256,
        healthTimeoutSeconds: 120,
      },
      clients: Object.entries(CLIENTS).map(([name, runtimes]) => {
        const h = lab.host(name);
        return {
          name,
          address: h.address,
          port: h.port,
          user: h.user,
          hostKey: h.hostKey,
          runtimes,
          etcHostsAddress: reg.address,
        };
      }),
    },
    secrets: { ...TEST_SECRETS, sshPrivateKey: lab.clientKey.privateKey },
  };
}

export interface ProgramRun {
  mocks: LiveMocks;
  /** Failed registrations (empty on success). */
  failures: string[];
  /** The program's stack outputs, resolved (empty when a failure kept them from resolving). */
  outputs: Record<string, unknown>;
  ms: number;
}

/** A clean module registry for one run: jest's under jest, else a cleared `require.cache` for what a run loads. */
async function isolated(fn: () => Promise<void>): Promise<void> {
  if (typeof jest !== "undefined") return jest.isolateModulesAsync(fn);
  const repo = path.resolve(__dirname, "../..");
  const fresh = [
    path.join(repo, "node_modules", "@pulumi") + path.sep,
    path.join(repo, "infra") + path.sep,
  ];
  for (const k of Object.keys(require.cache))
    if (fresh.some((f) => k.startsWith(f))) delete require.cache[k];
  return fn();
}

/**
 * One `pulumi up` of the real program: config and secrets set as the engine
 * would, fresh live mocks, `infra/index.ts` imported inside the root stack
 * resource, then every registration awaited. `onOperation` sees each
 * operation as it completes (polled).
 */
export async function runProgram(
  p: ProgramLab,
  onOperation?: (op: Operation) => void,
): Promise<ProgramRun> {
  const stack = labStack(p);
  let result: ProgramRun | undefined;
  await isolated(async () => {
    const pulumi: typeof pulumiType = await import("@pulumi/pulumi");
    const { createLiveMocks } = await import("./harness/live-mocks");
    const all: Record<string, string> = {};
    for (const [k, v] of Object.entries(stack.config))
      all[`${PROJECT}:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
    for (const [k, v] of Object.entries(stack.secrets)) all[`${PROJECT}:${k}`] = v;
    pulumi.runtime.setAllConfig(
      all,
      Object.keys(stack.secrets).map((k) => `${PROJECT}:${k}`),
    );
    const mocks = createLiveMocks({ netns: p.lab.controlNs, tls: p.tls });
    await pulumi.runtime.setMocks(mocks, PROJECT, "lab", false);
    let seen = 0;
    const report = () => {
      for (; seen < mocks.operations.length; seen++) onOperation?.(mocks.operations[seen]);
    };
    const poll = setInterval(report, 100);
    const started = Date.now();
    try {
      const { value, failures } = await captureRegistrationFailures(() => untilDone(pulumi, mocks));
      const fromFailed = (m: string) =>
        m.slice(Math.max(0, m.indexOf("failed to register new resource")));
      const all = [...new Set([...failures, ...value.errors.map(fromFailed)])];
      result = { mocks, failures: all, outputs: value.outputs, ms: Date.now() - started };
    } finally {
      clearInterval(poll);
      report();
    }
  });
  return result!;
}

/**
 * Runs infra/index.ts inside the root stack resource and waits for the
 * outcome. Success: the stack's outputs (resolved) once every registration
 * is done. A failed step: the engine would stop there; under mocks the
 * resources after it wait forever, so this returns once registrations have
 * settled with a failed one. An error that fails the program itself (a
 * config error) is returned in `errors`.
 */
async function untilDone(
  pulumi: typeof pulumiType,
  mocks: LiveMocks,
): Promise<{ outputs: Record<string, unknown>; errors: string[] }> {
  let imported = false;
  const done = pulumi.runtime
    .runInPulumiStack(async () => {
      const program = (await import("../../infra")) as Record<string, unknown>;
      imported = true;
      return program;
    })
    .then(
      (outputs) => ({
        outputs: (outputs ?? {}) as Record<string, unknown>,
        errors: [] as string[],
      }),
      (e: unknown) => ({ outputs: {}, errors: [e instanceof Error ? e.message : String(e)] }),
    );
  const failed = () => mocks.resources.some((r) => r.status === "failed");
  let idleSince: number | undefined;
  let registered = -1;
  for (;;) {
    // The quiet window outlasts the gaps between a step's end and its dependents' registration.
    const r = await Promise.race([done, mocks.settled(1000).then(() => undefined)]);
    if (r) {
      if (r.errors.length > 0) return r;
      await (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs();
      await mocks.settled();
      return r;
    }
    if (!imported) continue;
    if (failed()) return { outputs: {}, errors: [] }; // the failures are the registrations' own
    if (registered !== mocks.resources.length)
      [registered, idleSince] = [mocks.resources.length, Date.now()];
    else if (Date.now() - idleSince! > 30_000)
      return {
        outputs: {},
        errors: ["the program registered nothing for 30 s and did not finish (no step failed)"],
      };
  }
}

// ---------------------------------------------------------------- reading runs

/** The `casd: <step>: changed|unchanged` line a step printed, or undefined. */
export function resultLine(op: Operation): string | undefined {
  return op.stdout.split("\n").find((l) => /^casd: .+: (changed|unchanged)$/.test(l));
}

/** What each operation of the run printed as its result: remote step name -> result line ("copied" for uploads). */
export function results(
  run: ProgramRun,
  ops: Operation[] = run.mocks.operations,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const op of ops)
    out[op.resource] =
      op.op === "copy" ? `copied ${op.remotePath}` : (resultLine(op) ?? "(no result line)");
  return out;
}

/** "1.2.3.4:22" -> lab host name. */
export function hostOf(lab: Lab, target: string): string {
  return lab.hosts.find((h) => `${h.address}:${h.port}` === target)?.name ?? target;
}

/** `text` with every known secret value replaced. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s) out = out.split(s).join("[secret]");
  return out;
}

/** One line per completed operation: `[  1.2s] name  target  result line(s)`. */
export function formatOperation(
  op: Operation,
  startedAt: number,
  secrets: readonly string[],
): string {
  const at = `[${((Date.now() - startedAt) / 1000).toFixed(1).padStart(5)}s]`;
  const lines =
    op.op === "copy"
      ? [`copied to ${op.remotePath} (sha256 ${op.sha256.slice(0, 12)}...)`]
      : op.stdout.split("\n").filter((l) => l.trim() !== "");
  if (!op.ok)
    lines.push(
      `FAILED (exit ${op.exitCode}): ${op.stderr.trim().split("\n").slice(-3).join(" | ")}`,
    );
  const head = `${at} ${op.resource.padEnd(26)} ${op.target.padEnd(16)} `;
  return scrub(
    head + (lines.length ? lines.join(`\n${" ".repeat(head.length)}`) : "(no output)"),
    secrets,
  );
}

/** Operations per host: count, changed, unchanged, time spent; then the run's wall time. */
export function summaryTable(lab: Lab, run: ProgramRun, title: string): string {
  const rows = new Map<
    string,
    { ops: number; changed: number; unchanged: number; other: number; ms: number }
  >();
  for (const op of run.mocks.operations) {
    const host = hostOf(lab, op.target);
    const r = rows.get(host) ?? { ops: 0, changed: 0, unchanged: 0, other: 0, ms: 0 };
    const line = resultLine(op) ?? "";
    r.ops++;
    r.ms += op.durationMs;
    if (line.endsWith(": changed")) r.changed++;
    else if (line.endsWith(": unchanged")) r.unchanged++;
    else r.other++;
    rows.set(host, r);
  }
  const head = ["host", "operations", "changed", "unchanged", "other", "step time"];
  const body = [...rows.entries()].map(([h, r]) =>
    [h, r.ops, r.changed, r.unchanged, r.other, `${(r.ms / 1000).toFixed(1)}s`].map(String),
  );
  const widths = head.map((c, i) => Math.max(c.length, ...body.map((b) => b[i].length)));
  const fmt = (cells: string[]) =>
    "  " + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [
    `${title}: ${run.mocks.operations.length} operations, wall time ${(run.ms / 1000).toFixed(1)}s${run.failures.length ? `, ${run.failures.length} FAILED` : ""}`,
    fmt(head),
    ...body.map(fmt),
  ].join("\n");
}

// ---------------------------------------------------------------- proving it from the clients

/** An image from local parts (busybox) pushed from the registry host through https://reg.casd.local with its OS trust. */
export async function pushTestImage(lab: Lab, ref = `${HOSTNAME}/library/bb:1`): Promise<void> {
  const r = await lab.ssh(
    REGISTRY_HOST,
    `set -e; rm -rf /tmp/casd-img; mkdir -p /tmp/casd-img/root/bin; cp /bin/busybox /tmp/casd-img/root/bin/
tar -C /tmp/casd-img/root -c . | docker import - casd-lab/bb:1 >/dev/null
docker save casd-lab/bb:1 -o /tmp/casd-img/bb.tar
skopeo copy --quiet docker-archive:/tmp/casd-img/bb.tar docker://${ref}
rm -rf /tmp/casd-img`,
  );
  if (r.code !== 0)
    throw new Error(
      `pushing ${ref} from ${REGISTRY_HOST} failed (exit ${r.code}): ${r.stderr.trim()}`,
    );
}

export interface ClientProof {
  host: string;
  /** `curl https://reg.casd.local/v2/` with the OS store only: "<rc> <http code>". */
  curl: string;
  /** skopeo inspect of the pushed image through /etc/containers/certs.d (cli1), else undefined. */
  skopeo?: string;
}

/** What a client sees of the registry with only the trust the program installed. */
export async function proveFromClient(
  lab: Lab,
  host: string,
  ref = `${HOSTNAME}/library/bb:1`,
): Promise<ClientProof> {
  const curl = await lab.ssh(
    host,
    `rc=0; code=$(curl -sS -o /dev/null -w '%{http_code}' https://${HOSTNAME}/v2/ 2>/dev/null) || rc=$?; echo "$rc $code"`,
  );
  const proof: ClientProof = { host, curl: curl.stdout.trim() };
  if ((CLIENTS[host] ?? []).includes("podman")) {
    const s = await lab.ssh(
      host,
      `skopeo inspect --format '{{.Name}} {{len .Layers}} layer(s)' docker://${ref} 2>&1`,
    );
    proof.skopeo = `${s.code} ${s.stdout.trim()}`;
  }
  return proof;
}

/** The certificate chain and key the registry host serves (read from its files, never printed). */
export function servedTls(
  lab: Lab,
  certDir = "/etc/casd-registry/tls",
): { chainPem: string; keyPem: string } {
  const root = lab.host(REGISTRY_HOST).rootDir;
  return {
    chainPem: fs.readFileSync(path.join(root, certDir, "fullchain.crt"), "utf8"),
    keyPem: fs.readFileSync(path.join(root, certDir, "server.key"), "utf8"),
  };
}

/**
 * After destroy: serves the registry's former chain (from {@link servedTls},
 * taken before destroy) with `openssl s_server` on the registry host's 443,
 * and returns each client's curl exit code against it, reaching the address
 * directly (the /etc/hosts pins are gone too). 60 means: not trusted any more.
 */
export async function curlAfterDestroy(
  lab: Lab,
  tls: { chainPem: string; keyPem: string },
): Promise<Record<string, number>> {
  const reg = lab.host(REGISTRY_HOST);
  const dir = "/tmp/casd-former-tls";
  fs.mkdirSync(path.join(reg.rootDir, dir), { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(reg.rootDir, dir, "chain.pem"), tls.chainPem);
  fs.writeFileSync(path.join(reg.rootDir, dir, "key.pem"), tls.keyPem, { mode: 0o600 });
  const started = await lab.exec(
    REGISTRY_HOST,
    `setsid openssl s_server -quiet -www -accept 443 -cert ${dir}/chain.pem -key ${dir}/key.pem </dev/null >/dev/null 2>&1 & echo $! > ${dir}/pid
for _ in $(seq 50); do grep -q ':01BB [0-9A-F:]* 0A ' /proc/net/tcp /proc/net/tcp6 && exit 0; sleep 0.1; done; echo 'openssl s_server did not listen on 443' >&2; exit 1`,
  );
  try {
    if (started.code !== 0) throw new Error(`on ${REGISTRY_HOST}: ${started.stderr.trim()}`);
    const out: Record<string, number> = {};
    for (const host of Object.keys(CLIENTS)) {
      const r = await lab.ssh(
        host,
        `curl -sS -o /dev/null --resolve ${HOSTNAME}:443:${reg.address} https://${HOSTNAME}/`,
      );
      out[host] = r.code;
    }
    return out;
  } finally {
    await lab.exec(REGISTRY_HOST, `kill "$(cat ${dir}/pid)" 2>/dev/null; rm -rf ${dir}`);
  }
}
