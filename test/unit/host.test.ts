/**
 * RegistryHost under pulumi mocks: the exact steps, their order, their
 * inputs (scripts, triggers, stdin, logging, secrets) and options; and the
 * synchronous validation of its arguments.
 */
import type * as pulumiType from "@pulumi/pulumi";
import type { RegistryHostArgs } from "../../infra/host";
import * as scripts from "../../infra/host/scripts";
import { remoteInvocation, sha256Hex } from "../../infra/remote/script";
import { containsSecret, RecordingMocks, valueOf } from "../support/mocks";

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE9m9e5p3Jq0Yv1Xq1c1n7rS0m7E0fM3M2cQm2vO2r8T";
const CA = "-----BEGIN CERTIFICATE-----\nQ0EgY2VydA==\n-----END CERTIFICATE-----\n";
const CHAIN = `-----BEGIN CERTIFICATE-----\nU2VydmVyIGNlcnQ=\n-----END CERTIFICATE-----\n${CA}`;
const SERVER_KEY =
  "-----BEGIN EC PRIVATE KEY-----\nU2VjcmV0S2V5TWF0ZXJpYWw=\n-----END EC PRIVATE KEY-----\n";
const SSH_KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nc3NoLWtleQ==\n-----END OPENSSH PRIVATE KEY-----\n";

function baseArgs(over: Partial<RegistryHostArgs> = {}): RegistryHostArgs {
  return {
    address: "10.50.6.62",
    hostKey: HOST_KEY,
    privateKey: SSH_KEY,
    hostname: "reg.casd.local",
    caCertPem: CA,
    fullChainPem: CHAIN,
    serverKeyPem: SERVER_KEY,
    ...over,
  };
}

interface Built {
  pulumi: typeof pulumiType;
  mocks: RecordingMocks;
  opts: Map<
    string,
    pulumiType.CustomResourceOptions & { parentName?: string; dependsOnNames: string[] }
  >;
  host: import("../../infra/host").RegistryHost;
}

async function build(args: RegistryHostArgs, name = "host"): Promise<Built> {
  jest.resetModules();
  const pulumi: typeof pulumiType = await import("@pulumi/pulumi");
  const mocks = new RecordingMocks((a) =>
    a.type === "command:remote:Command"
      ? { ...a.inputs, stdout: `casd: ${a.name}: changed`, stderr: "" }
      : undefined,
  );
  await pulumi.runtime.setMocks(mocks, "casd-registry", "test", false);
  const opts: Built["opts"] = new Map();
  const record: pulumiType.ResourceTransformation = (a) => {
    const o = a.opts as pulumiType.CustomResourceOptions;
    const deps = ([] as unknown[]).concat(o.dependsOn ?? []) as { __name?: string }[];
    opts.set(a.name, {
      ...o,
      parentName: (o.parent as unknown as { __name?: string })?.__name,
      dependsOnNames: deps.map((d) => d.__name ?? "?"),
    });
    return undefined;
  };
  const { RegistryHost } = await import("../../infra/host");
  const host = new RegistryHost(name, args, { transformations: [record] });
  await valueOf(pulumi, host.ready);
  return { pulumi, mocks, opts, host };
}

const JOURNAL = (step: string): string => `host-${step}`;

