/**
 * The pack against the real program (infra/) under mocks, as the engine would
 * run it at `pulumi up --policy-pack policies`: every registration is
 * captured at the mock monitor with its options and dependencies, inputs and
 * outputs are deserialized the way CrossGuard does, then every policy runs.
 * The dev stack passes with zero violations; configs the program accepts but
 * the pack refuses yield exactly the expected violations.
 */
import * as path from "node:path";
import type * as pulumiType from "@pulumi/pulumi";
import * as policyDeserialize from "@pulumi/policy/deserialize";
import { policies } from "../../policies/catalog";
import { PROJECT, RecordingMocks, REPO_ROOT } from "../support/mocks";
import { devStack, TEST_HOST_KEY } from "../support/stack";
import { helmChartFixture } from "../support/helm-chart";
import { CapturedResource, options, runPack, Violation } from "./support";

jest.setTimeout(120_000);

const { deserializeProperties } = policyDeserialize as unknown as {
  deserializeProperties(struct: unknown, proxySecrets: boolean): Record<string, unknown>;
};

interface Req {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getProtect(): boolean | undefined;
  getObject(): unknown;
  getDependenciesList(): string[];
  getAdditionalsecretoutputsList(): string[];
  getPropertydependenciesMap(): {
    forEach(cb: (v: { getUrnsList(): string[] }, k: string) => void): void;
  };
}
interface Res {
  getUrn(): string;
  getObject(): unknown;
}
type Callback = (err: unknown, res?: Res) => void;

