/**
 * Live mocks: a `pulumi.runtime.Mocks` that performs the program's
 * `command:*` resources for real and materializes `tls:*` as real X.509, so
 * the real `infra/` code runs against lab hosts with its own inputs.
 *
 * Behaviour, resource by resource (provider = @pulumi/command 1.2.1):
 * - `command:remote:Command`: runs `create` over real OpenSSH with the
 *   resource's `connection`, the host key CHECKED against `connection.hostKey`
 *   (a temp known_hosts, `StrictHostKeyChecking=yes`, `BatchMode=yes`,
 *   `GlobalKnownHostsFile=/dev/null`, the key in a 0600 file); a connection
 *   without `hostKey` is refused (project policy). The command string goes
 *   as one SSH "exec" request, run by the login user's shell, as the provider
 *   does. `stdin` is fed when non-empty. `environment` is NOT delivered: the
 *   provider sends it as SSH env requests, which sshd drops without a
 *   matching `AcceptEnv` and the lab's sshd has none (the project never
 *   relies on it). `connection.proxy` goes through `ProxyJump` with the
 *   bastion's own pinned key. Outputs = inputs + `stdout`, `stderr` with ONE
 *   trailing "\n" removed (the provider's `strings.TrimSuffix(out, "\n")`).
 *   Non-zero exit: throws "Process exited with status N: ..." with stderr,
 *   which fails the registration as the engine would. Dial errors
 *   (refused, timeout, no route, closed during key exchange) are retried up to
 *   `dialErrorLimit` times, like the provider.
 * - `command:remote:CopyToRemote`: copies `source` over SFTP (the provider's
 *   transport, so the host's sftp subsystem is exercised) with the
 *   provider's rules: StringAsset to a file path (a directory is an error),
 *   FileAsset into an existing directory or to the path, FileArchive of a
 *   directory recursively (trailing "/" copies its contents); parent
 *   directories created; new files 0644, existing files keep their mode
 *   (sftp `Create`); owner and mode are not otherwise set.
 * - `command:local:Command`: runs `create` with `interpreter` (default
 *   `/bin/sh -c`, the provider's), `dir`, `environment` (added to this
 *   process's), `stdin`; in `opts.netns` when given, so it reaches lab hosts.
 * - `tls:*`: `materializeTls(type, inputs)` of test/support/x509.ts (or
 *   `opts.tls`), given the inputs as received (secrets still wrapped).
 * - anything else (components, other providers): outputs = inputs, recorded.
 * - `call`: throws on every token (strict: an unmocked invoke is a test bug).
 * - Preview (`setMocks(..., preview=true)`): nothing runs, outputs = inputs.
 *
 * Ids are `${name}-id` for custom resources, none for components. The SDK
 * calls `newResource` of a dependent only after its dependencies returned,
 * so creates run in dependency order; unrelated ones run concurrently (SSH
 * operations are capped by `maxConcurrentSsh`). Every executed operation is
 * appended to `operations`; captured `delete`/`update` scripts run later with
 * `runDelete`, `runUpdate`, `deleteAll`. `await mocks.settled()` waits until
 * the program has registered all it will; a failed registration rejects the
 * resource's Outputs: wrap failure tests in `captureRegistrationFailures`.
 * Not emulated: `additionalSecretOutputs` (mocks never see it), `triggers`
 * and diffs (there is no previous state), `PULUMI_COMMAND_STDOUT` env,
 * `assetPaths`/`archivePaths` of local commands.
 */
import * as pulumi from "@pulumi/pulumi";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { hostProcess, run, RunResult, shq, sleep } from "./proc";

export const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270";

/** An SSH connection as `command.remote` takes it (after secret unwrapping). */
export interface SshConnection {
  host: string;
  port?: number;
  user?: string;
  privateKey?: string;
  password?: string;
  hostKey?: string;
  dialErrorLimit?: number;
  perDialTimeout?: number;
  proxy?: Omit<SshConnection, "proxy" | "dialErrorLimit" | "perDialTimeout">;
}

