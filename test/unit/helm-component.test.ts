/**
 * HarborHelm under mocks: exact children (types, names, counts), the Release
 * of the verified local chart with exact values, secrets kept secret end to
 * end, no chart default secret anywhere, the namespace kept on destroy, the
 * node-trust DaemonSet fed by the trust renderers, plan-time validation that
 * creates nothing, and a second run that renders identically.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type * as pulumiType from "@pulumi/pulumi";
import type { StackConfig } from "../../infra/config";
import { containsSecret, RecordingMocks, type Registered } from "../support/mocks";

const REFERENCE = path.resolve(
  __dirname,
  "../../../shared/reference/harbor-helm-1.19.1.values.yaml",
);
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE8vC4gnyCIIXNA9qd1G7mKX8r1ebwNZV+5ZLuhKIKQJ";
const SEED = "component-test-seed-0123456789-abcdefghijklmn";
const ADMIN = "Adm1nPassw0rdForTests";
const DB = "Db1PasswordForTests9";
const KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: []\n";
const CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBcaTestOnly\n-----END CERTIFICATE-----\n";
const CHAIN_PEM =
  "-----BEGIN CERTIFICATE-----\nMIIBleafTestOnly\n-----END CERTIFICATE-----\n" + CA_PEM;
const KEY_PEM =
  "-----BEGIN EC PRIVATE KEY-----\nMHcserverKeyTestOnly\n-----END EC PRIVATE KEY-----\n";
const FINGERPRINT = "f".repeat(64);

jest.setTimeout(60_000);

let tmp: string;
/** The mocks of the latest run (also when construction threw). */
let lastMocks: RecordingMocks | undefined;
let chartPath: string;
let chartSha: string;

/** A chart archive like the bundle's: harbor/Chart.yaml and harbor/values.yaml (the reference 1.19.1 values). */
function makeChart(
  dir: string,
  opts: { version?: string; values?: string } = {},
): { file: string; sha: string } {
  const root = fs.mkdtempSync(path.join(dir, "chart-"));
  fs.mkdirSync(path.join(root, "harbor"));
  fs.writeFileSync(
    path.join(root, "harbor", "Chart.yaml"),
    `apiVersion: v2\nname: harbor\nversion: ${opts.version ?? "1.19.1"}\nappVersion: 2.15.1\n`,
  );
  fs.writeFileSync(
    path.join(root, "harbor", "values.yaml"),
    opts.values ?? fs.readFileSync(REFERENCE, "utf8"),
  );
  const file = path.join(root, "harbor.tgz");
  const r = spawnSync("tar", ["-czf", file, "-C", root, "harbor"]);
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
  return { file, sha: createHash("sha256").update(fs.readFileSync(file)).digest("hex") };
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "helm-component-"));
  const c = makeChart(tmp);
  chartPath = c.file;
  chartSha = c.sha;
});

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Run {
  mocks: RecordingMocks;
  options: { name: string; retainOnDelete?: boolean; protect?: boolean }[];
  pulumi: typeof pulumiType;
  outputs: { externalUrl: string; namespace: string; releaseStatus: string };
  cfg: StackConfig;
}

/** Parses a helm stack and constructs HarborHelm under fresh mocks; resolves once every child was registered. */
async function runHarbor(
  helm: Record<string, unknown> = {},
  harbor: Record<string, unknown> = {},
  secrets: Record<string, string> = {},
): Promise<Run> {
  jest.resetModules();
  const pulumi: typeof pulumiType = await import("@pulumi/pulumi");
  const { RecordingMocks: Mocks } = await import("../support/mocks");
  const mocks = new Mocks((args) =>
    args.type === "kubernetes:helm.sh/v3:Release"
      ? { ...args.inputs, status: { status: "deployed", namespace: args.inputs.namespace } }
      : undefined,
  );
  lastMocks = mocks;
  await pulumi.runtime.setMocks(mocks, "casd-registry", "test", false);
  const options: Run["options"] = [];
  // Records every child's resource options (a component transformation sees each child).
  const record: pulumiType.ResourceTransformation = (a) => {
    options.push({ name: a.name, retainOnDelete: a.opts.retainOnDelete, protect: a.opts.protect });
    return undefined;
  };
  const { parseStackConfig } = await import("../../infra/config");
  const all: Record<string, string> = {
    sshPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
    harborAdminPassword: ADMIN,
    harborDatabasePassword: DB,
    harborInternalSeed: SEED,
    kubeconfig: KUBECONFIG,
    ...secrets,
  };
  const cfg = parseStackConfig({
    values: {
      hostname: "reg.casd.local",
      deploy: "helm",
      registryHost: { address: "10.50.6.62", hostKey: HOST_KEY },
      helm: { chartPath, chartSha256: chartSha, mirrorRegistry: "mirror.casd.local:5000", ...helm },
      harbor,
    },
    secrets: all,
    encryptedKeys: new Set(Object.keys(all)),
  });
  const { HarborHelm } = await import("../../infra/harbor/helm");
  const h = new HarborHelm(
    "harbor",
    {
      hostname: cfg.hostname,
      helm: cfg.helm,
      harbor: cfg.harbor,
      caCertPem: CA_PEM,
      fullChainPem: CHAIN_PEM,
      serverKeyPem: pulumi.secret(KEY_PEM),
      caFingerprintSha256: FINGERPRINT,
    },
    { transformations: [record] },
  );
  const get = <T>(o: pulumiType.Output<T>) =>
    new Promise<T>((resolve) => o.apply((v) => resolve(v)));
  const outputs = {
    externalUrl: await get(h.externalUrl),
    namespace: await get(h.namespace),
    releaseStatus: await get(h.releaseStatus),
  };
  await settle(mocks);
  return { mocks, options, pulumi, outputs, cfg };
}

