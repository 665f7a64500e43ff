/**
 * The chart values of the Helm path: exact values for each shape of config,
 * every key checked against the documented keys of chart 1.19.1
 * (/work/shared/reference values.yaml), every image repository rewritten to
 * the mirror, and no chart default secret left.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { parseStackConfig, type StackConfig } from "../../infra/config";
import {
  checkValuesKeys,
  documentedKeys,
  imageRepositoryPaths,
} from "../../infra/harbor/helm/chart-keys";
import { deriveInternalSecrets } from "../../infra/harbor/helm/secrets";
import {
  buildHarborValues,
  externalUrl,
  HARBOR_IMAGES,
  PLACEHOLDER_SECRETS,
  scaleOutProblems,
  SECRET_NAMES,
  type HelmValuesInput,
  type InlineSecrets,
} from "../../infra/harbor/helm/values";

const REFERENCE = path.resolve(
  __dirname,
  "../../../shared/reference/harbor-helm-1.19.1.values.yaml",
);
const REFERENCE_TEXT = fs.readFileSync(REFERENCE, "utf8");
const KEYS = documentedKeys(REFERENCE_TEXT);
const DEFAULTS = parseYaml(REFERENCE_TEXT) as Record<string, unknown>;

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE8vC4gnyCIIXNA9qd1G7mKX8r1ebwNZV+5ZLuhKIKQJ";
const SEED = "values-test-seed-0123456789-abcdefghijklmnop";

/** A parsed helm stack (real parser, real defaults) with `helm`/`harbor` overrides. */
function helmStack(
  helm: Record<string, unknown> = {},
  harbor: Record<string, unknown> = {},
  secrets: Record<string, string> = {},
): StackConfig {
  const all: Record<string, string> = {
    sshPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
    harborAdminPassword: "Adm1nPassw0rdForTests",
    harborDatabasePassword: "Db1PasswordForTests9",
    harborInternalSeed: SEED,
    ...secrets,
  };
  return parseStackConfig({
    values: {
      hostname: "reg.casd.local",
      deploy: "helm",
      registryHost: { address: "10.50.6.62", hostKey: HOST_KEY },
      helm: {
        chartPath: "offline/bundle/harbor-1.19.1.tgz",
        chartSha256: "b".repeat(64),
        kubeContext: "casd",
        mirrorRegistry: "mirror.casd.local:5000",
        ...helm,
      },
      harbor,
    },
    secrets: all,
    encryptedKeys: new Set(Object.keys(all)),
  });
}

function inputOf(cfg: StackConfig): HelmValuesInput {
  return {
    hostname: cfg.hostname,
    helm: { ...cfg.helm, mirrorRegistry: cfg.helm.mirrorRegistry! },
    harbor: { ...cfg.harbor, redisPassword: cfg.harbor.redisPassword !== undefined },
  };
}

const SECRETS: InlineSecrets = {
  ...deriveInternalSecrets(SEED),
  adminPassword: "Adm1nPassw0rdForTests",
  databasePassword: "Db1PasswordForTests9",
};
const D = deriveInternalSecrets(SEED);

function imageOf(name: string) {
  return { image: { repository: `mirror.casd.local:5000/goharbor/${name}`, tag: "v2.15.1" } };
}

const PVC_DEFAULT = {
  registry: { size: "200Gi" },
  jobservice: { jobLog: { size: "1Gi" } },
  database: { size: "5Gi" },
  redis: { size: "1Gi" },
  trivy: { size: "5Gi" },
};

