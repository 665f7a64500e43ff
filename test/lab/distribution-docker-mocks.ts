/**
 * Live mocks for the @pulumi/docker resources the Distribution room uses,
 * layered over the harness's LiveMocks (which keeps `command:*` and `tls:*`):
 *
 * - `pulumi:providers:docker`: recorded (host `ssh://user@addr:port` and
 *   `sshOpts`); nothing runs, as the real provider only connects on use.
 * - `docker:index/container:Container`: performed for real on the engine the
 *   container's provider names, over SSH with exactly the provider's
 *   `sshOpts` (so the pinned-key options, KnownHostsCommand included, are
 *   what protects the connection): the inputs are mapped to the Engine API
 *   (`POST /containers/create` with the same Config/HostConfig fields the
 *   provider sets, then `start`), and `wait: true` waits for the healthcheck
 *   to report healthy within `waitTimeout`, as the provider does. An input
 *   the mapping does not cover fails the registration (no silent drops).
 *   A container with the same name, image and labels is kept ("same", as a
 *   second `pulumi up` with no diff); a different one is an error (the
 *   provider would replace it; not emulated).
 * - any other `docker:*` type fails the registration (not emulated).
 *
 * `deleteContainers()` removes the containers created here (force, volumes
 * kept: the provider's delete with `removeVolumes: false`).
 */
import * as pulumi from "@pulumi/pulumi";
import { LiveMocks, run, RunResult, shq, unwrapSecrets } from "./harness";

interface ProviderRecord {
  name: string;
  user: string;
  address: string;
  port: number;
  sshOpts: string[];
}

export interface ContainerOp {
  name: string;
  op: "create" | "same" | "delete";
  target: string;
  durationMs: number;
  id: string;
}

const HANDLED = new Set([
  "name", "image", "restart", "mustRun", "networkMode", "ports", "volumes", "healthcheck", "labels",
  "logDriver", "logOpts", "wait", "waitTimeout", "removeVolumes", "destroyGraceSeconds",
]); // prettier-ignore

/** "30s", "1m30s", "500ms" to nanoseconds (Go durations, as the provider parses them). */
export function durationNs(d: string | undefined): number {
  if (!d) return 0;
  const re = /(\d+)(ms|s|m|h)/g;
  let total = 0;
  let m: RegExpExecArray | null;
  let seen = "";
  while ((m = re.exec(d))) {
    seen += m[0];
    total += Number(m[1]) * { ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 }[m[2] as "ms" | "s" | "m" | "h"];
  }
  if (seen !== d) throw new Error(`docker mocks: cannot parse duration ${JSON.stringify(d)}`);
  return total;
}

/** The Engine API body of `POST /containers/create` for the provider's Container inputs. */
export function containerCreateBody(i: Record<string, any>): Record<string, unknown> {
  const unknown = Object.keys(i).filter((k) => !HANDLED.has(k));
  if (unknown.length > 0)
    throw new Error(`docker mocks: Container inputs not emulated: ${unknown.join(", ")}`);
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of (i.ports ?? []) as {
    internal: number;
    external?: number;
    ip?: string;
    protocol?: string;
  }[]) {
    const key = `${p.internal}/${p.protocol ?? "tcp"}`;
    exposed[key] = {};
    (bindings[key] ??= []).push({
      HostIp: p.ip ?? "",
      HostPort: p.external !== undefined ? String(p.external) : "",
    });
  }
  const hc = i.healthcheck as
    | {
        tests: string[];
        interval?: string;
        timeout?: string;
        retries?: number;
        startPeriod?: string;
      }
    | undefined;
  return {
    Image: i.image,
    Labels: Object.fromEntries(
      ((i.labels ?? []) as { label: string; value: string }[]).map((l) => [l.label, l.value]),
    ),
    ExposedPorts: exposed,
    ...(hc
      ? {
          Healthcheck: {
            Test: hc.tests,
            Interval: durationNs(hc.interval),
            Timeout: durationNs(hc.timeout),
            Retries: hc.retries ?? 0,
            StartPeriod: durationNs(hc.startPeriod),
          },
        }
      : {}),
    ...(i.destroyGraceSeconds !== undefined ? { StopTimeout: i.destroyGraceSeconds } : {}),
    HostConfig: {
      Binds: (
        (i.volumes ?? []) as { hostPath: string; containerPath: string; readOnly?: boolean }[]
      ).map((v) => `${v.hostPath}:${v.containerPath}${v.readOnly ? ":ro" : ""}`),
      NetworkMode: i.networkMode ?? "default",
      PortBindings: bindings,
      RestartPolicy: { Name: i.restart ?? "no", MaximumRetryCount: 0 },
      LogConfig: { Type: i.logDriver ?? "json-file", Config: i.logOpts ?? {} },
    },
  };
}