/** One executed operation. */
export interface Operation {
  seq: number;
  resource: string;
  type: string;
  op: "create" | "update" | "delete" | "copy";
  /** "address:port" of the target, or "local". */
  target: string;
  /** sha256 of the script run (commands) or of the content copied (file/text copies). */
  sha256: string;
  remotePath?: string;
  durationMs: number;
  exitCode: number;
  stdout: string;
  stderr: string;
  ok: boolean;
}

/** A resource the mocks saw. `plainInputs` has secrets unwrapped. */
export interface RecordedResource {
  type: string;
  name: string;
  custom: boolean;
  inputs: Record<string, unknown>;
  plainInputs: Record<string, unknown>;
  /** "running" while its create runs; "failed" when it threw (its registration failed). */
  status: "running" | "created" | "failed";
  /** Outputs returned to the SDK (set once created). */
  outputs?: Record<string, unknown>;
}

export type TlsMaterializer = (
  type: string,
  inputs: Record<string, unknown>,
) => Promise<Record<string, unknown>>;

export interface LiveMocksOptions {
  /** Network namespace to run ssh, sftp and local commands in (e.g. `lab.controlNs`). Default: none (this one). */
  netns?: string;
  /** Materializer for `tls:*` (gets inputs with secrets still wrapped). Default: `materializeTls` of test/support/x509.ts. */
  tls?: TlsMaterializer;
  /** Most SSH operations at once (sshd's MaxStartups defaults to 10). Default 6. */
  maxConcurrentSsh?: number;
  /** Kill a single operation after this many ms. Default 20 minutes. */
  timeoutMs?: number;
}

/** Recursively replaces `{ <sig>: <secret>, value }` by `value` (assets and archives are kept as they are). */
export function unwrapSecrets<T>(v: T): T {
  if (Array.isArray(v)) return v.map((x) => unwrapSecrets(x)) as unknown as T;
  if (v === null || typeof v !== "object") return v;
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return v;
  const o = v as Record<string, unknown>;
  if (o[SECRET_SIG_KEY] === SECRET_SIG_VALUE) return unwrapSecrets(o.value) as T;
  return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, unwrapSecrets(x)])) as T;
}

// ---- SSH transport -----------------------------------------------------------

const DIAL_ERROR =
  /^(ssh: connect to host .*|kex_exchange_identification: .*|Connection closed by \S+ port \d+)\s*$/m;
const KEY_RE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+|sk-\S+)\s+[A-Za-z0-9+/]+=*/;

/** Errors of a connection (and its proxy), e.g. a missing pinned host key; empty when usable. */
export function connectionProblems(
  c: Partial<SshConnection> | undefined,
  what = "connection",
): string[] {
  if (!c || typeof c !== "object") return [`${what} is not set`];
  const p: string[] = [];
  if (!c.host) p.push(`${what}.host is not set`);
  if (!c.hostKey)
    p.push(
      `${what}.hostKey is not set: refusing to connect without a pinned host key (without it @pulumi/command ignores host keys)`,
    );
  else if (!KEY_RE.test(c.hostKey.trim()))
    p.push(
      `${what}.hostKey is not an OpenSSH public key line ("ssh-ed25519 AAAA..."): ${c.hostKey.slice(0, 40)}`,
    );
  if (!c.privateKey)
    p.push(`${what}.privateKey is not set (the live mocks authenticate with keys only)`);
  if (c.proxy) p.push(...connectionProblems(c.proxy, `${what}.proxy`));
  return p;
}

/** known_hosts host pattern as OpenSSH looks it up: `host`, or `[host]:port` off port 22. */
function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/**
 * Writes a private ssh config for `conn` (key files 0600, one known_hosts per
 * hop holding exactly the pinned key) and calls `fn` with `-F <config>` argv
 * parts and the target alias; removes everything afterwards.
 */
