/**
 * harbor.yml renderer: golden texts per option set, `_version` derivation,
 * every rendered key checked against the installer's harbor.yml.tmpl of the
 * same version (read from ../shared/reference, never copied), and the errors.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";
import {
  checkHarborYmlInput,
  harborConfigSchemaVersion,
  HarborYmlInput,
  renderHarborYml,
  renderHarborYmlForTrigger,
  S3_DRIVER_KEYS,
} from "../../infra/harbor/compose/harbor-yml";

const REFERENCE_DIR =
  process.env.CASD_SHARED_REFERENCE ?? path.resolve(__dirname, "../../../shared/reference");
const TEMPLATE = fs.readFileSync(
  path.join(REFERENCE_DIR, "harbor-v2.15.1.harbor.yml.tmpl"),
  "utf8",
);

const BASE: HarborYmlInput = {
  hostname: "reg.casd.local",
  version: "2.15.1",
  httpsPort: 443,
  httpPort: 80,
  certificatePath: "/etc/casd-registry/tls/server-fullchain.crt",
  privateKeyPath: "/etc/casd-registry/tls/server.key",
  adminPassword: "Adm1nPassw0rdForTests",
  databasePassword: 'Db1"Pass: #word',
  dataVolume: "/data",
  jobserviceWorkers: 10,
  logLevel: "info",
  logRotateCount: 50,
  logRotateSize: "200M",
  metrics: { enabled: false, port: 9090, path: "/metrics" },
};

const FULL: HarborYmlInput = {
  ...BASE,
  httpsPort: 8443,
  httpPort: 8080,
  metrics: { enabled: true, port: 9091, path: "/m" },
  externalDatabase: {
    host: "pg.casd.local",
    port: 5432,
    username: "harbor",
    coreDatabase: "registry",
    sslmode: "verify-full",
  },
  externalRedis: {
    host: "redis.casd.local",
    port: 6379,
    registryDbIndex: 1,
    jobserviceDbIndex: 2,
    trivyDbIndex: 5,
  },
  externalRedisPassword: "R3dis",
  s3: {
    region: "us-east-1",
    bucket: "harbor",
    regionEndpoint: "https://s3.casd.local",
    accessKey: "AKID",
  },
  s3SecretKey: "S3cr3t",
  storageCaBundlePath: "/etc/casd-registry/tls/ca.crt",
};

const GOLDEN_BASE = [
  "# Rendered by casd-registry (infra/harbor/compose); do not edit on the host.",
  "hostname: reg.casd.local",
  "http:",
  "  port: 80",
  "https:",
  "  port: 443",
  "  certificate: /etc/casd-registry/tls/server-fullchain.crt",
  "  private_key: /etc/casd-registry/tls/server.key",
  "harbor_admin_password: Adm1nPassw0rdForTests",
  "database:",
  "  password: 'Db1\"Pass: #word'",
  "  max_idle_conns: 100",
  "  max_open_conns: 900",
  "  conn_max_lifetime: 5m",
  "  conn_max_idle_time: 0",
  "data_volume: /data",
  "trivy:",
  "  ignore_unfixed: false",
  "  skip_update: true",
  "  skip_java_db_update: true",
  "  offline_scan: true",
  "  security_check: vuln",
  "  insecure: false",
  "  timeout: 5m0s",
  "jobservice:",
  "  max_job_workers: 10",
  "  max_job_duration_hours: 24",
  "  job_loggers:",
  "    - STD_OUTPUT",
  "    - FILE",
  "  logger_sweeper_duration: 1",
  "notification:",
  "  webhook_job_max_retry: 3",
  "  webhook_job_http_client_timeout: 3",
  "log:",
  "  level: info",
  "  local:",
  "    rotate_count: 50",
  "    rotate_size: 200M",
  "    location: /var/log/harbor",
  "_version: 2.15.0",
  "proxy:",
  '  http_proxy: ""',
  '  https_proxy: ""',
  '  no_proxy: ""',
  "  components: []",
  "metric:",
  "  enabled: false",
  "  port: 9090",
  "  path: /metrics",
  "upload_purging:",
  "  enabled: true",
  "  age: 168h",
  "  interval: 24h",
  "  dryrun: false",
  "cache:",
  "  enabled: false",
  "  expire_hours: 24",
];

const GOLDEN_FULL = [
  "# Rendered by casd-registry (infra/harbor/compose); do not edit on the host.",
  "hostname: reg.casd.local",
  "http:",
  "  port: 8080",
  "https:",
  "  port: 8443",
  "  certificate: /etc/casd-registry/tls/server-fullchain.crt",
  "  private_key: /etc/casd-registry/tls/server.key",
  "harbor_admin_password: Adm1nPassw0rdForTests",
  "database:",
  "  password: 'Db1\"Pass: #word'",
  "  max_idle_conns: 100",
  "  max_open_conns: 900",
  "  conn_max_lifetime: 5m",
  "  conn_max_idle_time: 0",
  "data_volume: /data",
  "storage_service:",
  "  ca_bundle: /etc/casd-registry/tls/ca.crt",
  "  s3:",
  "    region: us-east-1",
  "    bucket: harbor",
  "    regionendpoint: https://s3.casd.local",
  "    accesskey: AKID",
  "    secretkey: S3cr3t",
  "trivy:",
  "  ignore_unfixed: false",
  "  skip_update: true",
  "  skip_java_db_update: true",
  "  offline_scan: true",
  "  security_check: vuln",
  "  insecure: false",
  "  timeout: 5m0s",
  "jobservice:",
  "  max_job_workers: 10",
  "  max_job_duration_hours: 24",
  "  job_loggers:",
  "    - STD_OUTPUT",
  "    - FILE",
  "  logger_sweeper_duration: 1",
  "notification:",
  "  webhook_job_max_retry: 3",
  "  webhook_job_http_client_timeout: 3",
  "log:",
  "  level: info",
  "  local:",
  "    rotate_count: 50",
  "    rotate_size: 200M",
  "    location: /var/log/harbor",
  "_version: 2.15.0",
  "external_database:",
  "  harbor:",
  "    host: pg.casd.local",
  "    port: 5432",
  "    db_name: registry",
  "    username: harbor",
  "    password: 'Db1\"Pass: #word'",
  "    ssl_mode: verify-full",
  "    max_idle_conns: 2",
  "    max_open_conns: 0",
  "external_redis:",
  "  host: redis.casd.local:6379",
  "  password: R3dis",
  "  registry_db_index: 1",
  "  jobservice_db_index: 2",
  "  trivy_db_index: 5",
  "  idle_timeout_seconds: 30",
  "proxy:",
  '  http_proxy: ""',
  '  https_proxy: ""',
  '  no_proxy: ""',
  "  components: []",
  "metric:",
  "  enabled: true",
  "  port: 9091",
  "  path: /m",
  "upload_purging:",
  "  enabled: true",
  "  age: 168h",
  "  interval: 24h",
  "  dryrun: false",
  "cache:",
  "  enabled: false",
  "  expire_hours: 24",
];

/**
 * Key paths of the template, commented-out blocks included: each line loses
 * its leading comment markers ('# ', '#'), and what then reads `key:` at an
 * indentation is a key under the nearest shallower key.
 */
