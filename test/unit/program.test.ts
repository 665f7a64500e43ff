/**
 * The composition root (infra/index.ts) under mocks: which rooms each
 * deploy mode creates, how they are ordered, and what the stack exports.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { RecordingMocks, runProgram, ProgramRun, Registered } from "../support/mocks";
import { helmChartFixture } from "../support/helm-chart";
import { devStack, TEST_HOST_KEY } from "../support/stack";

jest.setTimeout(120_000);

const CLIENTS = [
  {
    name: "build-1",
    address: "10.50.6.71",
    hostKey: TEST_HOST_KEY,
    runtimes: ["docker", "containerd", "os"],
  },
  { name: "k8s-1", address: "10.50.6.72", hostKey: TEST_HOST_KEY, runtimes: ["containerd"] },
];

function archive(name: string): { path: string; sha256: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "casd-program-"));
  const file = path.join(dir, name);
  fs.writeFileSync(file, `stand-in ${name}\n`);
  return { path: file, sha256: createHash("sha256").update(fs.readFileSync(file)).digest("hex") };
}

/** Component resources (type casd:*) by type, names sorted. */
function components(run: ProgramRun): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const r of run.mocks.resources) {
    if (!r.type.startsWith("casd:")) continue;
    (out[r.type] ??= []).push(r.name);
  }
  for (const k of Object.keys(out)) out[k].sort();
  return out;
}

/**
 * What the remote steps print, as the program reads it: the Distribution
 * room parses the image id its load step reports.
 */
const IMAGE_ID = `sha256:${"ab".repeat(32)}`;
function stepOutputs(): RecordingMocks {
  return new RecordingMocks((args, inputs) => {
    if (args.type !== "command:remote:Command") return undefined;
    const stdout = args.name.endsWith("-load")
      ? `casd: load: image ${IMAGE_ID}\ncasd: load: changed`
      : `casd: ${args.name}: unchanged`;
    return { ...inputs, stdout, stderr: "" };
  });
}

/** Where a resource stands in the order the mocks saw registrations. */
const position = (run: ProgramRun, name: string) => {
  const i = run.mocks.resources.findIndex((r) => r.name === name && !r.type.startsWith("casd:"));
  if (i < 0) throw new Error(`no resource ${name}`);
  return i;
};

const count = (run: ProgramRun, type: string) =>
  run.mocks.resources.filter((r: Registered) => r.type === type).length;