/** The full expected values of the default helm stack (ingress, internal database and Redis, filesystem storage). */
const BASELINE = {
  expose: {
    type: "ingress",
    tls: { enabled: true, certSource: "secret", secret: { secretName: "harbor-casd-tls" } },
    ingress: { hosts: { core: "reg.casd.local" }, className: "nginx" },
  },
  externalURL: "https://reg.casd.local",
  persistence: {
    enabled: true,
    resourcePolicy: "keep",
    persistentVolumeClaim: PVC_DEFAULT,
    imageChartStorage: { type: "filesystem" },
  },
  existingSecretAdminPassword: "harbor-casd-admin",
  existingSecretAdminPasswordKey: "HARBOR_ADMIN_PASSWORD",
  harborAdminPassword: "Adm1nPassw0rdForTests",
  existingSecretSecretKey: "harbor-casd-internal",
  secretKey: D.secretKey,
  caSecretName: "harbor-casd-ca",
  caBundleSecretName: "harbor-casd-ca",
  imagePullPolicy: "IfNotPresent",
  updateStrategy: { type: "Recreate" },
  logLevel: "info",
  metrics: { enabled: false },
  nginx: imageOf("nginx-photon"),
  portal: { ...imageOf("harbor-portal"), replicas: 1 },
  core: {
    ...imageOf("harbor-core"),
    replicas: 1,
    secret: D.coreSecret,
    existingSecret: "harbor-casd-internal",
    secretName: "harbor-casd-token",
    xsrfKey: D.xsrfKey,
    existingXsrfSecret: "harbor-casd-internal",
    existingXsrfSecretKey: "CSRF_KEY",
  },
  jobservice: {
    ...imageOf("harbor-jobservice"),
    replicas: 1,
    maxJobWorkers: 10,
    jobLoggers: ["file"],
    secret: D.jobserviceSecret,
    existingSecret: "harbor-casd-internal",
    existingSecretKey: "JOBSERVICE_SECRET",
  },
  registry: {
    registry: imageOf("registry-photon"),
    controller: imageOf("harbor-registryctl"),
    replicas: 1,
    secret: D.registryHttpSecret,
    existingSecret: "harbor-casd-internal",
    existingSecretKey: "REGISTRY_HTTP_SECRET",
    credentials: {
      username: "casd_registry_user",
      password: D.registryPassword,
      existingSecret: "harbor-casd-internal",
      htpasswdString: D.registryHtpasswd,
    },
  },
  trivy: {
    ...imageOf("trivy-adapter-photon"),
    enabled: true,
    replicas: 1,
    skipUpdate: true,
    skipJavaDBUpdate: true,
    offlineScan: true,
  },
  database: {
    type: "internal",
    internal: { ...imageOf("harbor-db"), password: "Db1PasswordForTests9" },
  },
  redis: { type: "internal", internal: imageOf("redis-photon") },
  exporter: imageOf("harbor-exporter"),
};

/** Dotted paths of every leaf of a values object. */
function leaves(v: unknown, prefix = ""): [string, unknown][] {
  if (v && typeof v === "object" && !Array.isArray(v)) {
    return Object.entries(v as Record<string, unknown>).flatMap(([k, x]) =>
      leaves(x, prefix ? `${prefix}.${k}` : k),
    );
  }
  return [[prefix, v]];
}

function at(obj: unknown, dotted: string): unknown {
  return dotted
    .split(".")
    .reduce<unknown>(
      (o, k) => (o && typeof o === "object" ? (o as Record<string, unknown>)[k] : undefined),
      obj,
    );
}

const S3_CA = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----";

/** Every config shape the builder knows, for the checks that must hold for all. */
const SHAPES: [string, StackConfig][] = [
  ["baseline", helmStack()],
  ["nodePort", helmStack({ expose: "nodePort", httpsNodePort: 31443 })],
  [
    "loadBalancer with storage class and pull secrets",
    helmStack({ expose: "loadBalancer", storageClass: "fast", imagePullSecrets: ["mirror-pull"] }),
  ],
  [
    "scale-out: S3, external database and Redis, replicas",
    helmStack(
      { replicas: { core: 3, portal: 2, registry: 3, jobservice: 2, trivy: 2 } },
      {
        s3: {
          region: "site-1",
          bucket: "harbor",
          regionEndpoint: "https://s3.casd.local",
          accessKey: "AKIDCASD",
          caBundlePem: S3_CA,
        },
        externalDatabase: { host: "pg.casd.local" },
        externalRedis: { host: "redis.casd.local" },
      },
      {
        harborS3SecretKey: "s3-secret-key-for-tests",
        harborRedisPassword: "redis-password-for-tests",
      },
    ),
  ],
];