function templateKeyPaths(text: string): Set<string> {
  const keys = new Set<string>();
  const stack: Array<{ indent: number; key: string }> = [];
  for (const raw of text.split("\n")) {
    let line = raw;
    for (;;) {
      const m = /^(\s*)# ?(.*)$/.exec(line);
      if (!m) break;
      line = m[1] + m[2];
    }
    const k = /^(\s*)([A-Za-z_][A-Za-z0-9_]*):(\s|$)/.exec(line);
    if (!k) continue;
    const indent = k[1].length;
    while (stack.length && stack[stack.length - 1].indent >= indent) stack.pop();
    stack.push({ indent, key: k[2] });
    keys.add(stack.map((s) => s.key).join("."));
  }
  return keys;
}

/** Key paths of a parsed document (maps only; list items are values). */
function docKeyPaths(v: unknown, prefix = ""): string[] {
  if (!v || typeof v !== "object" || Array.isArray(v)) return [];
  return Object.entries(v as Record<string, unknown>).flatMap(([k, x]) => {
    const p = prefix ? `${prefix}.${k}` : k;
    return [p, ...docKeyPaths(x, p)];
  });
}

describe("harborConfigSchemaVersion", () => {
  it.each([
    ["2.15.1", "2.15.0"],
    ["2.15.0", "2.15.0"],
    ["2.14.3", "2.14.0"],
    ["2.9.0", "2.9.0"],
    ["1.10.19", "1.10.0"],
    ["3.0.2", "3.0.0"],
  ])("installer %s writes _version %s", (v, want) => {
    expect(harborConfigSchemaVersion(v)).toBe(want);
  });

  it("matches the _version of the installer's own template (v2.15.1 carries 2.15.0)", () => {
    const tmpl = YAML.parse(TEMPLATE) as Record<string, unknown>;
    expect(tmpl._version).toBe("2.15.0");
    expect(harborConfigSchemaVersion("2.15.1")).toBe(tmpl._version);
  });

  it.each([
    [
      "v2.15.1",
      "harbor.version: 'v2.15.1' is not a version like 2.15.1; set harbor.version to the installer's version without the v",
    ],
    [
      "2.15",
      "harbor.version: '2.15' is not a version like 2.15.1; set harbor.version to the installer's version without the v",
    ],
    [
      "1.8.6",
      "harbor.version: '1.8.6' predates harbor.yml schema migrations (1.9.0); use an installer of 2.x",
    ],
  ])("refuses %s", (v, msg) => {
    expect(() => harborConfigSchemaVersion(v)).toThrow(new Error(msg));
  });
});

