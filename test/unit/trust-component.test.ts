/**
 * ClientTrust under mocks: exact children (type, name, parent), the
 * connection with its pinned host key and secret key, the CA on stdin, the
 * create/update/delete scripts, triggers, the verification's ordering after
 * the install and the registry's readiness, rotation inputs, and validation
 * before anything is created.
 */
import type * as pulumiType from "@pulumi/pulumi";
import type { ClientConfig } from "../../infra/config";
import { containsSecret, RecordingMocks, unwrap } from "../support/mocks";
import { benchClient, BENCH_HOST_KEY } from "../bench/trust-program";

const CA = "-----BEGIN CERTIFICATE-----\nMIIBnew\n-----END CERTIFICATE-----\n";
const OLD = "-----BEGIN CERTIFICATE-----\nMIIBold\n-----END CERTIFICATE-----\n";
const FP = "a".repeat(64);

interface Run {
  pulumi: typeof pulumiType;
  mocks: RecordingMocks;
  /** dependsOn (as resource names) of every registered resource, from a stack transformation. */
  deps: Map<string, string[]>;
  parents: Map<string, string | undefined>;
  order: string[];
  trust: typeof import("../../infra/trust");
  value<T>(o: pulumiType.Input<T>): Promise<T>;
  /** Runs body inside the root stack, recording dependsOn and parents. */
  inStack(body: () => Promise<void>): Promise<unknown>;
}

async function underMocks(): Promise<Run> {
  jest.resetModules();
  const pulumi: typeof pulumiType = await import("@pulumi/pulumi");
  const order: string[] = [];
  const mocks = new RecordingMocks((args) => {
    order.push(args.name);
    if (args.type === "command:remote:Command")
      return { ...args.inputs, stdout: `ran ${args.name}`, stderr: "" };
    return undefined;
  });
  await pulumi.runtime.setMocks(mocks, "casd-registry", "unit", false);
  const deps = new Map<string, string[]>();
  const parents = new Map<string, string | undefined>();
  const trust = await import("../../infra/trust");
  const value = <T>(o: pulumiType.Input<T>) =>
    new Promise<T>((resolve) => pulumi.output(o).apply((v) => resolve(v as T)));
  const inStack = (body: () => Promise<void>) =>
    pulumi.runtime.runInPulumiStack(async () => {
      pulumi.runtime.registerStackTransformation((a) => {
        const d = a.opts.dependsOn;
        const list = (Array.isArray(d) ? d : d ? [d] : []) as unknown as { __name?: string }[];
        deps.set(
          a.name,
          list.map((x) => x.__name ?? "?"),
        );
        parents.set(a.name, (a.opts.parent as unknown as { __name?: string } | undefined)?.__name);
        return undefined;
      });
      await body();
    });
  return { pulumi, mocks, deps, parents, order, trust, value, inStack };
}

function client(over: Partial<ClientConfig> = {}): ClientConfig {
  return {
    ...benchClient(1, ["docker", "containerd", "os"]),
    etcHostsAddress: "10.50.6.62",
    ...over,
  };
}

/** The script inside a `[sudo -n ]bash -c '<script>'` command line. */
function unquote(cmd: string): string {
  const m = /^(?:sudo -n )?bash -c '([\s\S]*)'$/.exec(cmd);
  if (!m) throw new Error(`not a bash -c command: ${cmd.slice(0, 60)}`);
  return m[1].split(`'"'"'`).join("'");
}

/** Resources the program registered (the root stack left out). */
function registered(r: Run): string[] {
  return r.mocks.resources
    .filter((x) => x.type !== "pulumi:pulumi:Stack")
    .map((x) => `${x.type} ${x.name}`);
}

async function settle(r: Run, outs: pulumiType.Output<unknown>[]): Promise<void> {
  for (const o of outs) await r.value(o);
}