export class DockerLiveMocks implements pulumi.runtime.Mocks {
  readonly containerOps: ContainerOp[] = [];
  private readonly providers = new Map<string, ProviderRecord>();
  private readonly created: { provider: ProviderRecord; name: string }[] = [];

  constructor(
    readonly live: LiveMocks,
    private readonly opts: { netns: string },
  ) {}

  async newResource(
    args: pulumi.runtime.MockResourceArgs,
  ): Promise<pulumi.runtime.MockResourceResult> {
    if (args.type === "pulumi:providers:docker") {
      const plain = unwrapSecrets(args.inputs) as Record<string, unknown>;
      const m = /^ssh:\/\/([^@]+)@(\[[^\]]+\]|[^:]+):(\d+)$/.exec(String(plain.host));
      if (!m)
        throw new Error(
          `docker mocks: provider ${args.name}: host ${JSON.stringify(plain.host)} is not ssh://user@address:port`,
        );
      const sshOpts = (
        typeof plain.sshOpts === "string" ? JSON.parse(plain.sshOpts) : plain.sshOpts
      ) as string[];
      const id = `${args.name}-id`;
      this.providers.set(id, {
        name: args.name,
        user: m[1],
        address: m[2].replace(/^\[|\]$/g, ""),
        port: Number(m[3]),
        sshOpts: sshOpts ?? [],
      });
      return { id, state: args.inputs };
    }
    if (args.type === "docker:index/container:Container") return this.container(args);
    if (args.type.startsWith("docker:"))
      throw new Error(`docker mocks: ${args.type} is not emulated`);
    return this.live.newResource(args);
  }

  call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
    return this.live.call(args);
  }

  /** Runs `cmd` on the provider's host over ssh with the provider's own options (stdin optional). */
  private ssh(p: ProviderRecord, cmd: string, stdin?: string): Promise<RunResult> {
    return run(
      [
        "ip",
        "netns",
        "exec",
        this.opts.netns,
        "ssh",
        ...p.sshOpts,
        "-l",
        p.user,
        "-p",
        String(p.port),
        "--",
        p.address,
        cmd,
      ],
      { stdin, timeoutMs: 300_000 },
    );
  }

  /** One Engine API call on the host's socket; returns status and body. */
  private async api(
    p: ProviderRecord,
    method: string,
    urlPath: string,
    body?: unknown,
  ): Promise<{ status: number; body: string }> {
    const data = body === undefined ? "" : "-H 'Content-Type: application/json' --data-binary @- ";
    const cmd = `curl -sS --unix-socket /run/docker.sock -X ${method} ${data}-w '\\n%{http_code}' ${shq(`http://docker${urlPath}`)}`;
    const r = await this.ssh(p, cmd, body === undefined ? undefined : JSON.stringify(body));
    if (r.code !== 0)
      throw new Error(
        `docker mocks: ${method} ${urlPath} on ${p.address}: ssh/curl exit ${r.code}: ${r.stderr.trim()}`,
      );
    const at = r.stdout.lastIndexOf("\n");
    return { status: Number(r.stdout.slice(at + 1)), body: r.stdout.slice(0, at) };
  }

  private providerOf(args: pulumi.runtime.MockResourceArgs): ProviderRecord {
    const ref = args.provider ?? "";
    const id = ref.slice(ref.lastIndexOf("::") + 2);
    const p = this.providers.get(id);
    if (!p)
      throw new Error(
        `docker mocks: ${args.name} has no known docker provider (ref ${JSON.stringify(ref)}); the default provider is not emulated`,
      );
    return p;
  }

  private async container(
    args: pulumi.runtime.MockResourceArgs,
  ): Promise<pulumi.runtime.MockResourceResult> {
    const started = Date.now();
    const p = this.providerOf(args);
    const i = unwrapSecrets(args.inputs) as Record<string, any>;
    const body = containerCreateBody(i);
    const name = String(i.name);
    const existing = await this.api(p, "GET", `/containers/${encodeURIComponent(name)}/json`);
    let id: string;
    let op: ContainerOp["op"];
    if (existing.status === 200) {
      const c = JSON.parse(existing.body) as {
        Id: string;
        Image: string;
        Config: { Labels: Record<string, string> };
      };
      const same =
        c.Image === body.Image &&
        JSON.stringify(sortObj(c.Config.Labels)) ===
          JSON.stringify(sortObj(body.Labels as Record<string, string>));
      if (!same)
        throw new Error(
          `docker mocks: container ${name} exists with another image or labels; the provider would replace it (not emulated)`,
        );
      id = c.Id;
      op = "same";
      this.created.push({ provider: p, name });
    } else {
      const created = await this.api(
        p,
        "POST",
        `/containers/create?name=${encodeURIComponent(name)}`,
        body,
      );
      if (created.status !== 201)
        throw new Error(`docker mocks: create ${name}: HTTP ${created.status}: ${created.body}`);
      id = (JSON.parse(created.body) as { Id: string }).Id;
      this.created.push({ provider: p, name });
      const start = await this.api(p, "POST", `/containers/${id}/start`);
      if (start.status !== 204)
        throw new Error(`docker mocks: start ${name}: HTTP ${start.status}: ${start.body}`);
      op = "create";
    }
    if (i.wait) {
      const deadline = Date.now() + (i.waitTimeout ?? 60) * 1000;
      for (;;) {
        const st = await this.api(p, "GET", `/containers/${id}/json`);
        const health = (
          JSON.parse(st.body) as {
            State: { Health?: { Status: string; Log?: { Output: string }[] } };
          }
        ).State.Health;
        if (health?.Status === "healthy") break;
        if (Date.now() > deadline) {
          throw new Error(
            `docker mocks: container ${name} not healthy after ${i.waitTimeout ?? 60} s (${health?.Status}): ${health?.Log?.slice(-1)[0]?.Output ?? ""}`,
          );
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    this.containerOps.push({
      name,
      op,
      target: `${p.address}:${p.port}`,
      durationMs: Date.now() - started,
      id,
    });
    return { id, state: { ...args.inputs, name } };
  }

  /** Removes every container this program manages (created or found the same), newest first (force; volumes kept). */
  async deleteContainers(): Promise<void> {
    for (const c of [...this.created].reverse()) {
      const started = Date.now();
      const r = await this.api(
        c.provider,
        "DELETE",
        `/containers/${encodeURIComponent(c.name)}?force=true&v=false`,
      );
      if (r.status !== 204 && r.status !== 404)
        throw new Error(`docker mocks: delete ${c.name}: HTTP ${r.status}: ${r.body}`);
      this.containerOps.push({
        name: c.name,
        op: "delete",
        target: `${c.provider.address}:${c.provider.port}`,
        durationMs: Date.now() - started,
        id: "",
      });
    }
  }
}

function sortObj(o: Record<string, string> | null | undefined): [string, string][] {
  return Object.entries(o ?? {}).sort(([a], [b]) => a.localeCompare(b));
}
