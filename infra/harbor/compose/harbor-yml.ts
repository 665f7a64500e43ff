/**
 * `harbor.yml` for Harbor's offline installer, rendered by a pure, typed
 * function with the `yaml` library (never a string template).
 *
 * Keys follow the installer's `harbor.yml.tmpl` of the same version; the
 * unit tests check every rendered key against that template.
 */
import * as YAML from "yaml";
import type { ExternalDatabase, ExternalRedis, S3Storage } from "../../config";

/** Everything `harbor.yml` says; plain values (the component resolves Outputs first). */
export interface HarborYmlInput {
  /** The registry's DNS name (Harbor's `hostname`). */
  hostname: string;
  /** The installer's version, e.g. 2.15.1 (decides `_version`). */
  version: string;
  /** HTTPS port nginx publishes. */
  httpsPort: number;
  /** Port of the http listener that redirects to https. */
  httpPort: number;
  /** Path of the server certificate (full chain) on the host. */
  certificatePath: string;
  /** Path of the server key on the host. */
  privateKeyPath: string;
  /** Initial admin password (only used at Harbor's first start). Secret. */
  adminPassword: string;
  /** Password of Harbor's database (bundled or external). Secret. */
  databasePassword: string;
  /** Harbor's data volume on the host. */
  dataVolume: string;
  /** Jobservice workers. */
  jobserviceWorkers: number;
  /** Log level of every component. */
  logLevel: "debug" | "info" | "warning" | "error" | "fatal";
  /** Rotated log files kept. */
  logRotateCount: number;
  /** Size at which a log file is rotated, e.g. 200M. */
  logRotateSize: string;
  /** Where Harbor's log container writes on the host (default /var/log/harbor). */
  logLocation?: string;
  /** Prometheus metrics endpoint. */
  metrics: { enabled: boolean; port: number; path: string };
  /** External PostgreSQL (password = databasePassword). */
  externalDatabase?: ExternalDatabase;
  /** External Redis. */
  externalRedis?: ExternalRedis;
  /** Password of the external Redis (secret), when it asks one. */
  externalRedisPassword?: string;
  /** S3 storage backend of the registry. */
  s3?: S3Storage;
  /** S3 secret key (secret), with s3.accessKey. */
  s3SecretKey?: string;
  /** CA bundle the registry trusts for its storage backend (path on the host). */
  storageCaBundlePath?: string;
}

/** Storage driver parameters of Distribution's s3 driver that this renderer may write. */
export const S3_DRIVER_KEYS = [
  "region",
  "bucket",
  "regionendpoint",
  "accesskey",
  "secretkey",
] as const;

/**
 * The `_version` a harbor.yml of installer `version` must carry. It is the
 * config schema revision, not the installer version: Harbor's prepare image
 * ships one migration per minor release (`migrations/version_X_Y_0`, with
 * `revision = 'X.Y.0'`), and the template of every X.Y.z installer says
 * `_version: X.Y.0` (v2.15.1's says 2.15.0). Migrations start at 1.9.0.
 */
export function harborConfigSchemaVersion(version: string): string {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
  if (!m)
    throw new Error(
      `harbor.version: '${version}' is not a version like 2.15.1; set harbor.version to the installer's version without the v`,
    );
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major < 1 || (major === 1 && minor < 9)) {
    throw new Error(
      `harbor.version: '${version}' predates harbor.yml schema migrations (1.9.0); use an installer of 2.x`,
    );
  }
  return `${major}.${minor}.0`;
}

/** Problems with an input, each naming the field, the value and the fix; empty when fine. */
export function checkHarborYmlInput(i: HarborYmlInput): string[] {
  const errs: string[] = [];
  const abs = (field: string, v: string | undefined) => {
    if (v !== undefined && !/^\/[A-Za-z0-9._/-]*$/.test(v))
      errs.push(
        `${field}: '${v}' is not an absolute path; use a path like /etc/casd-registry/tls/server.crt`,
      );
  };
  if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(i.hostname) || !i.hostname.includes(".")) {
    errs.push(
      `hostname: '${i.hostname}' is not a fully qualified DNS name; set hostname to a name such as reg.casd.local`,
    );
  }
  try {
    harborConfigSchemaVersion(i.version);
  } catch (e) {
    errs.push((e as Error).message);
  }
  if (i.httpPort === i.httpsPort)
    errs.push(`harbor.httpPort: ${i.httpPort} equals harbor.httpsPort; choose another port`);
  abs("certificatePath", i.certificatePath);
  abs("privateKeyPath", i.privateKeyPath);
  abs("dataVolume", i.dataVolume);
  abs("logLocation", i.logLocation);
  abs("storageCaBundlePath", i.storageCaBundlePath);
  if (!i.adminPassword)
    errs.push(
      "harborAdminPassword: is empty; pulumi config set --secret harborAdminPassword <a strong password>",
    );
  if (!i.databasePassword)
    errs.push(
      "harborDatabasePassword: is empty; pulumi config set --secret harborDatabasePassword <a strong password>",
    );
  // eslint-disable-next-line no-control-regex
  const ctl = /[\u0000-\u001f\u007f]/;
  if (ctl.test(i.adminPassword))
    errs.push(
      "harborAdminPassword: contains a control character (newline, tab...); choose a password of printable characters",
    );
  if (ctl.test(i.databasePassword))
    errs.push(
      "harborDatabasePassword: contains a control character (newline, tab...); choose a password of printable characters",
    );
  if (i.s3?.accessKey && !i.s3SecretKey)
    errs.push("s3SecretKey: is required with harbor.s3.accessKey; give the S3 secret key (secret)");
  if (i.s3SecretKey && !i.s3?.accessKey)
    errs.push("harbor.s3.accessKey: is required with an S3 secret key; set harbor.s3.accessKey");
  if (i.externalRedisPassword !== undefined && !i.externalRedis)
    errs.push(
      "externalRedisPassword: is set without harbor.externalRedis; remove it or configure harbor.externalRedis",
    );
  return errs;
}