/** Waits until no new resource has been registered for a while. */
async function settle(mocks: RecordingMocks): Promise<void> {
  let last = -1;
  let stable = 0;
  while (stable < 5) {
    await new Promise((r) => setTimeout(r, 10));
    if (mocks.resources.length === last) stable++;
    else {
      stable = 0;
      last = mocks.resources.length;
    }
  }
}

function summary(rs: Registered[]): string[] {
  return rs.map((r) => `${r.type} ${r.name}`).sort();
}

const BASE_CHILDREN = [
  "casd:harbor:HarborHelm harbor",
  "kubernetes:apps/v1:DaemonSet harbor-node-trust",
  "kubernetes:core/v1:ConfigMap harbor-node-trust-script",
  "kubernetes:core/v1:Namespace harbor-ns",
  "kubernetes:core/v1:Secret harbor-admin",
  "kubernetes:core/v1:Secret harbor-ca",
  "kubernetes:core/v1:Secret harbor-internal",
  "kubernetes:core/v1:Secret harbor-tls",
  "kubernetes:core/v1:Secret harbor-token",
  "kubernetes:helm.sh/v3:Release harbor-release",
  "pulumi:providers:kubernetes harbor-k8s",
  "tls:index/privateKey:PrivateKey harbor-token-key",
  "tls:index/selfSignedCert:SelfSignedCert harbor-token-cert",
];