describe("ClientTrust", () => {
  it("registers the component, one install and one verify command, named from the component", async () => {
    const r = await underMocks();
    await r.inStack(async () => {
      const t = new r.trust.ClientTrust("trust-a", {
        client: client(),
        privateKey: "KEY",
        hostname: "reg.casd.local",
        port: 5443,
        caCertPem: CA,
        caFingerprintSha256: FP,
      });
      await settle(r, [t.installStdout, t.verifyStdout]);
    });
    expect(registered(r)).toEqual([
      "casd:trust:ClientTrust trust-a",
      "command:remote:Command trust-a-install",
      "command:remote:Command trust-a-verify",
    ]);
    expect(r.parents.get("trust-a-install")).toBe("trust-a");
    expect(r.parents.get("trust-a-verify")).toBe("trust-a");
    expect(r.deps.get("trust-a-verify")).toEqual(["trust-a-install"]);
  });

  it("install: pinned connection, secret key, CA on stdin, create = update, manifest-driven delete, triggers", async () => {
    const r = await underMocks();
    let outs: Record<string, unknown> = {};
    await r.inStack(async () => {
      const t = new r.trust.ClientTrust("trust-a", {
        client: client(),
        privateKey: "KEY",
        hostname: "reg.casd.local",
        port: 5443,
        caCertPem: CA,
        caFingerprintSha256: FP,
      });
      outs = {
        auth: await r.value(t.authority),
        manifest: await r.value(t.manifestPath),
        install: await r.value(t.installStdout),
      };
    });
    const install = r.mocks.byName("trust-a-install");
    expect(install.inputs.connection).toEqual({
      host: "10.60.0.2",
      port: 22,
      user: "root",
      hostKey: BENCH_HOST_KEY,
      privateKey: "KEY",
      dialErrorLimit: 10,
      perDialTimeout: 15,
    });
    expect(containsSecret(install.rawInputs.connection)).toBe(true);
    expect(install.inputs.stdin).toBe(CA);
    expect(install.inputs.create).toBe(install.inputs.update);
    expect(
      install.inputs.create.startsWith(
        "bash -c '#!/usr/bin/env bash\n# casd-registry step: trust reg.casd.local:5443\n",
      ),
    ).toBe(true);
    expect(install.inputs.create).not.toContain("MIIBnew");
    expect(
      install.inputs.delete.startsWith(
        "bash -c '#!/usr/bin/env bash\n# casd-registry step: untrust reg.casd.local:5443\n",
      ),
    ).toBe(true);
    expect(install.inputs.delete).toContain("belongs to another generation now: nothing removed");
    expect(install.inputs.addPreviousOutputInEnv).toBe(false);
    expect(install.inputs.triggers).toHaveLength(2);
    expect(install.inputs.triggers[0]).toBe(FP);
    expect(install.inputs.triggers[1]).toMatch(/^[0-9a-f]{64}$/);
    // The generation recorded on the node is the same in the install and in its delete.
    const gen = /CASD_GEN='([0-9a-f]{32})'/.exec(unquote(install.inputs.create))?.[1];
    expect(gen).toMatch(/^[0-9a-f]{32}$/);
    expect(unquote(install.inputs.delete)).toContain(`CASD_GEN='${gen}'`);
    expect(unquote(install.inputs.create)).toContain("CASD_PIN_ADDR='10.50.6.62'");
    expect(outs).toEqual({
      auth: "reg.casd.local:5443",
      manifest: "/var/lib/casd-registry/trust/reg.casd.local:5443.manifest",
      install: "ran trust-a-install",
    });
  });

  it("verify: same connection, checks each runtime's file, waits for the registry's readiness", async () => {
    const r = await underMocks();
    await r.inStack(async () => {
      class Health extends r.pulumi.CustomResource {
        constructor(n: string) {
          super("test:index:Health", n, { healthy: true });
        }
      }
      const ready = new Health("registry-health");
      const t = new r.trust.ClientTrust("trust-a", {
        client: client(),
        privateKey: "KEY",
        hostname: "reg.casd.local",
        caCertPem: CA,
        caFingerprintSha256: FP,
        registryReady: ready.urn,
      });
      await settle(r, [t.verifyStdout]);
    });
    const verify = r.mocks.byName("trust-a-verify");
    expect(verify.inputs.connection).toEqual(r.mocks.byName("trust-a-install").inputs.connection);
    expect(unquote(verify.inputs.create)).toContain("CASD_URL='https://reg.casd.local/v2/'");
    expect(unquote(verify.inputs.create)).toContain(
      "casd_verify '/etc/docker/certs.d/reg.casd.local/ca.crt'\ncasd_verify '/etc/containerd/certs.d/reg.casd.local/ca.crt'\ncasd_verify os\n",
    );
    expect(verify.inputs.stdin).toBeUndefined();
    expect(verify.inputs.delete).toBeUndefined();
    expect(verify.inputs.triggers).toHaveLength(3);
    expect(verify.inputs.triggers[0]).toBe(FP);
    expect(verify.inputs.triggers[1]).toBe(r.mocks.byName("trust-a-install").inputs.triggers[1]);
    // Ordering: the verify's registration came after the health resource's and the install's.
    expect(r.order.indexOf("trust-a-verify")).toBeGreaterThan(r.order.indexOf("registry-health"));
    expect(r.order.indexOf("trust-a-verify")).toBeGreaterThan(r.order.indexOf("trust-a-install"));
  });

  it("verify: false registers no verification", async () => {
    const r = await underMocks();
    await r.inStack(async () => {
      const t = new r.trust.ClientTrust("trust-a", {
        client: client(),
        privateKey: "KEY",
        hostname: "reg.casd.local",
        caCertPem: CA,
        caFingerprintSha256: FP,
        verify: false,
      });
      expect(await r.value(t.verifyStdout)).toBe("");
      await settle(r, [t.installStdout]);
    });
    expect(registered(r)).toEqual([
      "casd:trust:ClientTrust trust-a",
      "command:remote:Command trust-a-install",
    ]);
  });

  it("rotation: a new CA changes stdin, the trigger and the generation; an overlap sends both CAs", async () => {
    const scripts: Record<string, { create: string; stdin: string; triggers: unknown[] }> = {};
    const r = await underMocks();
    await r.inStack(async () => {
      for (const [label, ca, fp, prev] of [
        ["v1", OLD, "b".repeat(64), undefined],
        ["v2", CA, FP, OLD],
      ] as const) {
        const t = new r.trust.ClientTrust(`trust-${label}`, {
          client: client(),
          privateKey: "KEY",
          hostname: "reg.casd.local",
          caCertPem: ca,
          caFingerprintSha256: fp,
          previousCaCertPem: prev,
        });
        await settle(r, [t.installStdout]);
      }
    });
    for (const label of ["v1", "v2"])
      scripts[label] = unwrap(r.mocks.byName(`trust-${label}-install`).inputs) as {
        create: string;
        stdin: string;
        triggers: unknown[];
      };
    expect(scripts.v2.stdin).toBe(`${CA}# casd-registry: previous CA\n${OLD}`);
    expect(scripts.v1.triggers[0]).toBe("b".repeat(64));
    expect(scripts.v2.triggers[0]).toBe(FP);
    expect(scripts.v1.triggers[1]).not.toBe(scripts.v2.triggers[1]);
    const gen = (s: string) => /CASD_GEN='([0-9a-f]+)'/.exec(unquote(s))?.[1];
    expect(gen(scripts.v1.create)).toMatch(/^[0-9a-f]{32}$/);
    expect(gen(scripts.v1.create)).not.toBe(gen(scripts.v2.create));
    // Only the generation differs between the two install scripts: the CA never enters the script.
    expect(unquote(scripts.v1.create).replace(/CASD_GEN='[0-9a-f]+'/, "")).toBe(
      unquote(scripts.v2.create).replace(/CASD_GEN='[0-9a-f]+'/, ""),
    );
  });

  it("sudo users run the scripts through sudo -n", async () => {
    const r = await underMocks();
    await r.inStack(async () => {
      const t = new r.trust.ClientTrust("trust-a", {
        client: client({ user: "ops", sudo: true }),
        privateKey: "KEY",
        hostname: "reg.casd.local",
        caCertPem: CA,
        caFingerprintSha256: FP,
      });
      await settle(r, [t.installStdout, t.verifyStdout]);
    });
    for (const name of ["trust-a-install", "trust-a-verify"])
      expect(r.mocks.byName(name).inputs.create.startsWith("sudo -n bash -c '")).toBe(true);
    expect(r.mocks.byName("trust-a-install").inputs.delete.startsWith("sudo -n bash -c '")).toBe(
      true,
    );
  });

  it("nodes are independent: N clients give 2N commands and no dependency between nodes", async () => {
    const r = await underMocks();
    const { trustFleet } = await import("../bench/trust-program");
    await r.inStack(async () => {
      const fleet = trustFleet({
        clients: [0, 1, 2].map((i) => benchClient(i)),
        caCertPem: CA,
        caFingerprintSha256: FP,
      });
      await settle(
        r,
        fleet.flatMap((t) => [t.installStdout, t.verifyStdout]),
      );
    });
    expect(r.mocks.ofType("command:remote:Command")).toHaveLength(6);
    for (const i of [0, 1, 2]) {
      expect(r.deps.get(`trust-node-${i}-install`)).toEqual([]);
      expect(r.deps.get(`trust-node-${i}-verify`)).toEqual([`trust-node-${i}-install`]);
    }
  });

  it("bad arguments fail with every problem before anything is created", async () => {
    const r = await underMocks();
    let error: unknown;
    await r.inStack(async () => {
      try {
        new r.trust.ClientTrust("trust-bad", {
          client: client({ runtimes: [], hostKey: "", etcHostsAddress: "x" }),
          privateKey: "KEY",
          hostname: "registry",
          port: 0,
          caCertPem: CA,
          caFingerprintSha256: FP,
        });
      } catch (e) {
        error = e;
      }
    });
    expect(r.pulumi.InputPropertiesError.isInstance(error)).toBe(true);
    const e = error as pulumiType.InputPropertiesError;
    expect(e.message).toBe("ClientTrust trust-bad: invalid arguments; nothing was created");
    expect(e.errors).toEqual([
      {
        propertyPath: "client",
        reason:
          'client node-1: hostname "registry" is not a fully qualified DNS name; use the registry\'s name, e.g. reg.casd.local',
      },
      {
        propertyPath: "client",
        reason: "client node-1: port 0 is not a TCP port; use 1 to 65535 (443 for the default)",
      },
      {
        propertyPath: "client",
        reason:
          "client node-1: runtimes is empty: the node would trust nothing; list docker, containerd, podman, os, k3s or rke2",
      },
      {
        propertyPath: "client",
        reason:
          'client node-1: etcHostsAddress "x" is not an IP address; set the registry\'s address or leave it unset',
      },
      {
        propertyPath: "client.hostKey",
        reason:
          "client node-1: hostKey is empty; pin the node's SSH host key (ssh-keyscan -t ed25519 10.60.0.2)",
      },
    ]);
    expect(registered(r)).toEqual([]);
  });
});