describe("buildHarborValues", () => {
  it("builds the exact values of the default helm stack", () => {
    expect(buildHarborValues(inputOf(helmStack()), SECRETS)).toEqual(BASELINE);
  });

  it("exposes by nodePort with the configured port in externalURL", () => {
    const v = buildHarborValues(
      inputOf(helmStack({ expose: "nodePort", httpsNodePort: 31443 })),
      SECRETS,
    );
    expect(v.expose).toEqual({
      type: "nodePort",
      tls: { enabled: true, certSource: "secret", secret: { secretName: "harbor-casd-tls" } },
      nodePort: { ports: { https: { nodePort: 31443 } } },
    });
    expect(v.externalURL).toBe("https://reg.casd.local:31443");
  });

  it("exposes by loadBalancer, with storage class on every volume, pull secrets and the configured class", () => {
    const v = buildHarborValues(
      inputOf(
        helmStack({
          expose: "loadBalancer",
          storageClass: "fast",
          imagePullSecrets: ["mirror-pull", "other"],
          ingressClass: "traefik",
        }),
      ),
      SECRETS,
    );
    expect(v.expose).toEqual({
      type: "loadBalancer",
      tls: { enabled: true, certSource: "secret", secret: { secretName: "harbor-casd-tls" } },
    });
    expect(v.externalURL).toBe("https://reg.casd.local");
    expect(v.imagePullSecrets).toEqual([{ name: "mirror-pull" }, { name: "other" }]);
    expect(v.persistence.persistentVolumeClaim).toEqual({
      registry: { storageClass: "fast", size: "200Gi" },
      jobservice: { jobLog: { storageClass: "fast", size: "1Gi" } },
      database: { storageClass: "fast", size: "5Gi" },
      redis: { storageClass: "fast", size: "1Gi" },
      trivy: { storageClass: "fast", size: "5Gi" },
    });
  });

  it("takes the ingress class and volume sizes from config", () => {
    const v = buildHarborValues(
      inputOf(
        helmStack({ ingressClass: "traefik", volumeSizes: { registry: "2Ti", trivy: "20Gi" } }),
      ),
      SECRETS,
    );
    expect(v.expose.ingress).toEqual({ hosts: { core: "reg.casd.local" }, className: "traefik" });
    expect(v.persistence.persistentVolumeClaim.registry).toEqual({ size: "2Ti" });
    expect(v.persistence.persistentVolumeClaim.trivy).toEqual({ size: "20Gi" });
  });

  it("scales out: S3 storage with its secret and CA bundle, external database and Redis, replicas, rolling updates", () => {
    const v = buildHarborValues(inputOf(SHAPES[3][1]), SECRETS);
    expect(v.persistence.imageChartStorage).toEqual({
      type: "s3",
      disableredirect: true,
      caBundleSecretName: "harbor-casd-s3-ca",
      s3: {
        region: "site-1",
        bucket: "harbor",
        regionendpoint: "https://s3.casd.local",
        existingSecret: "harbor-casd-s3",
        secure: true,
        v4auth: true,
      },
    });
    expect(v.database).toEqual({
      type: "external",
      internal: { ...imageOf("harbor-db"), password: "Db1PasswordForTests9" },
      external: {
        host: "pg.casd.local",
        port: "5432",
        username: "harbor",
        password: "Db1PasswordForTests9",
        coreDatabase: "registry",
        existingSecret: "harbor-casd-database",
        sslmode: "verify-full",
      },
    });
    expect(v.redis).toEqual({
      type: "external",
      internal: imageOf("redis-photon"),
      external: {
        addr: "redis.casd.local:6379",
        coreDatabaseIndex: "0",
        jobserviceDatabaseIndex: "2",
        registryDatabaseIndex: "1",
        trivyAdapterIndex: "5",
        existingSecret: "harbor-casd-redis",
      },
    });
    expect([
      v.core.replicas,
      v.portal.replicas,
      v.registry.replicas,
      v.jobservice.replicas,
      v.trivy.replicas,
    ]).toEqual([3, 2, 3, 2, 2]);
    expect(v.jobservice.jobLoggers).toEqual(["database"]);
    expect(v.updateStrategy).toEqual({ type: "RollingUpdate" });
  });

  it("is pure: the same config gives identical values (a re-render never churns)", () => {
    const a = JSON.stringify(buildHarborValues(inputOf(SHAPES[3][1]), SECRETS));
    expect(JSON.stringify(buildHarborValues(inputOf(SHAPES[3][1]), SECRETS))).toBe(a);
  });

  it("computes the external URL per exposure", () => {
    expect([
      externalUrl("r.casd.local", "ingress", 30003),
      externalUrl("r.casd.local", "loadBalancer", 30003),
      externalUrl("r.casd.local", "nodePort", 30003),
    ]).toEqual(["https://r.casd.local", "https://r.casd.local", "https://r.casd.local:30003"]);
  });
});