describe("HarborHelm under mocks", () => {
  let run: Run;
  beforeAll(async () => {
    run = await runHarbor();
  });

  it("creates exactly the expected children, and no compose or remote resource", () => {
    expect(summary(run.mocks.resources)).toEqual(BASE_CHILDREN);
    expect(run.mocks.resources.filter((r) => /^(command|docker):/.test(r.type))).toEqual([]);
  });

  it("exports the external URL, the namespace and the release status", () => {
    expect(run.outputs).toEqual({
      externalUrl: "https://reg.casd.local",
      namespace: "harbor",
      releaseStatus: "deployed",
    });
  });

  it("installs the verified local chart archive, pinned, without any repository", async () => {
    const rel = run.mocks.byName("harbor-release");
    const { deriveInternalSecrets } = await import("../../infra/harbor/helm/secrets");
    const { buildHarborValues } = await import("../../infra/harbor/helm/values");
    const { values, ...rest } = rel.inputs;
    expect(rest).toEqual({
      name: "harbor",
      namespace: "harbor",
      chart: chartPath,
      version: "1.19.1",
      createNamespace: false,
      atomic: true,
      cleanupOnFail: true,
      compat: "true",
      waitForJobs: true,
      timeout: 900,
      maxHistory: 10,
      description: "casd-registry: Harbor 2.15.1, chart 1.19.1",
    });
    expect(rel.inputs.repositoryOpts).toBeUndefined();
    const cfg = run.cfg;
    expect(values).toEqual(
      buildHarborValues(
        {
          hostname: "reg.casd.local",
          helm: { ...cfg.helm, mirrorRegistry: "mirror.casd.local:5000" },
          harbor: { ...cfg.harbor, redisPassword: false },
        },
        { ...deriveInternalSecrets(SEED), adminPassword: ADMIN, databasePassword: DB },
      ),
    );
    expect(containsSecret(rel.rawInputs.values)).toBe(true);
  });

  it("keeps every secret secret: kubeconfig, every Secret's data, values", () => {
    const k8s = run.mocks.byName("harbor-k8s");
    expect(k8s.inputs.kubeconfig).toBe(KUBECONFIG);
    expect(containsSecret(k8s.rawInputs.kubeconfig)).toBe(true);
    for (const n of [
      "harbor-tls",
      "harbor-ca",
      "harbor-admin",
      "harbor-internal",
      "harbor-token",
    ]) {
      expect([n, containsSecret(run.mocks.byName(n).rawInputs.stringData)]).toEqual([n, true]);
    }
  });

  it("writes the Secrets with exact names, types and keys", async () => {
    const { deriveInternalSecrets } = await import("../../infra/harbor/helm/secrets");
    const d = deriveInternalSecrets(SEED);
    const sec = (n: string) => {
      const r = run.mocks.byName(n).inputs;
      return {
        name: r.metadata.name,
        namespace: r.metadata.namespace,
        type: r.type,
        keys: Object.keys(r.stringData).sort(),
      };
    };
    expect(
      ["harbor-tls", "harbor-ca", "harbor-admin", "harbor-internal", "harbor-token"].map(sec),
    ).toEqual([
      {
        name: "harbor-casd-tls",
        namespace: "harbor",
        type: "kubernetes.io/tls",
        keys: ["tls.crt", "tls.key"],
      },
      { name: "harbor-casd-ca", namespace: "harbor", type: "Opaque", keys: ["ca.crt"] },
      {
        name: "harbor-casd-admin",
        namespace: "harbor",
        type: "Opaque",
        keys: ["HARBOR_ADMIN_PASSWORD"],
      },
      {
        name: "harbor-casd-internal",
        namespace: "harbor",
        type: "Opaque",
        keys: [
          "CSRF_KEY",
          "JOBSERVICE_SECRET",
          "REGISTRY_HTPASSWD",
          "REGISTRY_HTTP_SECRET",
          "REGISTRY_PASSWD",
          "secret",
          "secretKey",
        ],
      },
      {
        name: "harbor-casd-token",
        namespace: "harbor",
        type: "kubernetes.io/tls",
        keys: ["tls.crt", "tls.key"],
      },
    ]);
    expect(run.mocks.byName("harbor-tls").inputs.stringData).toEqual({
      "tls.crt": CHAIN_PEM,
      "tls.key": KEY_PEM,
    });
    expect(run.mocks.byName("harbor-ca").inputs.stringData).toEqual({ "ca.crt": CA_PEM });
    expect(run.mocks.byName("harbor-admin").inputs.stringData).toEqual({
      HARBOR_ADMIN_PASSWORD: ADMIN,
    });
    expect(run.mocks.byName("harbor-internal").inputs.stringData).toEqual({
      secretKey: d.secretKey,
      secret: d.coreSecret,
      CSRF_KEY: d.xsrfKey,
      JOBSERVICE_SECRET: d.jobserviceSecret,
      REGISTRY_HTTP_SECRET: d.registryHttpSecret,
      REGISTRY_PASSWD: d.registryPassword,
      REGISTRY_HTPASSWD: d.registryHtpasswd,
    });
    const token = run.mocks.byName("harbor-token").inputs.stringData;
    expect(token["tls.key"]).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    expect(token["tls.crt"]).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
    expect(run.mocks.byName("harbor-token-key").inputs).toEqual({
      algorithm: "RSA",
      rsaBits: 3072,
    });
  });

  it("leaves no published default secret in anything sent to the cluster", () => {
    const published = [
      "Harbor12345",
      "not-a-secure-key",
      "changeit",
      "harbor_registry_password",
      "harbor_registry_user",
    ];
    const strings = (v: unknown): string[] =>
      typeof v === "string"
        ? [v]
        : v && typeof v === "object"
          ? Object.values(v as Record<string, unknown>).flatMap(strings)
          : [];
    const found = run.mocks.resources
      .filter((r) => r.type.startsWith("kubernetes:"))
      .flatMap((r) =>
        strings(r.inputs)
          .filter((s) => published.includes(s))
          .map((s) => `${r.name}: ${s}`),
      );
    expect(found).toEqual([]);
  });

  it("keeps the namespace (and with it the PVCs) on destroy; nothing else is protected", () => {
    expect(run.options.filter((o) => o.retainOnDelete).map((o) => o.name)).toEqual(["harbor-ns"]);
    expect(run.options.filter((o) => o.protect).map((o) => o.name)).toEqual([]);
    expect(run.mocks.byName("harbor-ns").inputs.metadata).toEqual({
      name: "harbor",
      labels: { "app.kubernetes.io/part-of": "casd-registry" },
    });
  });

  it("feeds the node-trust DaemonSet the trust renderers' script, the CA on stdin, and re-runs it when the CA changes", async () => {
    const { nodeTrustSpec, renderNodeTrustScript, caInputOf } =
      await import("../../infra/harbor/helm/node-trust");
    const { sha256Hex } = await import("../../infra/remote/script");
    const cm = run.mocks.byName("harbor-node-trust-script").inputs;
    const script = renderNodeTrustScript(
      nodeTrustSpec({ hostname: "reg.casd.local", port: 443, osStore: false }),
      "harbor",
    );
    expect(cm.metadata.name).toBe("harbor-casd-node-trust");
    expect(cm.data).toEqual({ "node-trust.sh": script, "ca-input.pem": CA_PEM });
    const ds = run.mocks.byName("harbor-node-trust").inputs;
    expect(ds.spec.template.metadata.annotations).toEqual({
      "casd.io/ca-sha256": FINGERPRINT,
      "casd.io/ca-input-sha256": caInputOf(CA_PEM).sha256,
      "casd.io/script-sha256": sha256Hex(script),
    });
    expect(ds.spec.template.spec.initContainers[0].image).toBe(
      "mirror.casd.local:5000/casd/node-trust:1.0.0",
    );
    expect(ds.spec.template.spec.containers[0].image).toBe(
      "mirror.casd.local:5000/casd/node-trust:1.0.0",
    );
    expect(
      ds.spec.template.spec.volumes
        .filter((v: { hostPath?: unknown }) => v.hostPath)
        .map((v: { hostPath: { path: string } }) => v.hostPath.path),
    ).toEqual(["/etc/containerd/certs.d", "/var/lib/casd-registry/trust"]);
  });

  it("renders identically on a second run (no churn)", async () => {
    const again = await runHarbor();
    for (const n of [
      "harbor-release",
      "harbor-internal",
      "harbor-admin",
      "harbor-node-trust",
      "harbor-node-trust-script",
    ]) {
      expect([n, again.mocks.byName(n).inputs]).toEqual([n, run.mocks.byName(n).inputs]);
    }
  });
});