async function withSshConfig<T>(
  conn: SshConnection,
  fn: (config: string, alias: string) => Promise<T>,
): Promise<T> {
  const problems = connectionProblems(conn);
  if (problems.length > 0) throw new Error(`live mocks: ${problems.join("; ")}`);
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), "casd-ssh-"));
  try {
    const hop = (name: string, c: Omit<SshConnection, "proxy">, jump?: string): string => {
      const port = c.port ?? 22;
      const key = path.join(dir, `${name}.key`);
      const kh = path.join(dir, `${name}.known_hosts`);
      fs.writeFileSync(key, c.privateKey!.endsWith("\n") ? c.privateKey! : c.privateKey + "\n", {
        mode: 0o600,
      });
      fs.writeFileSync(
        kh,
        `${knownHostsName(c.host, port)} ${KEY_RE.exec(c.hostKey!.trim())![0]}\n`,
      );
      return [
        `Host ${name}`,
        `  HostName ${c.host}`,
        `  Port ${port}`,
        `  User ${c.user ?? "root"}`,
        `  IdentityFile ${key}`,
        "  IdentitiesOnly yes",
        "  IdentityAgent none",
        "  BatchMode yes",
        "  StrictHostKeyChecking yes",
        `  UserKnownHostsFile ${kh}`,
        "  GlobalKnownHostsFile /dev/null",
        "  PasswordAuthentication no",
        `  ConnectTimeout ${conn.perDialTimeout ?? 15}`,
        "  LogLevel ERROR",
        ...(jump ? [`  ProxyJump ${jump}`] : []),
        "",
      ].join("\n");
    };
    const config = path.join(dir, "config");
    const text = conn.proxy
      ? hop("casd-target", conn, "casd-bastion") + hop("casd-bastion", conn.proxy)
      : hop("casd-target", conn);
    fs.writeFileSync(config, text, { mode: 0o600 });
    return await fn(config, "casd-target");
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}

function inNetns(netns: string | undefined, argv: string[]): string[] {
  return netns ? ["ip", "netns", "exec", netns, ...argv] : argv;
}

/** Errors that a retry cannot cure (a proxied connection adds a dial-like line after them). */
const FINAL_ERROR = /Host key verification failed|Permission denied|no matching host key type/;

/**
 * Repeats `attempt` while OpenSSH reports a dial error (connection refused,
 * timeout, closed during key exchange: the command never started), up to
 * `limit` dials (-1: up to 60), one second apart, as the provider does.
 */
async function retryDial(limit: number, attempt: () => Promise<RunResult>): Promise<RunResult> {
  const max = limit < 0 ? 60 : Math.max(1, limit);
  for (let i = 1; ; i++) {
    const r = await attempt();
    if (r.code !== 255 || !DIAL_ERROR.test(r.stderr) || FINAL_ERROR.test(r.stderr) || i >= max)
      return r;
    await sleep(1000);
  }
}

export interface SshRunOptions {
  stdin?: string;
  netns?: string;
  timeoutMs?: number;
}

/** Runs `command` on `conn` over OpenSSH with the pinned host key. Resolves with the raw result (no trimming, no throw on exit code). */
export function sshRun(
  conn: SshConnection,
  command: string,
  opts: SshRunOptions = {},
): Promise<RunResult> {
  if (Buffer.byteLength(command) > 120_000)
    throw new Error(
      `live mocks: command of ${Buffer.byteLength(command)} bytes exceeds one argv string (128 KiB); ship it with CopyToRemote`,
    );
  return withSshConfig(conn, (config, alias) =>
    retryDial(conn.dialErrorLimit ?? 10, () =>
      run(inNetns(opts.netns, ["ssh", "-F", config, alias, "--", command]), {
        stdin: opts.stdin,
        timeoutMs: opts.timeoutMs,
      }),
    ),
  );
}

/** What CopyToRemote copies, resolved from the asset or archive. */
export type CopySource = { kind: "text"; text: string } | { kind: "path"; path: string };