describe("values against the documented keys of chart 1.19.1", () => {
  it.each(SHAPES)("%s: every key is documented and every section stays a section", (_t, cfg) => {
    expect(
      checkValuesKeys(
        buildHarborValues(inputOf(cfg), SECRETS) as unknown as Record<string, unknown>,
        KEYS,
        "chart harbor 1.19.1",
      ),
    ).toEqual([]);
  });

  it("reads documented keys from the YAML and from commented-out examples", () => {
    expect(KEYS.kinds.get("expose.ingress.className")).toBe("scalar");
    expect(KEYS.kinds.get("persistence.imageChartStorage.caBundleSecretName")).toBe("commented");
    expect(KEYS.kinds.get("persistence.imageChartStorage.s3.regionendpoint")).toBe("commented");
    expect(KEYS.kinds.get("persistence.imageChartStorage.s3.existingSecret")).toBe("commented");
    expect(KEYS.kinds.get("caBundleSecretName")).toBe("commented");
    expect(KEYS.kinds.get("imagePullSecrets")).toBe("null");
    expect(KEYS.kinds.get("expose")).toBe("map");
    expect(KEYS.kinds.get("trivy.dbRepository")).toBe("list");
    expect(KEYS.kinds.size).toBe(771);
  });

  it.each([
    [
      "a misspelt top-level key",
      { externalUrl: "https://x" },
      [
        "externalUrl: is not a documented key of chart harbor 1.19.1's values.yaml (did you mean externalURL?)",
      ],
    ],
    [
      "a misspelt nested key",
      { trivy: { skipUpdates: true } },
      [
        "trivy.skipUpdates: is not a documented key of chart harbor 1.19.1's values.yaml (did you mean trivy.skipUpdate?)",
      ],
    ],
    [
      "an unknown key without a near one",
      { core: { frobnicate: 1 } },
      ["core.frobnicate: is not a documented key of chart harbor 1.19.1's values.yaml"],
    ],
    [
      "a value where the chart has a section",
      { expose: "ingress" },
      ['expose: is a section in chart harbor 1.19.1\'s values.yaml, but the value is "ingress"'],
    ],
    [
      "a section where the chart has a value",
      { externalURL: { host: "x" } },
      ["externalURL: is a value in chart harbor 1.19.1's values.yaml, but the value is a section"],
    ],
    [
      "a section where the chart has a list",
      { trivy: { dbRepository: { a: 1 } } },
      [
        "trivy.dbRepository: is a list in chart harbor 1.19.1's values.yaml, but the value is a section",
      ],
    ],
  ])("rejects %s", (_t, values, expected) => {
    expect(checkValuesKeys(values as Record<string, unknown>, KEYS, "chart harbor 1.19.1")).toEqual(
      expected,
    );
  });

  it("accepts user keys below free-form maps and maps whose default is {}", () => {
    expect(
      checkValuesKeys(
        {
          expose: { ingress: { annotations: { "example.com/any": "x" } } },
          core: { podAnnotations: { a: "b" }, nodeSelector: { zone: "a" } },
          nginx: { resources: { limits: { cpu: "1" } } },
        },
        KEYS,
      ),
    ).toEqual([]);
  });
});