describe("HarborHelm variants", () => {
  it("scale-out: adds the database, Redis, S3 and S3 CA Secrets, secret where they hold secrets", async () => {
    const r = await runHarbor(
      {
        replicas: { core: 2, registry: 3, jobservice: 2 },
        nodeTrust: false,
        createNamespace: false,
      },
      {
        s3: {
          region: "site-1",
          bucket: "harbor",
          regionEndpoint: "https://s3.casd.local",
          accessKey: "AKIDCASD",
          caBundlePem: CA_PEM.trim(),
        },
        externalDatabase: { host: "pg.casd.local" },
        externalRedis: { host: "redis.casd.local" },
      },
      {
        harborS3SecretKey: "s3-secret-key-for-tests",
        harborRedisPassword: "redis-password-for-tests",
      },
    );
    expect(summary(r.mocks.resources)).toEqual(
      [
        ...BASE_CHILDREN.filter((c) => !/DaemonSet|ConfigMap|Namespace/.test(c)),
        "kubernetes:core/v1:Secret harbor-database",
        "kubernetes:core/v1:Secret harbor-redis",
        "kubernetes:core/v1:Secret harbor-s3",
        "kubernetes:core/v1:Secret harbor-s3-ca",
      ].sort(),
    );
    expect(r.mocks.byName("harbor-database").inputs.stringData).toEqual({ password: DB });
    expect(r.mocks.byName("harbor-redis").inputs.stringData).toEqual({
      REDIS_PASSWORD: "redis-password-for-tests",
    });
    expect(r.mocks.byName("harbor-s3").inputs.stringData).toEqual({
      REGISTRY_STORAGE_S3_ACCESSKEY: "AKIDCASD",
      REGISTRY_STORAGE_S3_SECRETKEY: "s3-secret-key-for-tests",
    });
    expect(r.mocks.byName("harbor-s3-ca").inputs.stringData).toEqual({ "ca.crt": CA_PEM });
    for (const n of ["harbor-database", "harbor-redis", "harbor-s3"])
      expect([n, containsSecret(r.mocks.byName(n).rawInputs.stringData)]).toEqual([n, true]);
    expect(r.options.filter((o) => o.retainOnDelete)).toEqual([]);
  });

  it("nodePort: the URL carries the port, and node trust writes certs.d/<host>:<port>", async () => {
    const r = await runHarbor({
      expose: "nodePort",
      httpsNodePort: 31443,
      kubeContext: "casd-admin",
    });
    expect(r.outputs.externalUrl).toBe("https://reg.casd.local:31443");
    expect(r.mocks.byName("harbor-k8s").inputs.context).toBe("casd-admin");
    expect(r.mocks.byName("harbor-node-trust-script").inputs.data["node-trust.sh"]).toContain(
      "CASD_AUTH='reg.casd.local:31443'",
    );
  });

  it("OS store: the DaemonSet mounts the node's root and may chroot", async () => {
    const r = await runHarbor({ nodeTrustOsStore: true, imagePullSecrets: ["mirror-pull"] });
    const spec = r.mocks.byName("harbor-node-trust").inputs.spec.template.spec;
    expect(spec.volumes.filter((v: { hostPath?: unknown }) => v.hostPath)).toEqual([
      { name: "node-root", hostPath: { path: "/", type: "DirectoryOrCreate" } },
    ]);
    expect(spec.initContainers[0].securityContext.capabilities).toEqual({
      drop: ["ALL"],
      add: ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SYS_CHROOT"],
    });
    expect(spec.imagePullSecrets).toEqual([{ name: "mirror-pull" }]);
  });
});