describe("RegistryHost (compose defaults)", () => {
  let b: Built;
  beforeAll(async () => {
    b = await build(baseArgs());
  });

  test("registers exactly the component and its six steps", () => {
    expect(b.mocks.resources.map((r) => `${r.type} ${r.name}`).sort()).toEqual(
      [
        "casd:host:RegistryHost host",
        "command:remote:Command host-ready",
        "command:remote:Command host-preflight",
        "command:remote:Command host-dirs",
        "command:remote:Command host-etc-hosts",
        "command:remote:Command host-ca-trust",
        "command:remote:Command host-tls",
      ].sort(),
    );
  });

  test("every step is a child of the component, ordered by dependsOn, deleted before it is replaced", () => {
    const deps = Object.fromEntries(
      ["ready", "preflight", "dirs", "etc-hosts", "tls", "ca-trust"].map((s) => {
        const o = b.opts.get(`host-${s}`)!;
        expect(o.parentName).toBe("host");
        expect(o.deleteBeforeReplace).toBe(true);
        return [s, o.dependsOnNames];
      }),
    );
    expect(deps).toEqual({
      ready: [],
      preflight: ["host-ready"],
      dirs: ["host-preflight"],
      "etc-hosts": ["host-preflight"],
      tls: ["host-dirs"],
      "ca-trust": ["host-preflight"],
    });
  });

  test("every connection pins the host key and carries the private key as a secret", () => {
    for (const r of b.mocks.ofType("command:remote:Command")) {
      expect(r.inputs.connection).toEqual({
        host: "10.50.6.62",
        port: 22,
        user: "root",
        hostKey: HOST_KEY,
        privateKey: SSH_KEY,
        dialErrorLimit: 10,
        perDialTimeout: 15,
      });
      expect(containsSecret(r.rawInputs.connection)).toBe(true);
      expect(r.inputs.addPreviousOutputInEnv).toBe(false);
    }
  });

  test("ready: the rendered poll, as the login user, no delete, trigger = its hash", () => {
    const r = b.mocks.byName("host-ready");
    const script = scripts.renderReadyScript({ sudo: false, attempts: 60, intervalSeconds: 5 });
    expect(r.inputs.create).toBe(remoteInvocation(script, { sudo: false }));
    expect(r.inputs.delete).toBeUndefined();
    expect(r.inputs.triggers).toEqual([sha256Hex(script)]);
  });

  test("preflight: read-only script, the operator's epoch on stdin, trigger independent of the time", () => {
    const r = b.mocks.byName("host-preflight");
    const script = scripts.renderPreflightScript({
      hostname: "reg.casd.local",
      address: "10.50.6.62",
      dataDir: "/data",
      minFreeGiB: 40,
      ports: [80, 443],
      requireDocker: true,
      registryContainers: ["harbor"],
      architectures: ["x86_64"],
      etcHosts: true,
      maxClockSkewSeconds: 120,
    });
    expect(r.inputs.create).toBe(remoteInvocation(script, { sudo: false }));
    expect(r.inputs.delete).toBeUndefined();
    expect(r.inputs.triggers).toEqual([sha256Hex(script)]);
    expect(r.inputs.stdin).toMatch(/^\d{10}\n$/);
    expect(Math.abs(Number(r.inputs.stdin) - Date.now() / 1000)).toBeLessThan(120);
  });

  test("dirs: journaled create, delete that keeps the data directory", () => {
    const r = b.mocks.byName("host-dirs");
    const a = {
      journal: JOURNAL("dirs"),
      dataDir: "/data",
      certDir: "/etc/casd-registry/tls",
      installDir: "/opt/casd-registry",
    };
    expect(r.inputs.create).toBe(remoteInvocation(scripts.renderDirsScript(a), { sudo: false }));
    expect(r.inputs.delete).toBe(
      remoteInvocation(scripts.renderDirsDeleteScript(a), { sudo: false }),
    );
    expect(r.inputs.triggers).toEqual([
      sha256Hex(scripts.renderDirsScript(a), scripts.renderDirsDeleteScript(a)),
    ]);
  });

  test("etc-hosts: marked line for the host's address; delete removes exactly it", () => {
    const r = b.mocks.byName("host-etc-hosts");
    const a = { hostname: "reg.casd.local", address: "10.50.6.62" };
    expect(r.inputs.create).toBe(
      remoteInvocation(scripts.renderEtcHostsScript(a), { sudo: false }),
    );
    expect(r.inputs.delete).toBe(
      remoteInvocation(scripts.renderEtcHostsDeleteScript(a), { sudo: false }),
    );
    expect(r.inputs.triggers).toEqual([
      sha256Hex(scripts.renderEtcHostsScript(a), scripts.renderEtcHostsDeleteScript(a)),
    ]);
  });

  test("tls: the key travels only on stdin, as a secret, never logged, outputs secret", () => {
    const r = b.mocks.byName("host-tls");
    const script = scripts.renderTlsScript({
      journal: JOURNAL("tls"),
      certDir: "/etc/casd-registry/tls",
      fullChainPem: CHAIN,
      caCertPem: CA,
    });
    const del = scripts.renderTlsDeleteScript({ journal: JOURNAL("tls") });
    expect(r.inputs.create).toBe(remoteInvocation(script, { sudo: false }));
    expect(r.inputs.delete).toBe(remoteInvocation(del, { sudo: false }));
    expect(r.inputs.stdin).toBe(SERVER_KEY);
    expect(containsSecret(r.rawInputs.stdin)).toBe(true);
    expect(r.inputs.logging).toBe("none");
    // The SDK adds "connection" itself; the step adds stdout and stderr.
    expect(b.opts.get("host-tls")!.additionalSecretOutputs).toEqual([
      "stdout",
      "stderr",
      "connection",
    ]);
    expect(r.inputs.triggers).toEqual([sha256Hex(script, del, sha256Hex(SERVER_KEY))]);
    expect(containsSecret(r.rawInputs.triggers)).toBe(true);
    const keyBody = "U2VjcmV0S2V5TWF0ZXJpYWw=";
    for (const other of b.mocks.ofType("command:remote:Command")) {
      expect(
        JSON.stringify([other.inputs.create, other.inputs.delete, other.inputs.triggers]),
      ).not.toContain(keyBody);
      expect(JSON.stringify([other.inputs.create])).not.toContain(
        Buffer.from(SERVER_KEY).toString("base64").slice(0, 24),
      );
    }
  });

  test("ca-trust: the CA into the OS store, refresh on delete", () => {
    const r = b.mocks.byName("host-ca-trust");
    const script = scripts.renderTrustScript({
      journal: JOURNAL("ca-trust"),
      hostname: "reg.casd.local",
      caCertPem: CA,
    });
    const del = scripts.renderTrustDeleteScript({
      journal: JOURNAL("ca-trust"),
      hostname: "reg.casd.local",
    });
    expect(r.inputs.create).toBe(remoteInvocation(script, { sudo: false }));
    expect(r.inputs.delete).toBe(remoteInvocation(del, { sudo: false }));
    expect(r.inputs.triggers).toEqual([sha256Hex(script, del)]);
    expect(r.inputs.logging).toBeUndefined();
  });

  test("outputs: paths, and ready once every step ran", async () => {
    const v = <T>(o: pulumiType.Output<T>): Promise<T> => valueOf(b.pulumi, o);
    expect(await v(b.host.ready)).toBe(true);
    expect(await b.pulumi.isSecret(b.host.ready)).toBe(false);
    expect(await v(b.host.certPath)).toBe("/etc/casd-registry/tls/fullchain.crt");
    expect(await v(b.host.keyPath)).toBe("/etc/casd-registry/tls/server.key");
    expect(await v(b.host.caPath)).toBe("/etc/casd-registry/tls/ca.crt");
    expect(await v(b.host.dataDir)).toBe("/data");
    expect(await v(b.host.installDir)).toBe("/opt/casd-registry");
    expect(await v(b.host.certDir)).toBe("/etc/casd-registry/tls");
    expect(b.host.steps.map((s) => (s as unknown as { __name: string }).__name)).toEqual([
      "host-ready",
      "host-preflight",
      "host-dirs",
      "host-etc-hosts",
      "host-tls",
      "host-ca-trust",
    ]);
  });
});