/** Runs infra/ under mocks with `config` and returns every resource it registered. */
async function capture(
  config: Record<string, unknown>,
  secrets: Record<string, string>,
): Promise<CapturedResource[]> {
  jest.resetModules();
  const pulumi: typeof pulumiType = await import("@pulumi/pulumi");
  const all: Record<string, string> = {};
  for (const [k, v] of Object.entries(config))
    all[`${PROJECT}:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
  for (const [k, v] of Object.entries(secrets)) all[`${PROJECT}:${k}`] = v;
  pulumi.runtime.setAllConfig(
    all,
    Object.keys(secrets).map((k) => `${PROJECT}:${k}`),
  );
  await pulumi.runtime.setMocks(new RecordingMocks(), PROJECT, "dev", false);

  const captured: CapturedResource[] = [];
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResource(req: Req, cb: Callback): void;
  };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) =>
    register(req, (err, res) => {
      if (!err && res) {
        const propertyDependencies: Record<string, string[]> = {};
        req
          .getPropertydependenciesMap()
          .forEach((v, k) => (propertyDependencies[k] = v.getUrnsList()));
        captured.push({
          type: req.getType(),
          name: req.getName(),
          urn: res.getUrn(),
          custom: req.getCustom(),
          inputs: deserializeProperties(req.getObject(), false),
          outputs: deserializeProperties(res.getObject(), false),
          opts: options({
            protect: req.getProtect() ?? false,
            additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
            parent: req.getParent() || undefined,
          }),
          parent: req.getParent() || undefined,
          dependencies: req.getDependenciesList(),
          propertyDependencies,
        });
      }
      cb(err, res);
    });

  await pulumi.runtime.runInPulumiStack(
    async () => (await import(path.join(REPO_ROOT, "infra"))) as Record<string, unknown>,
  );
  await (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs();
  return captured;
}

async function violations(
  mutate?: (config: Record<string, any>) => void,
): Promise<{ found: Violation[]; resources: CapturedResource[] }> {
  const { config, secrets } = devStack();
  mutate?.(config);
  const resources = await capture(config, secrets);
  return { found: await runPack(policies, resources), resources };
}

const urn = (resources: CapturedResource[], name: string) =>
  resources.find((r) => r.name === name)!.urn;

describe("the pack on the real program", () => {
  it("passes the dev stack with zero violations", async () => {
    const { found, resources } = await violations();
    // The capture saw the program: the PKI at least, with its options and dependencies.
    expect(resources.map((r) => r.type)).toEqual(
      expect.arrayContaining([
        "pulumi:pulumi:Stack",
        "casd:pki:RegistryPki",
        "tls:index/locallySignedCert:LocallySignedCert",
      ]),
    );
    const caKey = resources.find((r) => r.name === "registry-ca-key")!;
    expect(caKey.opts.protect).toBe(true);
    expect(
      resources.find((r) => r.name === "registry-ca-cert")!.propertyDependencies.privateKeyPem,
    ).toEqual([caKey.urn]);
    expect(found).toEqual([]);
  });

  it("passes the dev stack with every room on the compose path: host, Harbor, two trusted nodes", async () => {
    const { found, resources } = await violations((c) => {
      c.clients = [
        {
          name: "build-1",
          address: "10.50.6.71",
          hostKey: TEST_HOST_KEY,
          runtimes: ["docker", "containerd", "os"],
        },
        {
          name: "k8s-1",
          address: "10.50.6.72",
          hostKey: TEST_HOST_KEY,
          runtimes: ["containerd", "podman", "k3s"],
          push: true,
        },
      ];
    });
    const types = new Set(resources.map((r) => r.type));
    for (const t of [
      "casd:host:RegistryHost",
      "casd:harbor:HarborCompose",
      "casd:trust:ClientTrust",
      "command:remote:Command",
      "command:remote:CopyToRemote",
    ]) {
      expect(types).toContain(t);
    }
    expect(
      resources
        .filter((r) => r.type === "casd:trust:ClientTrust")
        .map((r) => r.name)
        .sort(),
    ).toEqual(["trust-build-1", "trust-k8s-1"]);
    expect(found).toEqual([]);
  });

  it("passes the helm path (mirror registry allowed in the pack's config)", async () => {
    const { config, secrets } = devStack();
    const chart = helmChartFixture();
    config.deploy = "helm";
    config.helm = {
      chartPath: chart.path,
      chartSha256: chart.sha256,
      kubeContext: "casd",
      mirrorRegistry: "mirror.casd.local:5000",
    };
    config.clients = [
      { name: "k8s-1", address: "10.50.6.72", hostKey: TEST_HOST_KEY, runtimes: ["containerd"] },
    ];
    const resources = await capture(config, {
      ...secrets,
      harborInternalSeed: "s".repeat(16) + "EED-for-tests-0123456789",
    });
    const types = new Set(resources.map((r) => r.type));
    expect(types).toContain("kubernetes:helm.sh/v3:Release");
    expect(types).not.toContain("casd:harbor:HarborCompose");
    expect(
      await runPack(policies, resources, {
        "container-image-allowed-registry": { allowedRegistries: ["mirror.casd.local:5000"] },
      }),
    ).toEqual([
      // Only the advisory digest notes on the tag-pinned node-trust image (its two containers).
      {
        policy: "container-image-digest-pinned",
        level: "advisory",
        urn: urn(resources, "harbor-node-trust"),
        message:
          "spec.template.spec.initContainers[0].image is mirror.casd.local:5000/casd/node-trust:1.0.0: pin it by digest (@sha256:...).",
      },
      {
        policy: "container-image-digest-pinned",
        level: "advisory",
        urn: urn(resources, "harbor-node-trust"),
        message:
          "spec.template.spec.containers[0].image is mirror.casd.local:5000/casd/node-trust:1.0.0: pin it by digest (@sha256:...).",
      },
    ]);
  });

  it("refuses an unprotected CA key", async () => {
    const { found, resources } = await violations((c) => (c.pki.ca.protect = false));
    expect(found).toEqual([
      {
        policy: "tls-ca-key-protected",
        level: "mandatory",
        urn: urn(resources, "registry-ca-key"),
        message:
          "CA key registry-ca-key is not protected; set protect: true on it (it signs the certificate every client trusts).",
      },
    ]);
  });

  it("refuses an early renewal outside a quarter to a half of the validity", async () => {
    const { found, resources } = await violations((c) => (c.pki.server.earlyRenewalHours = 720));
    expect(found).toEqual([
      {
        policy: "tls-server-cert-validity",
        level: "mandatory",
        urn: urn(resources, "registry-server-cert"),
        message:
          "earlyRenewalHours is 720; set it between 1200 and 2400 hours (a quarter to a half of validityPeriodHours 4800).",
      },
    ]);
  });

  it("refuses a server certificate under a cap lowered by the pack's config", async () => {
    const { config, secrets } = devStack();
    const resources = await capture(config, secrets);
    expect(
      await runPack(policies, resources, {
        "tls-server-cert-validity": { maxServerValidityDays: 90 },
      }),
    ).toEqual([
      {
        policy: "tls-server-cert-validity",
        level: "mandatory",
        urn: urn(resources, "registry-server-cert"),
        message:
          "validityPeriodHours is 4800; a server certificate may be valid at most 90 days (2160 hours).",
      },
    ]);
  });
});