describe("HarborHelm validation: all problems at once, before anything is created", () => {
  async function failure(
    helm: Record<string, unknown>,
    harbor: Record<string, unknown> = {},
  ): Promise<{ message: string; created: string[] }> {
    try {
      const r = await runHarbor(helm, harbor);
      return { message: "(no error)", created: summary(r.mocks.resources) };
    } catch (e) {
      await settle(lastMocks!);
      return { message: (e as Error).message, created: summary(lastMocks!.resources) };
    }
  }

  it("refuses an archive whose sha256 differs from the pin, and too many registries without S3", async () => {
    const { message, created } = await failure({
      chartSha256: "0".repeat(64),
      replicas: { registry: 2 },
    });
    expect(created).toEqual([]);
    expect(message).toBe(
      [
        "HarborHelm harbor: nothing was created:",
        "  - helm.replicas.registry: is 2, but more than one registry needs shared image storage (its filesystem volume is ReadWriteOnce). Fix: configure harbor.s3, or set helm.replicas.registry to 1",
        `  - helm.chartPath: ${chartPath} has sha256 ${chartSha}, but helm.chartSha256 pins ${"0".repeat(64)}. Fix: use the archive from the verified offline bundle (or, after checking it, pin its sum in helm.chartSha256)`,
      ].join("\n"),
    );
  });

  it("refuses a chart of another version", async () => {
    const other = makeChart(tmp, { version: "1.18.0" });
    const { message, created } = await failure({ chartPath: other.file, chartSha256: other.sha });
    expect(created).toEqual([]);
    expect(message).toBe(
      `HarborHelm harbor: nothing was created:\n  - helm.chartPath: ${other.file} is chart harbor 1.18.0, but helm.chartVersion pins harbor 1.19.1. Fix: use harbor-1.19.1.tgz, or change helm.chartVersion (and its sum) deliberately`,
    );
  });

  it("checks the values against the archive's own values.yaml (a key the chart does not document fails)", async () => {
    const values = fs
      .readFileSync(REFERENCE, "utf8")
      .replace(/^ {2}offlineScan: false\n/m, "")
      .replace(/^caSecretName: ""\n/m, "");
    const other = makeChart(tmp, { values });
    const { message, created } = await failure({ chartPath: other.file, chartSha256: other.sha });
    expect(created).toEqual([]);
    expect(message).toBe(
      [
        "HarborHelm harbor: nothing was created:",
        "  - values.caSecretName: is not a documented key of chart harbor 1.19.1's values.yaml (did you mean uaaSecretName?)",
        "  - values.trivy.offlineScan: is not a documented key of chart harbor 1.19.1's values.yaml",
      ].join("\n"),
    );
  });

  it("refuses a missing archive", async () => {
    const { message, created } = await failure({ chartPath: path.join(tmp, "nope.tgz") });
    expect(created).toEqual([]);
    expect(message).toBe(
      `HarborHelm harbor: nothing was created:\n  - helm.chartPath: ${path.join(tmp, "nope.tgz")} does not exist. Fix: put harbor-1.19.1.tgz from the offline bundle there, or point helm.chartPath at it`,
    );
  });
});