describe("RegistryHost variants", () => {
  test("a non-root user runs every changing step through sudo -n; readiness stays unprivileged and checks sudo", async () => {
    const b = await build(baseArgs({ user: "ops" }));
    expect(b.mocks.byName("host-ready").inputs.create).toBe(
      remoteInvocation(
        scripts.renderReadyScript({ sudo: true, attempts: 60, intervalSeconds: 5 }),
        { sudo: false },
      ),
    );
    for (const s of ["preflight", "dirs", "etc-hosts", "tls", "ca-trust"]) {
      expect(b.mocks.byName(`host-${s}`).inputs.create).toMatch(/^sudo -n bash -c '/);
    }
    for (const s of ["dirs", "etc-hosts", "tls", "ca-trust"]) {
      expect(b.mocks.byName(`host-${s}`).inputs.delete).toMatch(/^sudo -n bash -c '/);
    }
  });

  test("helm-like host: no etc-hosts step, no docker check, no clock on stdin when preflightEveryRun is false", async () => {
    const b = await build(
      baseArgs({ etcHosts: false, requireDocker: false, preflightEveryRun: false, ports: [443] }),
    );
    expect(
      b.mocks
        .ofType("command:remote:Command")
        .map((r) => r.name)
        .sort(),
    ).toEqual(["host-ca-trust", "host-dirs", "host-preflight", "host-ready", "host-tls"].sort());
    const pre = b.mocks.byName("host-preflight");
    expect(pre.inputs.stdin).toBeUndefined();
    expect(pre.inputs.create).not.toContain("Docker");
    expect(pre.inputs.create).not.toContain("compose version");
    expect(pre.inputs.create).not.toContain("operator_epoch");
  });

  test("etcHostsAddress and a bastion reach the scripts and the connection", async () => {
    const b = await build(
      baseArgs({
        etcHostsAddress: "10.50.6.99",
        bastion: { address: "10.50.6.1", hostKey: "ssh-ed25519 AAAABASTION" },
        dialErrorLimit: 3,
      }),
    );
    const r = b.mocks.byName("host-etc-hosts");
    expect(r.inputs.create).toBe(
      remoteInvocation(
        scripts.renderEtcHostsScript({ hostname: "reg.casd.local", address: "10.50.6.99" }),
        { sudo: false },
      ),
    );
    expect(r.inputs.connection.proxy).toEqual({
      host: "10.50.6.1",
      port: 22,
      user: "root",
      hostKey: "ssh-ed25519 AAAABASTION",
      privateKey: SSH_KEY,
      dialErrorLimit: 3,
      perDialTimeout: 15,
    });
  });
});

describe("RegistryHost validation", () => {
  test("every bad argument at once, before any resource is created", async () => {
    jest.resetModules();
    const pulumi: typeof pulumiType = await import("@pulumi/pulumi");
    const mocks = new RecordingMocks();
    await pulumi.runtime.setMocks(mocks, "casd-registry", "test", false);
    const { RegistryHost } = await import("../../infra/host");
    expect(
      () =>
        new RegistryHost(
          "host",
          baseArgs({
            hostname: "reg",
            dataDir: "data",
            certDir: "/data/tls",
            installDir: "/opt/casd-registry",
            minFreeGiB: -1,
            maxClockSkewSeconds: 0,
            ports: [443, 443, 70000],
            architectures: [],
            hostKey: "",
            etcHostsAddress: "not-an-ip",
          }),
        ),
    ).toThrow(
      [
        "RegistryHost host: 9 invalid arguments; nothing was created:",
        '  - hostname: "reg" is not a fully qualified DNS name; use a name such as reg.casd.local',
        "  - dataDir: \"data\" must be an absolute path of letters, digits, '.', '_', '-' and '/' without a trailing '/' (not / itself)",
        "  - minFreeGiB: -1 must be a whole number from 0 to 1048576 GiB",
        "  - maxClockSkewSeconds: 0 must be a whole number from 1 to 3600 seconds",
        "  - ports[2]: 70000 must be a whole number from 1 to 65535",
        "  - ports: [443,443,70000] lists a port twice",
        "  - architectures: [] is empty; list at least one (x86_64, aarch64)",
        "  - hostKey: \"\" is empty; pin the host's key ('<type> <base64>' from /etc/ssh/ssh_host_ed25519_key.pub)",
        '  - etcHostsAddress: "not-an-ip" is not an IP address',
      ].join("\n"),
    );
    expect(mocks.resources).toEqual([]);
  });

  test.each([
    [
      { certDir: "/data/tls" },
      '  - certDir: "/data/tls" is inside dataDir (/data); keep them apart',
    ],
    [
      { installDir: "/data" },
      '  - installDir: "/data" is the same directory as dataDir; give each its own',
    ],
    [
      { dataDir: "/opt/casd-registry/data" },
      '  - dataDir: "/opt/casd-registry/data" is inside installDir (/opt/casd-registry); keep them apart',
    ],
    [
      { dataDir: "/data/../etc" },
      "  - dataDir: \"/data/../etc\" must be an absolute path of letters, digits, '.', '_', '-' and '/' without a trailing '/' (not / itself)",
    ],
    [
      { registryContainers: ["harbor", "bad name"] },
      '  - registryContainers[1]: "bad name" is not a container or compose project name',
    ],
    [
      { readyTimeoutSeconds: 1 },
      "  - readyTimeoutSeconds: 1 must be a whole number from 5 to 3600 seconds",
    ],
  ])("%j", async (over, line) => {
    const { resolveHostArgs } = await import("../../infra/host");
    expect(() => resolveHostArgs("host", baseArgs(over))).toThrow(
      `RegistryHost host: 1 invalid argument; nothing was created:\n${line}`,
    );
  });

  test("a name unfit for a journal file is refused", async () => {
    const { resolveHostArgs } = await import("../../infra/host");
    expect(() => resolveHostArgs("a/b", baseArgs())).toThrow(
      `RegistryHost a/b: 1 invalid argument; nothing was created:\n  - name: "a/b" must be letters, digits, '.', '_' or '-' (it names the host's undo journals)`,
    );
  });
});

describe("RegistryHost during preview", () => {
  test("`ready` stays known when only the preflight re-runs (its outputs unknown), so the deploy rooms preview no change", async () => {
    jest.resetModules();
    const pulumi: typeof pulumiType = await import("@pulumi/pulumi");
    // Preview: the preflight will update (new clock on stdin), so the engine has no stdout for it yet;
    // every other step is unchanged and its stdout comes from state.
    const mocks = new RecordingMocks((a) =>
      a.type !== "command:remote:Command"
        ? undefined
        : a.name.endsWith("-preflight")
          ? { ...a.inputs }
          : { ...a.inputs, stdout: `casd: ${a.name}: unchanged`, stderr: "" },
    );
    await pulumi.runtime.setMocks(mocks, "casd-registry", "test", true);
    const { RegistryHost } = await import("../../infra/host");
    const host = new RegistryHost("host", baseArgs());
    const known = await new Promise<boolean>((resolve) =>
      (host.ready as unknown as { isKnown: Promise<boolean> }).isKnown.then(resolve),
    );
    expect(known).toBe(true);
    expect(await valueOf(pulumi, host.ready)).toBe(true);
  });
});