/** Resolves a deserialized asset/archive to a {@link CopySource}; throws on kinds @pulumi/command 1.2.1 rejects. */
export async function copySource(source: unknown): Promise<CopySource> {
  const s = source as
    | {
        text?: Promise<string> | string;
        path?: Promise<string> | string;
        uri?: unknown;
        assets?: unknown;
      }
    | undefined;
  if (s && s.text !== undefined) return { kind: "text", text: await s.text };
  if (s && s.path !== undefined) return { kind: "path", path: await s.path };
  throw new Error(
    "live mocks: CopyToRemote source must be a FileAsset, StringAsset or FileArchive (the kinds @pulumi/command 1.2.1 accepts)",
  );
}

/** sftp batch quoting: double quotes, backslash-escaped `"` and `\`. */
function sftpQuote(p: string): string {
  if (/[\n\r]/.test(p)) throw new Error(`live mocks: path with a newline: ${JSON.stringify(p)}`);
  return `"${p.replace(/[\\"]/g, "\\$&")}"`;
}

/**
 * Copies `source` to `remotePath` over SFTP with the provider's rules (see
 * the module doc). Local files are staged as 0644 copies so that new remote
 * files get the mode the provider's sftp `Create` gives them.
 */
export async function sftpCopy(
  conn: SshConnection,
  source: CopySource,
  remotePath: string,
  opts: { netns?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const stat = await sshRun(
    conn,
    `if [ -d ${shq(remotePath)} ]; then echo dir; elif [ -e ${shq(remotePath)} ]; then echo file; else echo none; fi`,
    opts,
  );
  if (stat.code !== 0) return stat;
  const dest = stat.stdout.trim() as "dir" | "file" | "none";
  const stage = await fs.promises.mkdtemp(path.join(os.tmpdir(), "casd-copy-"));
  try {
    const batch: string[] = [];
    const mkdirs = (dir: string) => {
      // MkdirAll: every ancestor, ignoring those that exist ("-" prefix).
      const parts = dir.split("/").filter(Boolean);
      for (let i = 1; i <= parts.length; i++)
        batch.push(
          `-mkdir ${sftpQuote((dir.startsWith("/") ? "/" : "") + parts.slice(0, i).join("/"))}`,
        );
    };
    const putFile = (local: string, remote: string) => {
      const staged = path.join(stage, `f${batch.length}`);
      fs.copyFileSync(local, staged);
      fs.chmodSync(staged, 0o644);
      batch.push(`put ${sftpQuote(staged)} ${sftpQuote(remote)}`);
    };
    if (source.kind === "text") {
      if (dest === "dir")
        throw new Error(
          `remote path ${remotePath} is a directory; when using a text asset, remotePath must be a file path`,
        );
      const staged = path.join(stage, "text");
      fs.writeFileSync(staged, source.text, { mode: 0o644 });
      mkdirs(path.posix.dirname(remotePath));
      batch.push(`put ${sftpQuote(staged)} ${sftpQuote(remotePath)}`);
    } else if (fs.statSync(source.path).isDirectory()) {
      if (dest === "file")
        throw new Error(`remote path ${remotePath} exists but is not a directory`);
      if (dest === "none") mkdirs(remotePath);
      const into = source.path.endsWith("/")
        ? remotePath
        : path.posix.join(remotePath, path.basename(source.path));
      mkdirs(into);
      const walk = (local: string, remote: string) => {
        for (const e of fs.readdirSync(local, { withFileTypes: true })) {
          if (e.isDirectory()) {
            batch.push(`-mkdir ${sftpQuote(path.posix.join(remote, e.name))}`);
            walk(path.join(local, e.name), path.posix.join(remote, e.name));
          } else putFile(path.join(local, e.name), path.posix.join(remote, e.name));
        }
      };
      walk(source.path, into);
    } else {
      if (dest === "none") mkdirs(path.posix.dirname(remotePath));
      putFile(
        source.path,
        dest === "dir" ? path.posix.join(remotePath, path.basename(source.path)) : remotePath,
      );
    }
    const batchFile = path.join(stage, "batch");
    fs.writeFileSync(batchFile, batch.join("\n") + "\n");
    return await withSshConfig(conn, (config, alias) =>
      retryDial(conn.dialErrorLimit ?? 10, () =>
        run(inNetns(opts.netns, ["sftp", "-q", "-b", batchFile, "-F", config, alias]), {
          timeoutMs: opts.timeoutMs,
        }),
      ),
    );
  } finally {
    await fs.promises.rm(stage, { recursive: true, force: true });
  }
}

// ---- the mocks -------------------------------------------------------------------

const sha256 = (s: string | Buffer) => crypto.createHash("sha256").update(s).digest("hex");
const trimNl = (s: string) => (s.endsWith("\n") ? s.slice(0, -1) : s);

class Semaphore {
  private waiting: (() => void)[] = [];
  constructor(private free: number) {}
  async use<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

/** test/support/x509.ts, loaded on the first tls resource (programs without tls do not need it). */
async function defaultTls(
  type: string,
  inputs: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const x509 = await import("../../support/x509");
  if (!x509.isTlsToken(type)) throw new Error(`live mocks: no materializer for ${type}`);
  return x509.materializeTls(type, inputs);
}

export class LiveMocks implements pulumi.runtime.Mocks {
  /** Every executed operation, in completion order. */
  readonly operations: Operation[] = [];
  /** Every resource registered, in registration order (failed ones too, see `status`). */
  readonly resources: RecordedResource[] = [];
  private readonly ssh: Semaphore;
  private inFlight = 0;
  private lastActivity = Date.now();

  constructor(private readonly opts: LiveMocksOptions = {}) {
    this.ssh = new Semaphore(opts.maxConcurrentSsh ?? 6);
  }

  async newResource(
    args: pulumi.runtime.MockResourceArgs,
  ): Promise<pulumi.runtime.MockResourceResult> {
    this.inFlight++;
    this.lastActivity = Date.now();
    try {
      return await this.register(args);
    } finally {
      this.inFlight--;
      this.lastActivity = Date.now();
    }
  }

  /**
   * Resolves once no registration is running and none started for `quietMs`:
   * the program has done all it will (dependents register within
   * milliseconds of their dependencies returning). Call it after the program
   * ran (after `await import()` of it, or after constructing the resources).
   */
  async settled(quietMs = 250): Promise<void> {
    while (this.inFlight > 0 || Date.now() - this.lastActivity < quietMs)
      await sleep(Math.max(10, quietMs / 4));
  }

  private async register(
    args: pulumi.runtime.MockResourceArgs,
  ): Promise<pulumi.runtime.MockResourceResult> {
    const inputs = (args.inputs ?? {}) as Record<string, unknown>;
    const custom = args.custom ?? true;
    const rec: RecordedResource = {
      type: args.type,
      name: args.name,
      custom,
      inputs,
      plainInputs: unwrapSecrets(inputs),
      status: "running",
    };
    this.resources.push(rec);
    try {
      rec.outputs = await this.create(rec);
      rec.status = "created";
    } catch (e) {
      rec.status = "failed";
      throw e;
    }
    return { id: custom ? `${args.name}-id` : undefined, state: rec.outputs };
  }

  /** Performs a resource's create; returns its outputs. */
  private async create(rec: RecordedResource): Promise<Record<string, unknown>> {
    const { type, name, inputs, plainInputs: plain } = rec;
    if (pulumi.runtime.isDryRun()) return { ...inputs };
    if (type === "command:remote:Command" || type === "command:local:Command") {
      const op = await this.runCommand(
        type,
        name,
        plain,
        plain.create as string | undefined,
        "create",
      );
      return {
        ...inputs,
        stdout: op ? trimNl(op.stdout) : "",
        stderr: op ? trimNl(op.stderr) : "",
      };
    }
    if (type === "command:remote:CopyToRemote") await this.copy(name, plain);
    // Raw inputs: secrets stay wrapped, so the materializer returns them still secret.
    if (type.startsWith("tls:")) return (this.opts.tls ?? defaultTls)(type, inputs);
    return { ...inputs };
  }

  call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
    throw new Error(`live mocks: unmocked call ${args.token}`);
  }

  /** The recorded resource named `name` (the last one if several). */
  resource(name: string): RecordedResource {
    const r = [...this.resources].reverse().find((x) => x.name === name);
    if (!r) throw new Error(`live mocks: no resource named "${name}"`);
    return r;
  }

  /** Runs the captured `delete` of command `name`; undefined when it has none. Throws when it fails. */
  async runDelete(name: string): Promise<Operation | undefined> {
    const r = this.resource(name);
    return this.runCommand(
      r.type,
      name,
      r.plainInputs,
      r.plainInputs.delete as string | undefined,
      "delete",
    );
  }

  /** Runs the captured `update` of command `name` (its `create` when it has no `update`, as the provider does). Throws when it fails. */
  async runUpdate(name: string): Promise<Operation | undefined> {
    const r = this.resource(name);
    const script = (r.plainInputs.update ?? r.plainInputs.create) as string | undefined;
    return this.runCommand(r.type, name, r.plainInputs, script, "update");
  }

  /**
   * Runs the captured `delete` of every created command, in reverse
   * registration order (as destroy would; failed creates are not in state);
   * stops at the first failure. `afterEach`, when given, is awaited after
   * each delete (to look at the hosts between steps).
   */
  async deleteAll(afterEach?: (op: Operation) => Promise<void>): Promise<Operation[]> {
    const done: Operation[] = [];
    for (const r of [...this.resources].reverse()) {
      if (
        r.status === "created" &&
        (r.type === "command:remote:Command" || r.type === "command:local:Command") &&
        typeof r.plainInputs.delete === "string"
      ) {
        const op = (await this.runDelete(r.name))!;
        done.push(op);
        if (afterEach) await afterEach(op);
      }
    }
    return done;
  }

  private async runCommand(
    type: string,
    name: string,
    inputs: Record<string, unknown>,
    script: string | undefined,
    op: Operation["op"],
  ): Promise<Operation | undefined> {
    if (script === undefined || script === "") return undefined;
    const stdin =
      typeof inputs.stdin === "string" && inputs.stdin.length > 0 ? inputs.stdin : undefined;
    let r: RunResult;
    let target = "local";
    if (type === "command:remote:Command") {
      const conn = inputs.connection as SshConnection;
      const problems = connectionProblems(conn);
      if (problems.length > 0)
        throw new Error(`live mocks: ${type} ${name}: ${problems.join("; ")}`);
      target = `${conn.host}:${conn.port ?? 22}`;
      r = await this.ssh.use(() =>
        sshRun(conn, script, { stdin, netns: this.opts.netns, timeoutMs: this.timeout }),
      );
    } else {
      const interpreter =
        Array.isArray(inputs.interpreter) && inputs.interpreter.length > 0
          ? (inputs.interpreter as string[])
          : ["/bin/sh", "-c"];
      const env = {
        ...process.env,
        ...((inputs.environment as Record<string, string> | undefined) ?? {}),
      };
      r = await run(inNetns(this.opts.netns, [...interpreter, script]), {
        stdin,
        env,
        cwd: inputs.dir as string | undefined,
        timeoutMs: this.timeout,
      });
    }
    const rec = this.record({
      resource: name,
      type,
      op,
      target,
      sha256: sha256(script),
      durationMs: r.ms,
      exitCode: r.code,
      stdout: r.stdout,
      stderr: r.stderr,
      ok: r.code === 0,
    });
    if (r.code !== 0) {
      const out = r.stdout.trim() ? `\n--- stdout ---\n${r.stdout.slice(-2000)}` : "";
      throw new Error(
        `Process exited with status ${r.code}: running ${op} of ${type} ${name} on ${target} (script sha256 ${rec.sha256.slice(0, 12)}):\n${r.stderr.slice(-4000)}${out}`,
      );
    }
    return rec;
  }

  private async copy(name: string, inputs: Record<string, unknown>): Promise<void> {
    const conn = inputs.connection as SshConnection;
    const problems = connectionProblems(conn);
    if (problems.length > 0)
      throw new Error(`live mocks: command:remote:CopyToRemote ${name}: ${problems.join("; ")}`);
    const remotePath = inputs.remotePath as string;
    const started = Date.now();
    const source = await copySource(inputs.source);
    const digest =
      source.kind === "text"
        ? sha256(source.text)
        : fs.statSync(source.path).isFile()
          ? sha256(fs.readFileSync(source.path))
          : "";
    const r = await this.ssh.use(() =>
      sftpCopy(conn, source, remotePath, { netns: this.opts.netns, timeoutMs: this.timeout }),
    );
    this.record({
      resource: name,
      type: "command:remote:CopyToRemote",
      op: "copy",
      target: `${conn.host}:${conn.port ?? 22}`,
      sha256: digest,
      remotePath,
      durationMs: Date.now() - started,
      exitCode: r.code,
      stdout: r.stdout,
      stderr: r.stderr,
      ok: r.code === 0,
    });
    if (r.code !== 0)
      throw new Error(
        `live mocks: CopyToRemote ${name} to ${conn.host}:${remotePath} failed (exit ${r.code}):\n${r.stderr.trim()}`,
      );
  }

  private get timeout(): number {
    return this.opts.timeoutMs ?? 20 * 60_000;
  }

  private record(op: Omit<Operation, "seq">): Operation {
    const rec = { seq: this.operations.length + 1, ...op };
    this.operations.push(rec);
    return rec;
  }
}

/**
 * Runs `fn` and collects failed resource registrations. Under mocks the SDK
 * rejects every Output of a resource whose registration failed (and of the
 * resources that consume them); nothing awaits most of them, so jest would
 * report each one as an unhandled rejection and fail the test (and plain
 * Node would exit). While `fn` runs, those rejections are marked handled and
 * their messages returned from "failed to register new resource" on
 * (deduplicated, in order). That includes the same failure surfacing through
 * a component's outputs, which `registerOutputs` reports as
 * `error serializing property "outputs": failed to register new resource ...`
 * (how a room's `ready` output carries a failed step). Any other unhandled
 * rejection stays unhandled. Let `fn` end with `await mocks.settled()` so
 * every failure has happened.
 */
export async function captureRegistrationFailures<T>(
  fn: () => Promise<T>,
): Promise<{ value: T; failures: string[] }> {
  const failures: string[] = [];
  const listener = (reason: unknown, promise: Promise<unknown>) => {
    const message = reason instanceof Error ? reason.message : String(reason);
    const at = message.indexOf("failed to register new resource");
    if (at < 0) return;
    promise.catch(() => undefined);
    const failure = message.slice(at);
    if (!failures.includes(failure)) failures.push(failure);
  };
  const proc = hostProcess(); // jest listens on the real process, not on the test file's copy
  proc.on("unhandledRejection", listener);
  try {
    const value = await fn();
    await sleep(100); // rejections are reported after the microtask queue drains
    return { value, failures };
  } finally {
    proc.removeListener("unhandledRejection", listener);
  }
}

/**
 * A `tls` materializer with "state": a resource with the same type and
 * inputs gets the same outputs in every run that shares it, as the engine's
 * state would give a second `pulumi up` (so a re-run sees the same keys and
 * certificates). Pass one instance to the live mocks of every run.
 */
export function statefulTls(materialize: TlsMaterializer = defaultTls): TlsMaterializer {
  const state = new Map<string, Promise<Record<string, unknown>>>();
  return (type, inputs) => {
    const key = `${type} ${JSON.stringify(inputs)}`;
    let out = state.get(key);
    if (!out) {
      out = materialize(type, inputs);
      state.set(key, out);
      out.catch(() => state.delete(key)); // a failure is not state: the next run tries again
    }
    return out;
  };
}

/** `new LiveMocks(opts)`; pass it to `pulumi.runtime.setMocks`. */
export function createLiveMocks(opts: LiveMocksOptions = {}): LiveMocks {
  return new LiveMocks(opts);
}