/** The harbor.yml document as a plain object, keys in the template's order. */
export function harborYmlObject(i: HarborYmlInput): Record<string, unknown> {
  const errs = checkHarborYmlInput(i);
  if (errs.length) throw new Error(`harbor.yml cannot be rendered:\n  - ${errs.join("\n  - ")}`);
  const doc: Record<string, unknown> = {
    hostname: i.hostname,
    http: { port: i.httpPort },
    https: { port: i.httpsPort, certificate: i.certificatePath, private_key: i.privateKeyPath },
    harbor_admin_password: i.adminPassword,
    database: {
      password: i.databasePassword,
      max_idle_conns: 100,
      max_open_conns: 900,
      conn_max_lifetime: "5m",
      conn_max_idle_time: 0,
    },
    data_volume: i.dataVolume,
  };
  if (i.s3 || i.storageCaBundlePath) {
    const storage: Record<string, unknown> = {};
    if (i.storageCaBundlePath) storage.ca_bundle = i.storageCaBundlePath;
    if (i.s3) {
      const s3: Record<string, unknown> = { region: i.s3.region, bucket: i.s3.bucket };
      if (i.s3.regionEndpoint) s3.regionendpoint = i.s3.regionEndpoint;
      if (i.s3.accessKey) {
        s3.accesskey = i.s3.accessKey;
        s3.secretkey = i.s3SecretKey;
      }
      storage.s3 = s3;
    }
    doc.storage_service = storage;
  }
  doc.trivy = {
    ignore_unfixed: false,
    // Air gap: never download the vulnerability DBs, never call out while scanning.
    skip_update: true,
    skip_java_db_update: true,
    offline_scan: true,
    security_check: "vuln",
    insecure: false,
    timeout: "5m0s",
  };
  doc.jobservice = {
    max_job_workers: i.jobserviceWorkers,
    max_job_duration_hours: 24,
    job_loggers: ["STD_OUTPUT", "FILE"],
    logger_sweeper_duration: 1,
  };
  doc.notification = { webhook_job_max_retry: 3, webhook_job_http_client_timeout: 3 };
  doc.log = {
    level: i.logLevel,
    local: {
      rotate_count: i.logRotateCount,
      rotate_size: i.logRotateSize,
      location: i.logLocation ?? "/var/log/harbor",
    },
  };
  doc._version = harborConfigSchemaVersion(i.version);
  if (i.externalDatabase) {
    const d = i.externalDatabase;
    doc.external_database = {
      harbor: {
        host: d.host,
        port: d.port,
        db_name: d.coreDatabase,
        username: d.username,
        password: i.databasePassword,
        ssl_mode: d.sslmode,
        max_idle_conns: 2,
        max_open_conns: 0,
      },
    };
  }
  if (i.externalRedis) {
    const r = i.externalRedis;
    const redis: Record<string, unknown> = { host: `${r.host}:${r.port}` };
    if (i.externalRedisPassword) redis.password = i.externalRedisPassword;
    redis.registry_db_index = r.registryDbIndex;
    redis.jobservice_db_index = r.jobserviceDbIndex;
    redis.trivy_db_index = r.trivyDbIndex;
    redis.idle_timeout_seconds = 30;
    doc.external_redis = redis;
  }
  // Air gap: no proxy for any component.
  doc.proxy = { http_proxy: "", https_proxy: "", no_proxy: "", components: [] };
  doc.metric = { enabled: i.metrics.enabled, port: i.metrics.port, path: i.metrics.path };
  doc.upload_purging = { enabled: true, age: "168h", interval: "24h", dryrun: false };
  doc.cache = { enabled: false, expire_hours: 24 };
  return doc;
}

/** The harbor.yml text (one line per scalar: no folding, so line-based tools can read it). */
export function renderHarborYml(i: HarborYmlInput): string {
  return (
    "# Rendered by casd-registry (infra/harbor/compose); do not edit on the host.\n" +
    YAML.stringify(harborYmlObject(i), { lineWidth: 0 })
  );
}

/**
 * The same document with the admin password blanked: what decides whether
 * Harbor must be reconfigured. Harbor reads `harbor_admin_password` only at
 * its first start; a later change is applied through the API instead.
 */
export function renderHarborYmlForTrigger(i: HarborYmlInput): string {
  return renderHarborYml({ ...i, adminPassword: "<applied through the API>" });
}