describe("renderHarborYml", () => {
  it("renders the default (bundled database and redis, filesystem storage) exactly", () => {
    expect(renderHarborYml(BASE)).toBe(GOLDEN_BASE.join("\n") + "\n");
  });

  it("renders external database, external redis, s3 storage, metrics and other ports exactly", () => {
    expect(renderHarborYml(FULL)).toBe(GOLDEN_FULL.join("\n") + "\n");
  });

  it("renders external database alone and s3 without keys (instance credentials)", () => {
    const doc = YAML.parse(
      renderHarborYml({
        ...BASE,
        externalDatabase: FULL.externalDatabase,
        s3: { region: "eu-west-1", bucket: "b" },
      }),
    );
    expect(doc.external_database.harbor.password).toBe('Db1"Pass: #word');
    expect(doc.storage_service).toEqual({ s3: { region: "eu-west-1", bucket: "b" } });
    expect(doc.external_redis).toBeUndefined();
  });

  it.each([
    ["default", BASE],
    ["full", FULL],
    ["external database only", { ...BASE, externalDatabase: FULL.externalDatabase }],
    ["external redis without password", { ...BASE, externalRedis: FULL.externalRedis }],
  ])(
    "%s: every rendered key exists in v2.15.1's harbor.yml.tmpl (storage driver parameters: Distribution's s3 keys)",
    (_n, input) => {
      const allowed = templateKeyPaths(TEMPLATE);
      const rendered = docKeyPaths(YAML.parse(renderHarborYml(input)));
      const unknown = rendered.filter((k) => {
        if (k === "storage_service.s3") return false;
        if (k.startsWith("storage_service.s3."))
          return !(S3_DRIVER_KEYS as readonly string[]).includes(
            k.slice("storage_service.s3.".length),
          );
        return !allowed.has(k);
      });
      expect(unknown).toEqual([]);
      expect(rendered.length).toBeGreaterThan(40);
    },
  );

  it("the key check itself finds keys of commented-out blocks and rejects invented ones", () => {
    const allowed = templateKeyPaths(TEMPLATE);
    for (const k of [
      "external_database.harbor.ssl_mode",
      "external_redis.registry_db_index",
      "metric.path",
      "storage_service.ca_bundle",
      "trivy.offline_scan",
      "https.strong_ssl_ciphers",
    ]) {
      expect(allowed.has(k)).toBe(true);
    }
    for (const k of ["metrics", "trivy.offline", "external_database.host", "http.enabled"])
      expect(allowed.has(k)).toBe(false);
  });

  it("keeps the air-gap settings and never the template's default secrets", () => {
    const text = renderHarborYml(BASE);
    const doc = YAML.parse(text);
    expect(doc.trivy.skip_update).toBe(true);
    expect(doc.trivy.offline_scan).toBe(true);
    expect(doc.proxy).toEqual({ http_proxy: "", https_proxy: "", no_proxy: "", components: [] });
    expect(text).not.toContain("Harbor12345");
    expect(text).not.toContain("root123");
    // A password that needs quoting survives a round trip.
    expect(doc.database.password).toBe('Db1"Pass: #word');
  });

  it("puts harbor_admin_password on one line (the host's stamp leaves that line out)", () => {
    const text = renderHarborYml({ ...BASE, adminPassword: "A'b\"c: #d\\e" + "x".repeat(120) });
    const lines = text.split("\n").filter((l) => l.startsWith("harbor_admin_password:"));
    expect(lines).toHaveLength(1);
    expect(YAML.parse(text).harbor_admin_password).toBe("A'b\"c: #d\\e" + "x".repeat(120));
  });

  it("the trigger form differs from the real one only in the admin password", () => {
    const real = renderHarborYml(BASE).split("\n");
    const trig = renderHarborYmlForTrigger(BASE).split("\n");
    const diff = real.map((l, i) => [l, trig[i]]).filter(([a, b]) => a !== b);
    expect(diff).toEqual([
      [
        "harbor_admin_password: Adm1nPassw0rdForTests",
        "harbor_admin_password: <applied through the API>",
      ],
    ]);
    expect(renderHarborYmlForTrigger({ ...BASE, adminPassword: "Other0nePassword" })).toBe(
      renderHarborYmlForTrigger(BASE),
    );
  });

  it("lists every problem of a bad input at once, and refuses to render it", () => {
    const bad: HarborYmlInput = {
      ...BASE,
      hostname: "localhost",
      version: "2.15",
      httpPort: 443,
      certificatePath: "server.crt",
      adminPassword: "",
      databasePassword: "a\nb",
      s3: { region: "r", bucket: "b", accessKey: "AK" },
    };
    const problems = [
      "hostname: 'localhost' is not a fully qualified DNS name; set hostname to a name such as reg.casd.local",
      "harbor.version: '2.15' is not a version like 2.15.1; set harbor.version to the installer's version without the v",
      "harbor.httpPort: 443 equals harbor.httpsPort; choose another port",
      "certificatePath: 'server.crt' is not an absolute path; use a path like /etc/casd-registry/tls/server.crt",
      "harborAdminPassword: is empty; pulumi config set --secret harborAdminPassword <a strong password>",
      "harborDatabasePassword: contains a control character (newline, tab...); choose a password of printable characters",
      "s3SecretKey: is required with harbor.s3.accessKey; give the S3 secret key (secret)",
    ];
    expect(checkHarborYmlInput(bad)).toEqual(problems);
    expect(() => renderHarborYml(bad)).toThrow(
      new Error(`harbor.yml cannot be rendered:\n  - ${problems.join("\n  - ")}`),
    );
  });
});