describe("images and secrets", () => {
  it("rewrites every image repository of the chart to the mirror, with the pinned tag", () => {
    const v = buildHarborValues(inputOf(helmStack()), SECRETS);
    const paths = imageRepositoryPaths(KEYS);
    expect(paths).toEqual(
      HARBOR_IMAGES.map((i) => [...i.path, "image", "repository"].join(".")).sort(),
    );
    for (const p of paths) {
      const def = at(DEFAULTS, p) as string;
      expect(def.startsWith("docker.io/goharbor/")).toBe(true);
      expect(at(v, p)).toBe(
        `mirror.casd.local:5000/goharbor/${def.slice("docker.io/goharbor/".length)}`,
      );
      expect(at(v, p.replace(/repository$/, "tag"))).toBe("v2.15.1");
    }
    expect(
      leaves(v).filter(([, x]) => typeof x === "string" && /docker\.io|ghcr\.io|gcr\.io/.test(x)),
    ).toEqual([]);
  });

  it.each(SHAPES)(
    "%s: no secret-bearing key keeps the chart's default, and no value is a published default",
    (_t, cfg) => {
      const v = buildHarborValues(inputOf(cfg), SECRETS);
      const secretPaths = [
        "harborAdminPassword",
        "secretKey",
        "core.secret",
        "core.xsrfKey",
        "jobservice.secret",
        "registry.secret",
        "registry.credentials.password",
        "registry.credentials.htpasswdString",
        "database.internal.password",
      ];
      for (const p of secretPaths) {
        expect(at(v, p)).toEqual(expect.any(String));
        expect(at(v, p)).not.toBe(at(DEFAULTS, p));
        expect(at(v, p)).not.toBe("");
      }
      if (cfg.harbor.externalDatabase)
        expect(at(v, "database.external.password")).not.toBe(
          at(DEFAULTS, "database.external.password"),
        );
      const published = [
        "Harbor12345",
        "not-a-secure-key",
        "changeit",
        "harbor_registry_password",
        "harbor_registry_user",
        "password",
      ];
      expect(leaves(v).filter(([, x]) => published.includes(x as string))).toEqual([]);
      expect(
        v.registry.credentials.htpasswdString.startsWith(
          `${v.registry.credentials.username}:$2b$10$`,
        ),
      ).toBe(true);
    },
  );

  it("points every existingSecret at a Secret this room creates", () => {
    const v = buildHarborValues(inputOf(SHAPES[3][1]), PLACEHOLDER_SECRETS);
    const refs = leaves(v)
      .filter(([p]) =>
        /(existingSecret|existingXsrfSecret|existingSecretAdminPassword|existingSecretSecretKey|[sS]ecretName)$/.test(
          p,
        ),
      )
      .map(([p, x]) => `${p}=${String(x)}`)
      .sort();
    expect(refs).toEqual([
      "caBundleSecretName=harbor-casd-ca",
      "caSecretName=harbor-casd-ca",
      "core.existingSecret=harbor-casd-internal",
      "core.existingXsrfSecret=harbor-casd-internal",
      "core.secretName=harbor-casd-token",
      "database.external.existingSecret=harbor-casd-database",
      "existingSecretAdminPassword=harbor-casd-admin",
      "existingSecretSecretKey=harbor-casd-internal",
      "expose.tls.secret.secretName=harbor-casd-tls",
      "jobservice.existingSecret=harbor-casd-internal",
      "persistence.imageChartStorage.caBundleSecretName=harbor-casd-s3-ca",
      "persistence.imageChartStorage.s3.existingSecret=harbor-casd-s3",
      "redis.external.existingSecret=harbor-casd-redis",
      "registry.credentials.existingSecret=harbor-casd-internal",
      "registry.existingSecret=harbor-casd-internal",
    ]);
    expect(new Set(refs.map((r) => r.split("=")[1]))).toEqual(new Set(Object.values(SECRET_NAMES)));
  });
});

describe("scaleOutProblems", () => {
  it.each([
    ["single replicas on a filesystem", helmStack(), []],
    [
      "many core, portal and trivy replicas on a filesystem",
      helmStack({ replicas: { core: 3, portal: 3, trivy: 2 } }),
      [],
    ],
    [
      "several registries and jobservices on a filesystem",
      helmStack({ replicas: { registry: 2, jobservice: 3 } }),
      [
        {
          propertyPath: "helm.replicas.registry",
          reason:
            "is 2, but more than one registry needs shared image storage (its filesystem volume is ReadWriteOnce). Fix: configure harbor.s3, or set helm.replicas.registry to 1",
        },
        {
          propertyPath: "helm.replicas.jobservice",
          reason:
            "is 3, but more than one jobservice needs the database job logger, which this stack selects with harbor.s3 (scale-out mode). Fix: configure harbor.s3, or set helm.replicas.jobservice to 1",
        },
      ],
    ],
    ["several registries on S3", SHAPES[3][1], []],
  ])("%s", (_t, cfg, expected) => {
    expect(scaleOutProblems(inputOf(cfg as StackConfig))).toEqual(expected);
  });
});