describe("the composition root", () => {
  it("compose (the dev stack): PKI, registry host, Harbor from the installer, one trust per node", async () => {
    const { config, secrets } = devStack();
    config.clients = CLIENTS;
    const run = await runProgram(config, { secrets });
    expect(components(run)).toEqual({
      "casd:pki:RegistryPki": ["registry"],
      "casd:host:RegistryHost": ["registry-host"],
      "casd:harbor:HarborCompose": ["harbor"],
      "casd:trust:ClientTrust": ["trust-build-1", "trust-k8s-1"],
    });
    expect(count(run, "kubernetes:helm.sh/v3:Release")).toBe(0);
    expect(count(run, "docker:index/container:Container")).toBe(0);
    expect(run.exports.hostname).toBe("reg.casd.local");
    expect(run.exports.deployMode).toBe("compose");
    expect(run.exports.endpoint).toBe("https://reg.casd.local");
    expect(run.exports.trustedNodes).toEqual(["build-1: reg.casd.local", "k8s-1: reg.casd.local"]);
    expect(run.exports.mirrorEndpoint).toBe("none");
    // Every client's verification waits for Harbor's health step.
    // (the SDK registers a resource only after every resource its inputs come from)
    expect(position(run, "trust-build-1-verify")).toBeGreaterThan(position(run, "harbor-health"));
    expect(position(run, "trust-k8s-1-verify")).toBeGreaterThan(position(run, "harbor-health"));
    expect(JSON.stringify(run.exports)).not.toContain("PRIVATE KEY");
  });

  it("helm: no registry host and no compose resource; trust waits for the release", async () => {
    const { config, secrets } = devStack();
    const chart = helmChartFixture();
    config.deploy = "helm";
    config.helm = {
      chartPath: chart.path,
      chartSha256: chart.sha256,
      kubeContext: "casd",
      mirrorRegistry: "mirror.casd.local:5000",
    };
    config.clients = [CLIENTS[1]];
    const run = await runProgram(config, {
      secrets: { ...secrets, harborInternalSeed: "seed-for-program-tests-0123456789abcdef" },
    });
    expect(components(run)).toEqual({
      "casd:pki:RegistryPki": ["registry"],
      "casd:harbor:HarborHelm": ["harbor"],
      "casd:trust:ClientTrust": ["trust-k8s-1"],
    });
    expect(run.mocks.resources.filter((r) => r.type.startsWith("command:"))).toHaveLength(2); // the node's install and verify
    expect(count(run, "kubernetes:helm.sh/v3:Release")).toBe(1);
    expect(run.exports.endpoint).toBe("https://reg.casd.local");
    expect(position(run, "trust-k8s-1-verify")).toBeGreaterThan(position(run, "harbor-release"));
    expect(run.mocks.resources[position(run, "harbor-release")].type).toBe(
      "kubernetes:helm.sh/v3:Release",
    );
  });

  it("helm with the bootstrap mirror: the host runs the mirror, Harbor waits for it, nodes trust both", async () => {
    const { config, secrets } = devStack();
    const chart = helmChartFixture();
    const image = archive("registry-2.8.3.tar");
    const images = archive("harbor.v2.15.1.tar.gz");
    config.deploy = "helm";
    config.pki = {
      ...(config.pki as object),
      server: { ...(config.pki as any).server, extraDnsNames: ["mirror.casd.local"] },
    };
    config.helm = {
      chartPath: chart.path,
      chartSha256: chart.sha256,
      kubeContext: "casd",
      mirrorRegistry: "mirror.casd.local:5443",
    };
    config.distribution = {
      imageArchivePath: image.path,
      imageArchiveSha256: image.sha256,
      mirror: {
        enabled: true,
        hostname: "mirror.casd.local",
        harborImagesArchivePath: images.path,
        harborImagesArchiveSha256: images.sha256,
      },
    };
    config.clients = [CLIENTS[1]];
    const run = await runProgram(config, {
      secrets: {
        ...secrets,
        harborInternalSeed: "seed-for-program-tests-0123456789abcdef",
        distributionPassword: "Distr1butionPassw0rd",
      },
      mocks: stepOutputs(),
    });
    expect(components(run)).toEqual({
      "casd:pki:RegistryPki": ["registry"],
      "casd:host:RegistryHost": ["registry-host"],
      "casd:distribution:DistributionRegistry": ["mirror"],
      "casd:harbor:HarborHelm": ["harbor"],
      "casd:trust:ClientTrust": ["trust-k8s-1", "trust-mirror-k8s-1"],
    });
    const harborOpts = run.options.find(
      (o) => o.name === "harbor" && o.type === "casd:harbor:HarborHelm",
    )!;
    expect((harborOpts.dependsOn as { __name?: string }[]).map((d) => d.__name)).toEqual([
      "mirror",
    ]);
    const mirrorTrust = run.options.find((o) => o.name === "trust-mirror-k8s-1")!;
    expect((mirrorTrust.dependsOn as { __name?: string }[]).map((d) => d.__name)).toEqual([
      "trust-k8s-1",
    ]);
    expect(run.exports.trustedNodes).toEqual(["k8s-1: reg.casd.local, mirror.casd.local:5443"]);
    expect(run.exports.mirrorEndpoint).toBe("mirror.casd.local:5443");
  });

  it("distribution: the registry host and a Distribution registry, trusted on its port", async () => {
    const { config, secrets } = devStack();
    const image = archive("registry-2.8.3.tar");
    config.deploy = "distribution";
    config.distribution = { imageArchivePath: image.path, imageArchiveSha256: image.sha256 };
    config.clients = [CLIENTS[0]];
    const run = await runProgram(config, {
      secrets: { ...secrets, distributionPassword: "Distr1butionPassw0rd" },
      mocks: stepOutputs(),
    });
    expect(components(run)).toEqual({
      "casd:pki:RegistryPki": ["registry"],
      "casd:host:RegistryHost": ["registry-host"],
      "casd:distribution:DistributionRegistry": ["registry"],
      "casd:trust:ClientTrust": ["trust-build-1"],
    });
    expect(count(run, "docker:index/container:Container")).toBe(1);
    expect(run.exports.endpoint).toBe("https://reg.casd.local:5000");
    expect(run.exports.trustedNodes).toEqual(["build-1: reg.casd.local:5000"]);
  });

  it("a bad config fails before any resource is registered", async () => {
    const { config, secrets } = devStack();
    config.deploy = "kubernetes";
    jest.resetModules();
    const pulumi = await import("@pulumi/pulumi");
    const mocks = new RecordingMocks();
    const all: Record<string, string> = {};
    for (const [k, v] of Object.entries(config))
      all[`casd-registry:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
    for (const [k, v] of Object.entries(secrets)) all[`casd-registry:${k}`] = v;
    pulumi.runtime.setAllConfig(
      all,
      Object.keys(secrets).map((k) => `casd-registry:${k}`),
    );
    await pulumi.runtime.setMocks(mocks, "casd-registry", "bad", false);
    await expect(import("../../infra")).rejects.toThrow(
      'casd-registry:deploy = "kubernetes": is not one of compose, helm, distribution. Fix: set deploy to one of compose, helm, distribution.',
    );
    expect(mocks.resources).toEqual([]);
  });
});
