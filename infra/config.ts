/**
 * The stack's one typed config. `parseStackConfig` is pure: it takes the raw
 * values, applies defaults, validates everything, and either returns a typed
 * config or throws one `ConfigError` that lists every problem (key, bad value,
 * fix). `loadStackConfig` reads Pulumi config and wraps secrets.
 *
 * Every key lives in the `casd-registry` namespace; objects are set with
 * `pulumi config set --path`, secrets with `pulumi config set --secret`.
 */
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import {
  ConfigProblem,
  formatProblem,
  isDnsName,
  isIp,
  isSha256Hex,
  isSshPublicKey,
  PROJECT,
  Problems,
  Section,
} from "./config-checks";

export const DEPLOY_MODES = ["compose", "helm", "distribution"] as const;
export type DeployMode = (typeof DEPLOY_MODES)[number];

export const KEY_ALGORITHMS = ["ECDSA", "RSA"] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];
export const ECDSA_CURVES = ["P256", "P384"] as const;
export type EcdsaCurve = (typeof ECDSA_CURVES)[number];
export const RSA_BITS = [3072, 4096] as const;
export type RsaBits = (typeof RSA_BITS)[number];

export const RUNTIMES = ["docker", "containerd", "podman", "os", "k3s", "rke2"] as const;
export type Runtime = (typeof RUNTIMES)[number];

/** 200 days: the CA/Browser Forum cap on server certificate validity since 2026-03-15. */
export const MAX_SERVER_VALIDITY_HOURS = 200 * 24;
export const HOURS_PER_YEAR = 8760;

/** Secret config keys (top-level, set with `pulumi config set --secret`). */
export const SECRET_KEYS = [
  "sshPrivateKey",
  "bastionPrivateKey",
  "pkiCaKeyPem",
  "harborAdminPassword",
  "harborDatabasePassword",
  "kubeconfig",
  "distributionPassword",
  "harborInternalSeed",
  "harborS3SecretKey",
  "harborRedisPassword",
] as const;
export type SecretKey = (typeof SECRET_KEYS)[number];

/** Values Harbor's templates ship with; never acceptable as a real secret. */
export const HARBOR_DEFAULT_SECRETS = [
  "Harbor12345",
  "root123",
  "not-a-secure-key",
  "changeit",
  "harbor_registry_password",
];

export interface SshEndpoint {
  /** IPv4 or IPv6 address of the host. */
  address: string;
  /** SSH port (default 22). */
  port: number;
  /** Login user (default root). */
  user: string;
  /** The host's public key line (`ssh-ed25519 AAAA...`), pinned on every connection. */
  hostKey: string;
}

export interface RegistryHostConfig extends SshEndpoint {
  /** Run remote steps through `sudo -n` (default: when the user is not root). */
  sudo: boolean;
  /** Optional jump host, with its own pinned key. */
  bastion?: SshEndpoint;
  /** How many failed dials before giving up (default 10). */
  dialErrorLimit: number;
  /** Seconds per dial attempt (default 15). */
  perDialTimeout: number;
  /** Registry data (Harbor's data_volume, Distribution's storage). */
  dataDir: string;
  /** Where the server certificate, its key and the CA live. */
  certDir: string;
  /** Where installers are uploaded and extracted. */
  installDir: string;
  /** Free space the data volume must have, GiB (default 40). */
  minFreeGiB: number;
  /** Pin the registry name in the host's /etc/hosts (default true). */
  etcHosts: boolean;
  /** Largest clock difference tolerated between the host and the operator's machine (default 120 s). */
  maxClockSkewSeconds: number;
}

export interface KeySpec {
  algorithm: KeyAlgorithm;
  ecdsaCurve: EcdsaCurve;
  rsaBits: RsaBits;
}

export interface PkiConfig {
  /** `generate` a CA with @pulumi/tls, or use the CA the site `provided`. */
  caSource: "generate" | "provided";
  ca: KeySpec & {
    commonName: string;
    organization: string;
    organizationalUnit: string;
    validityHours: number;
    /** Protect the CA key and certificate against deletion (default true). */
    protect: boolean;
    /** Bump to replace the CA key and certificate (CA rotation; needs protect false for that run). */
    rotation: number;
  };
  server: KeySpec & {
    organization: string;
    validityHours: number;
    earlyRenewalHours: number;
    /** DNS names beyond the registry hostname. */
    extraDnsNames: string[];
    /** IP addresses beyond the registry host's address. */
    extraIpAddresses: string[];
    /** Bump to replace the server key and certificate now (forced renewal). */
    rotation: number;
  };
  /** The site's CA certificate (PEM), then its issuers up to the root, when caSource is provided. */
  providedCaCertPem?: string;
  /** The site's CA key (PEM, secret), when caSource is provided. */
  providedCaKeyPem?: pulumi.Output<string>;
}

export interface ExternalDatabase {
  host: string;
  port: number;
  username: string;
  coreDatabase: string;
  sslmode: "disable" | "require" | "verify-ca" | "verify-full";
}

export interface ExternalRedis {
  host: string;
  port: number;
  registryDbIndex: number;
  jobserviceDbIndex: number;
  trivyDbIndex: number;
}

export interface S3Storage {
  region: string;
  bucket: string;
  regionEndpoint?: string;
  /** Access key id; the secret key comes from config secret harborS3SecretKey. */
  accessKey?: string;
  /** CA certificate(s) (PEM) of a private S3 endpoint, given to the registry as its storage CA bundle (helm). */
  caBundlePem?: string;
}

export interface HarborConfig {
  version: string;
  installerPath?: string;
  installerSha256?: string;
  signaturePath?: string;
  signingKeyPath?: string;
  httpsPort: number;
  /** `redirect`: port 80 answers with a redirect to https; `off`: no http listener. */
  http: "off" | "redirect";
  httpPort: number;
  withTrivy: boolean;
  jobserviceWorkers: number;
  logLevel: "debug" | "info" | "warning" | "error" | "fatal";
  logRotateCount: number;
  logRotateSize: string;
  metrics: { enabled: boolean; port: number; path: string };
  externalDatabase?: ExternalDatabase;
  externalRedis?: ExternalRedis;
  s3?: S3Storage;
  purgeDataOnDestroy: boolean;
  healthTimeoutSeconds: number;
  adminPassword?: pulumi.Output<string>;
  databasePassword?: pulumi.Output<string>;
  /** S3 secret access key (secret harborS3SecretKey); with harbor.s3.accessKey. */
  s3SecretKey?: pulumi.Output<string>;
  /** Password of the external Redis (secret harborRedisPassword; optional). */
  redisPassword?: pulumi.Output<string>;
}

export interface HelmConfig {
  chartPath?: string;
  chartSha256?: string;
  chartVersion: string;
  namespace: string;
  kubeContext?: string;
  kubeconfig?: pulumi.Output<string>;
  expose: "ingress" | "nodePort" | "loadBalancer";
  ingressClass: string;
  storageClass?: string;
  /** host[:port] of the mirror (bootstrap) registry holding Harbor's images. */
  mirrorRegistry?: string;
  imageTag: string;
  imagePullSecrets: string[];
  replicas: { core: number; portal: number; registry: number; jobservice: number; trivy: number };
  nodeTrust: boolean;
  /** Create the namespace (kept on destroy: it holds the PVCs); false when the cluster's owners created it (default true). */
  createNamespace: boolean;
  /** The https node port when expose is nodePort (default 30003); externalURL then carries it. */
  httpsNodePort: number;
  /** PVC sizes (default registry 200Gi, jobservice 1Gi, database 5Gi, redis 1Gi, trivy 5Gi). */
  volumeSizes: {
    registry: string;
    jobservice: string;
    database: string;
    redis: string;
    trivy: string;
  };
  /** The node-trust DaemonSet's image, `repository:tag` under the mirror registry (default casd/node-trust:1.0.0; needs bash and coreutils). */
  nodeTrustImage: string;
  /** The node-trust DaemonSet also writes the CA into the OS store directory (default false). */
  nodeTrustOsStore: boolean;
  /** Seconds Helm waits for the release to become ready (default 900). */
  timeoutSeconds: number;
  /** Seed (secret harborInternalSeed, 32+ characters) from which Harbor's internal secrets are derived; required for helm. */
  internalSeed?: pulumi.Output<string>;
}

/** The bootstrap mirror (Helm path): a second Distribution on the registry host holding Harbor's images. */
export interface DistributionMirrorConfig {
  /** Run the mirror and push Harbor's images into it (default false). */
  enabled: boolean;
  /** DNS name clients use for the mirror; must be the stack hostname or in pki.server.extraDnsNames (default: hostname). */
  hostname: string;
  /** The mirror's HTTPS port (default 5443). */
  port: number;
  /** Loopback port of the mirror's debug/health listener (default 5444). */
  debugPort: number;
  /** `harbor.v<version>.tar.gz` from the offline installer (the `docker save` archive of Harbor's images). */
  harborImagesArchivePath?: string;
  /** sha256 of that archive. */
  harborImagesArchiveSha256?: string;
}

export interface DistributionConfig {
  imageArchivePath?: string;
  imageArchiveSha256?: string;
  image: string;
  port: number;
  username: string;
  password?: pulumi.Output<string>;
  /** Container networking: `host` listens on the host's port directly; any other value is the Docker network whose container port is published (default bridge). */
  network: string;
  /** Key file on the machine running `pulumi up` for the docker provider's ssh (default: the ssh agent or ~/.ssh/config). */
  identityFile?: string;
  /** Loopback port of the registry's debug/health listener, used by the container healthcheck (default 5001). */
  debugPort: number;
  /** Allow deleting manifests and blobs through the API (default false). */
  deleteEnabled: boolean;
  mirror: DistributionMirrorConfig;
}

export interface ClientConfig extends SshEndpoint {
  /** Unique name; names the node's resources. */
  name: string;
  runtimes: Runtime[];
  sudo: boolean;
  /** Pin the registry name to this address in the node's /etc/hosts. */
  etcHostsAddress?: string;
  /** Restart containerd when its config_path had to be set (default false: only say so). */
  restartContainerd: boolean;
  /** Grant the push capability in containerd's hosts.toml (default false). */
  push: boolean;
}

export interface TrustConfig {
  /** Previous CA certificate (PEM) kept trusted during a CA rotation's overlap window. */
  previousCaCertPem?: string;
  /** Verify from each node that the registry's certificate verifies (default true). */
  verify: boolean;
}

export interface StackConfig {
  hostname: string;
  deploy: DeployMode;
  registryHost: RegistryHostConfig;
  sshPrivateKey: pulumi.Output<string>;
  bastionPrivateKey?: pulumi.Output<string>;
  pki: PkiConfig;
  harbor: HarborConfig;
  helm: HelmConfig;
  distribution: DistributionConfig;
  clients: ClientConfig[];
  trust: TrustConfig;
}

/** Raw input: every config key's value (objects parsed from JSON) and secret plaintexts. */
export interface RawStackConfig {
  values: Record<string, unknown>;
  /** Plaintext of secret keys; only used to validate and then wrapped with pulumi.secret. */
  secrets: Partial<Record<SecretKey, string>>;
  /** Keys whose values are stored encrypted in the stack (others are plain text). */
  encryptedKeys: ReadonlySet<string>;
}

/** All config problems at once; nothing was created. */
export class ConfigError extends pulumi.RunError {
  constructor(readonly problems: ConfigProblem[]) {
    super(
      `Stack config has ${problems.length} problem${problems.length === 1 ? "" : "s"}; nothing was changed:\n` +
        problems.map((p) => `  - ${formatProblem(p)}`).join("\n"),
    );
    this.name = "ConfigError";
  }
}

const TOP_LEVEL_KEYS = [
  "hostname",
  "deploy",
  "registryHost",
  "pki",
  "pkiCaCertPem",
  "harbor",
  "helm",
  "distribution",
  "clients",
  "trust",
  ...SECRET_KEYS,
];

const VERSION_RE = /^\d+\.\d+\.\d+$/;
const PEM_CHAIN_RE =
  /^(-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----\s*)+$/;

function endpoint(s: Section, defaults: { user: string }): SshEndpoint {
  const address = s.requireString(
    "address",
    `set it: pulumi config set --path ${s.key("address")} <IP address>`,
  );
  if (address && !isIp(address)) {
    s.problems.add(
      s.key("address"),
      address,
      "is not an IPv4 or IPv6 address",
      `set ${s.key("address")} to the host's IP address`,
    );
  }
  const port = s.int("port", 22, 1, 65535);
  const user = s.string("user", defaults.user) ?? defaults.user;
  if (!/^[a-z_][a-z0-9_.-]{0,31}$/i.test(user)) {
    s.problems.add(
      s.key("user"),
      user,
      "is not a valid login name",
      `set ${s.key("user")} to the SSH login user`,
    );
  }
  const hostKey = s.string("hostKey") ?? "";
  if (!hostKey) {
    s.problems.add(
      s.key("hostKey"),
      undefined,
      "is required: without it host keys are not checked at all",
      `pin the host's key: ssh-keyscan -t ed25519 ${address || "<address>"} | cut -d' ' -f2- , then pulumi config set --path ${s.key("hostKey")} '<type> <base64>'`,
    );
  } else if (!isSshPublicKey(hostKey)) {
    s.problems.add(
      s.key("hostKey"),
      hostKey,
      "is not an OpenSSH public key line",
      `set ${s.key("hostKey")} to '<type> <base64>' as in the host's /etc/ssh/ssh_host_ed25519_key.pub`,
    );
  }
  return { address, port, user, hostKey: hostKey.trim().split(" ").slice(0, 2).join(" ") };
}

function absPath(s: Section, field: string, def: string): string {
  const v = s.string(field, def) ?? def;
  if (!/^\/[A-Za-z0-9._/-]*$/.test(v) || v.split("/").includes("..") || v === "/") {
    s.problems.add(
      s.key(field),
      v,
      "must be an absolute path of letters, digits, '.', '_', '-' and '/' (not / itself)",
      `set ${s.key(field)} to a path such as ${def}`,
    );
    return def;
  }
  return v.replace(/\/+$/, "");
}

function keySpec(s: Section, defaults: { curve: EcdsaCurve }): KeySpec {
  const rawAlg = s.raw("keyAlgorithm");
  const algorithm = s.oneOf("keyAlgorithm", KEY_ALGORITHMS, "ECDSA");
  const rawCurve = s.raw("ecdsaCurve");
  const ecdsaCurve = s.oneOf("ecdsaCurve", ECDSA_CURVES, defaults.curve);
  const rawBits = s.raw("rsaBits");
  let rsaBits: RsaBits = 3072;
  if (rawBits !== undefined) {
    const n = Number(rawBits);
    if ((RSA_BITS as readonly number[]).includes(n)) rsaBits = n as RsaBits;
    else
      s.problems.add(
        s.key("rsaBits"),
        rawBits,
        "is not an allowed RSA key size (3072 or 4096)",
        `set ${s.key("rsaBits")} to 3072 or 4096`,
      );
  }
  if (algorithm === "ECDSA" && rawBits !== undefined && rawAlg !== undefined) {
    s.problems.add(
      s.key("rsaBits"),
      rawBits,
      "is set but keyAlgorithm is ECDSA",
      `remove ${s.key("rsaBits")} or set ${s.key("keyAlgorithm")} to RSA`,
    );
  }
  if (algorithm === "RSA" && rawCurve !== undefined) {
    s.problems.add(
      s.key("ecdsaCurve"),
      rawCurve,
      "is set but keyAlgorithm is RSA",
      `remove ${s.key("ecdsaCurve")} or set ${s.key("keyAlgorithm")} to ECDSA`,
    );
  }
  return { algorithm, ecdsaCurve, rsaBits };
}

function dnsNames(s: Section, field: string): string[] {
  const names = s.stringList(field);
  for (const n of names) {
    if (!isDnsName(n))
      s.problems.add(
        s.key(field),
        n,
        "is not a DNS name",
        `use names of letters, digits and hyphens separated by dots in ${s.key(field)}`,
      );
  }
  return names;
}

function ipList(s: Section, field: string): string[] {
  const ips = s.stringList(field);
  for (const ip of ips) {
    if (!isIp(ip))
      s.problems.add(
        s.key(field),
        ip,
        "is not an IP address",
        `list IPv4 or IPv6 addresses in ${s.key(field)}`,
      );
  }
  return ips;
}

function sha256(s: Section, field: string): string | undefined {
  const v = s.string(field);
  if (v !== undefined && !isSha256Hex(v)) {
    s.problems.add(
      s.key(field),
      v,
      "is not a sha256 (64 lowercase hex digits)",
      `set ${s.key(field)} to the output of sha256sum <file>`,
    );
    return undefined;
  }
  return v;
}

function secretValue(
  raw: RawStackConfig,
  problems: Problems,
  key: SecretKey,
  required: { why: string; fix: string } | undefined,
): pulumi.Output<string> | undefined {
  const v = raw.secrets[key];
  if (v === undefined || v === "") {
    if (required) problems.add(key, undefined, `is required ${required.why}`, required.fix);
    return undefined;
  }
  if (!raw.encryptedKeys.has(key)) {
    problems.add(
      key,
      v,
      "is stored in plain text in the stack file",
      `set it again with: pulumi config set --secret ${key} (and remove the plain value from history)`,
      true,
    );
  }
  return pulumi.secret(v);
}

function password(
  raw: RawStackConfig,
  problems: Problems,
  key: SecretKey,
  required: boolean,
  why: string,
): pulumi.Output<string> | undefined {
  const out = secretValue(
    raw,
    problems,
    key,
    required ? { why, fix: `pulumi config set --secret ${key} <a strong password>` } : undefined,
  );
  const v = raw.secrets[key];
  if (v) {
    if (HARBOR_DEFAULT_SECRETS.includes(v)) {
      problems.add(
        key,
        v,
        "is a default value published with Harbor",
        `choose a new password: pulumi config set --secret ${key} <a strong password>`,
        true,
      );
    } else if (v.length < 12 || !/[a-z]/.test(v) || !/[A-Z]/.test(v) || !/[0-9]/.test(v)) {
      problems.add(
        key,
        v,
        "is too weak (Harbor requires 8 to 128 characters with upper and lower case and digits; this stack asks at least 12)",
        `pulumi config set --secret ${key} <at least 12 characters with upper and lower case letters and digits>`,
        true,
      );
    } else if (v.length > 128) {
      problems.add(
        key,
        v,
        "is longer than the 128 characters Harbor accepts",
        `pulumi config set --secret ${key} <a shorter password>`,
        true,
      );
    }
  }
  return out;
}

function parseRegistryHost(top: Section): RegistryHostConfig {
  const s = top.section("registryHost");
  const base = endpoint(s, { user: "root" });
  const sudo = s.bool("sudo", base.user !== "root");
  let bastion: SshEndpoint | undefined;
  if (s.has("bastion")) bastion = endpoint(s.section("bastion"), { user: base.user });
  const cfg: RegistryHostConfig = {
    ...base,
    sudo,
    bastion,
    dialErrorLimit: s.int("dialErrorLimit", 10, 1, 100),
    perDialTimeout: s.int("perDialTimeout", 15, 1, 300, "seconds"),
    dataDir: absPath(s, "dataDir", "/data"),
    certDir: absPath(s, "certDir", "/etc/casd-registry/tls"),
    installDir: absPath(s, "installDir", "/opt/casd-registry"),
    minFreeGiB: s.int("minFreeGiB", 40, 0, 1048576, "GiB"),
    etcHosts: s.bool("etcHosts", true),
    maxClockSkewSeconds: s.int("maxClockSkewSeconds", 120, 1, 3600, "seconds"),
  };
  s.rejectUnknown();
  return cfg;
}

function parsePki(top: Section, raw: RawStackConfig, problems: Problems): PkiConfig {
  const s = top.section("pki");
  const caSource = s.oneOf("caSource", ["generate", "provided"] as const, "generate");
  const ca = s.section("ca");
  const caKey = keySpec(ca, { curve: "P384" });
  const caCfg = {
    ...caKey,
    commonName: ca.string("commonName", "CASD Registry Root CA") ?? "",
    organization: ca.string("organization", "CASD") ?? "",
    organizationalUnit: ca.string("organizationalUnit", "Platform") ?? "",
    validityHours: ca.int(
      "validityHours",
      10 * HOURS_PER_YEAR,
      HOURS_PER_YEAR,
      25 * HOURS_PER_YEAR,
      "hours",
    ),
    protect: ca.bool("protect", true),
    rotation: ca.int("rotation", 0, 0, 1000000),
  };
  ca.rejectUnknown();

  const sv = s.section("server");
  const svKey = keySpec(sv, { curve: "P256" });
  const validityHours = sv.int(
    "validityHours",
    MAX_SERVER_VALIDITY_HOURS,
    24,
    MAX_SERVER_VALIDITY_HOURS,
    "hours",
  );
  const earlyRenewalHours = sv.int(
    "earlyRenewalHours",
    Math.floor(validityHours / 3),
    1,
    MAX_SERVER_VALIDITY_HOURS,
    "hours",
  );
  if (earlyRenewalHours >= validityHours) {
    problems.add(
      sv.key("earlyRenewalHours"),
      earlyRenewalHours,
      `is not smaller than pki.server.validityHours (${validityHours})`,
      `set ${sv.key("earlyRenewalHours")} below the validity, e.g. ${Math.floor(validityHours / 3)} (a third)`,
    );
  }
  const server = {
    ...svKey,
    organization: sv.string("organization", caCfg.organization) ?? "",
    validityHours,
    earlyRenewalHours,
    extraDnsNames: dnsNames(sv, "extraDnsNames"),
    extraIpAddresses: ipList(sv, "extraIpAddresses"),
    rotation: sv.int("rotation", 0, 0, 1000000),
  };
  sv.rejectUnknown();
  s.rejectUnknown();

  if (caSource === "generate" && validityHours > caCfg.validityHours) {
    problems.add(
      sv.key("validityHours"),
      validityHours,
      "outlives the CA",
      `raise pki.ca.validityHours or lower ${sv.key("validityHours")}`,
    );
  }

  const pki: PkiConfig = { caSource, ca: caCfg, server };
  const certPem = top.string("pkiCaCertPem");
  if (caSource === "provided") {
    if (!certPem) {
      problems.add(
        "pkiCaCertPem",
        undefined,
        "is required when pki.caSource is provided",
        'pulumi config set pkiCaCertPem -- "$(cat site-ca.crt)"',
      );
    } else if (!PEM_CHAIN_RE.test(certPem.trim())) {
      problems.add(
        "pkiCaCertPem",
        certPem,
        "is not PEM certificates",
        "set it to the PEM text of the site CA's certificate (then its issuers, if any)",
      );
    }
    pki.providedCaCertPem = certPem?.trim() + "\n";
    pki.providedCaKeyPem = secretValue(raw, problems, "pkiCaKeyPem", {
      why: "when pki.caSource is provided",
      fix: 'pulumi config set --secret pkiCaKeyPem -- "$(cat site-ca.key)"',
    });
    const keyPem = raw.secrets.pkiCaKeyPem;
    if (keyPem && !/-----BEGIN (EC |RSA )?PRIVATE KEY-----/.test(keyPem)) {
      problems.add(
        "pkiCaKeyPem",
        keyPem,
        "is not a PEM private key",
        "set it to the PEM text of the site CA's unencrypted private key",
        true,
      );
    } else if (keyPem && certPem && PEM_CHAIN_RE.test(certPem.trim())) {
      checkProvidedCa(certPem, keyPem, problems);
    }
  } else {
    if (certPem)
      problems.add(
        "pkiCaCertPem",
        certPem,
        "is set but pki.caSource is generate",
        "remove pkiCaCertPem or set pki.caSource to provided",
      );
    if (raw.secrets.pkiCaKeyPem)
      problems.add(
        "pkiCaKeyPem",
        raw.secrets.pkiCaKeyPem,
        "is set but pki.caSource is generate",
        "remove pkiCaKeyPem or set pki.caSource to provided",
        true,
      );
  }
  return pki;
}

/** The site's CA must be a CA, currently valid, and match its key. */
function checkProvidedCa(certPem: string, keyPem: string, problems: Problems): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(
      certPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)![0],
    );
  } catch (e) {
    problems.add(
      "pkiCaCertPem",
      "(first certificate)",
      `cannot be parsed (${(e as Error).message})`,
      "set it to the site CA's PEM certificate",
    );
    return;
  }
  if (!cert.ca)
    problems.add(
      "pkiCaCertPem",
      cert.subject.replace(/\n/g, ", "),
      "is not a CA certificate (basicConstraints CA:TRUE missing)",
      "supply the CA that signs, not a leaf certificate",
    );
  const now = Date.now();
  if (Date.parse(cert.validTo) <= now || Date.parse(cert.validFrom) > now) {
    problems.add(
      "pkiCaCertPem",
      `${cert.validFrom} .. ${cert.validTo}`,
      "is not valid now",
      "supply a CA certificate that is currently valid",
    );
  }
  try {
    const pub = createPublicKey(createPrivateKey(keyPem)).export({ type: "spki", format: "der" });
    if (!pub.equals(cert.publicKey.export({ type: "spki", format: "der" }))) {
      problems.add(
        "pkiCaKeyPem",
        keyPem,
        "does not belong to the certificate in pkiCaCertPem",
        "supply the private key of that CA certificate",
        true,
      );
    }
  } catch (e) {
    problems.add(
      "pkiCaKeyPem",
      keyPem,
      `cannot be read (${(e as Error).message})`,
      "supply an unencrypted PEM private key",
      true,
    );
  }
}

function parseHarbor(
  top: Section,
  raw: RawStackConfig,
  problems: Problems,
  deploy: DeployMode,
): HarborConfig {
  const s = top.section("harbor");
  const version = s.string("version", "2.15.1") ?? "2.15.1";
  if (!VERSION_RE.test(version))
    s.problems.add(
      s.key("version"),
      version,
      "is not a version like 2.15.1",
      `set ${s.key("version")} to the installer's version without the v`,
    );
  const installerPath = s.string("installerPath");
  const installerSha256 = sha256(s, "installerSha256");
  if (deploy === "compose") {
    if (!installerPath)
      problems.add(
        s.key("installerPath"),
        undefined,
        "is required when deploy is compose",
        `point it at the offline installer in the bundle: pulumi config set --path ${s.key("installerPath")} offline/bundle/harbor-offline-installer-v${version}.tgz`,
      );
    if (!s.has("installerSha256"))
      problems.add(
        s.key("installerSha256"),
        undefined,
        "is required when deploy is compose",
        `pulumi config set --path ${s.key("installerSha256")} $(sha256sum <installer> | cut -d' ' -f1)`,
      );
  }
  const signaturePath = s.string("signaturePath");
  const signingKeyPath = s.string("signingKeyPath");
  if ((signaturePath === undefined) !== (signingKeyPath === undefined)) {
    problems.add(
      s.key(signaturePath ? "signingKeyPath" : "signaturePath"),
      undefined,
      "is required when the other of signaturePath/signingKeyPath is set",
      "set both (the .asc and the pinned public key file) or neither",
    );
  }
  const httpsPort = s.int("httpsPort", 443, 1, 65535);
  const http = s.oneOf("http", ["off", "redirect"] as const, "redirect");
  const httpPort = s.int("httpPort", 80, 1, 65535);
  if (http === "redirect" && httpPort === httpsPort)
    problems.add(
      s.key("httpPort"),
      httpPort,
      "equals harbor.httpsPort",
      `choose another port for ${s.key("httpPort")}`,
    );
  const m = s.section("metrics");
  const metrics = {
    enabled: m.bool("enabled", false),
    port: m.int("port", 9090, 1, 65535),
    path: m.string("path", "/metrics") ?? "/metrics",
  };
  m.rejectUnknown();
  const logRotateSize = s.string("logRotateSize", "200M") ?? "200M";
  if (!/^\d+[KMG]$/.test(logRotateSize))
    s.problems.add(
      s.key("logRotateSize"),
      logRotateSize,
      "is not a size like 200M",
      `set ${s.key("logRotateSize")} to a number followed by K, M or G`,
    );

  let externalDatabase: ExternalDatabase | undefined;
  if (s.has("externalDatabase")) {
    const d = s.section("externalDatabase");
    externalDatabase = {
      host: d.requireString("host", `set ${d.key("host")} to the PostgreSQL host`),
      port: d.int("port", 5432, 1, 65535),
      username: d.string("username", "harbor") ?? "harbor",
      coreDatabase: d.string("coreDatabase", "registry") ?? "registry",
      sslmode: d.oneOf(
        "sslmode",
        ["disable", "require", "verify-ca", "verify-full"] as const,
        "verify-full",
      ),
    };
    d.rejectUnknown();
  }
  let externalRedis: ExternalRedis | undefined;
  if (s.has("externalRedis")) {
    const r = s.section("externalRedis");
    externalRedis = {
      host: r.requireString("host", `set ${r.key("host")} to the Redis host`),
      port: r.int("port", 6379, 1, 65535),
      registryDbIndex: r.int("registryDbIndex", 1, 0, 15),
      jobserviceDbIndex: r.int("jobserviceDbIndex", 2, 0, 15),
      trivyDbIndex: r.int("trivyDbIndex", 5, 0, 15),
    };
    r.rejectUnknown();
  }
  let s3: S3Storage | undefined;
  if (s.has("s3")) {
    const o = s.section("s3");
    s3 = {
      region: o.requireString("region", `set ${o.key("region")}`),
      bucket: o.requireString("bucket", `set ${o.key("bucket")}`),
      regionEndpoint: o.string("regionEndpoint"),
      accessKey: o.string("accessKey"),
      caBundlePem: o.string("caBundlePem"),
    };
    if (
      s3.caBundlePem !== undefined &&
      !/^-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----$/.test(s3.caBundlePem.trim())
    ) {
      o.problems.add(
        o.key("caBundlePem"),
        s3.caBundlePem,
        "is not PEM certificates",
        `set ${o.key("caBundlePem")} to the PEM text of the S3 endpoint's CA`,
      );
    }
    if (s3.regionEndpoint && !/^https:\/\//.test(s3.regionEndpoint))
      o.problems.add(
        o.key("regionEndpoint"),
        s3.regionEndpoint,
        "is not an https URL",
        `use https:// for ${o.key("regionEndpoint")}`,
      );
    o.rejectUnknown();
  }
  const harborDeploy = deploy === "compose" || deploy === "helm";
  const cfg: HarborConfig = {
    version,
    installerPath,
    installerSha256,
    signaturePath,
    signingKeyPath,
    httpsPort,
    http,
    httpPort,
    withTrivy: s.bool("withTrivy", true),
    jobserviceWorkers: s.int("jobserviceWorkers", 10, 1, 100),
    logLevel: s.oneOf("logLevel", ["debug", "info", "warning", "error", "fatal"] as const, "info"),
    logRotateCount: s.int("logRotateCount", 50, 1, 1000),
    logRotateSize,
    metrics,
    externalDatabase,
    externalRedis,
    s3,
    purgeDataOnDestroy: s.bool("purgeDataOnDestroy", false),
    healthTimeoutSeconds: s.int("healthTimeoutSeconds", 600, 10, 7200, "seconds"),
    adminPassword: password(
      raw,
      problems,
      "harborAdminPassword",
      harborDeploy,
      "when deploy is compose or helm",
    ),
    databasePassword: password(
      raw,
      problems,
      "harborDatabasePassword",
      harborDeploy,
      "when deploy is compose or helm",
    ),
    s3SecretKey: secretValue(
      raw,
      problems,
      "harborS3SecretKey",
      s3?.accessKey
        ? {
            why: "when harbor.s3.accessKey is set",
            fix: "pulumi config set --secret harborS3SecretKey <the S3 secret access key>",
          }
        : undefined,
    ),
    redisPassword: secretValue(raw, problems, "harborRedisPassword", undefined),
  };
  if (cfg.s3SecretKey && !s3?.accessKey)
    problems.add(
      "harborS3SecretKey",
      "[secret]",
      "is set but harbor.s3.accessKey is not",
      `set ${s.key("s3")}.accessKey too, or remove harborS3SecretKey`,
    );
  if (cfg.redisPassword && !externalRedis)
    problems.add(
      "harborRedisPassword",
      "[secret]",
      "is set but harbor.externalRedis is not",
      `configure ${s.key("externalRedis")}, or remove harborRedisPassword`,
    );
  s.rejectUnknown();
  return cfg;
}

function parseHelm(
  top: Section,
  raw: RawStackConfig,
  problems: Problems,
  deploy: DeployMode,
  harborVersion: string,
): HelmConfig {
  const s = top.section("helm");
  const chartVersion = s.string("chartVersion", "1.19.1") ?? "1.19.1";
  if (!VERSION_RE.test(chartVersion))
    s.problems.add(
      s.key("chartVersion"),
      chartVersion,
      "is not a version like 1.19.1",
      `set ${s.key("chartVersion")} to the chart's version`,
    );
  const chartPath = s.string("chartPath");
  const chartSha256 = sha256(s, "chartSha256");
  const namespace = s.string("namespace", "harbor") ?? "harbor";
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace))
    s.problems.add(
      s.key("namespace"),
      namespace,
      "is not a Kubernetes namespace name",
      `use lowercase letters, digits and '-' in ${s.key("namespace")}`,
    );
  const kubeContext = s.string("kubeContext");
  const kubeconfig = secretValue(raw, problems, "kubeconfig", undefined);
  const mirrorRegistry = s.string("mirrorRegistry");
  if (mirrorRegistry !== undefined) {
    const [h, p, ...rest] = mirrorRegistry.split(":");
    if (rest.length || !isDnsName(h) || (p !== undefined && !/^\d{1,5}$/.test(p)))
      s.problems.add(
        s.key("mirrorRegistry"),
        mirrorRegistry,
        "is not host[:port]",
        `set ${s.key("mirrorRegistry")} to the bootstrap registry, e.g. mirror.casd.local:5000`,
      );
  }
  if (deploy === "helm") {
    if (!chartPath)
      problems.add(
        s.key("chartPath"),
        undefined,
        "is required when deploy is helm",
        `point it at the chart archive in the bundle: pulumi config set --path ${s.key("chartPath")} offline/bundle/harbor-${chartVersion}.tgz`,
      );
    if (!s.has("chartSha256"))
      problems.add(
        s.key("chartSha256"),
        undefined,
        "is required when deploy is helm",
        `pulumi config set --path ${s.key("chartSha256")} $(sha256sum <chart> | cut -d' ' -f1)`,
      );
    if (!kubeconfig && !kubeContext)
      problems.add(
        s.key("kubeContext"),
        undefined,
        "is required when deploy is helm and no kubeconfig secret is set",
        `pulumi config set --secret kubeconfig -- "$(cat kubeconfig)" or pulumi config set --path ${s.key("kubeContext")} <context>`,
      );
    if (!mirrorRegistry)
      problems.add(
        s.key("mirrorRegistry"),
        undefined,
        "is required when deploy is helm (nodes cannot pull Harbor's images from the internet)",
        `pulumi config set --path ${s.key("mirrorRegistry")} <bootstrap registry host:port>`,
      );
  }
  const r = s.section("replicas");
  const replicas = {
    core: r.int("core", 1, 1, 20),
    portal: r.int("portal", 1, 1, 20),
    registry: r.int("registry", 1, 1, 20),
    jobservice: r.int("jobservice", 1, 1, 20),
    trivy: r.int("trivy", 1, 1, 20),
  };
  r.rejectUnknown();
  const v = s.section("volumeSizes");
  const size = (field: string, def: string): string => {
    const x = v.string(field, def) ?? def;
    if (!/^[1-9]\d*(Mi|Gi|Ti)$/.test(x)) {
      v.problems.add(
        v.key(field),
        x,
        "is not a size like 10Gi",
        `set ${v.key(field)} to a whole number followed by Mi, Gi or Ti`,
      );
      return def;
    }
    return x;
  };
  const volumeSizes = {
    registry: size("registry", "200Gi"),
    jobservice: size("jobservice", "1Gi"),
    database: size("database", "5Gi"),
    redis: size("redis", "1Gi"),
    trivy: size("trivy", "5Gi"),
  };
  v.rejectUnknown();
  const nodeTrustImage =
    s.string("nodeTrustImage", "casd/node-trust:1.0.0") ?? "casd/node-trust:1.0.0";
  if (
    !/^[a-z0-9]+([._/-][a-z0-9]+)*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(nodeTrustImage) ||
    nodeTrustImage.endsWith(":latest")
  ) {
    s.problems.add(
      s.key("nodeTrustImage"),
      nodeTrustImage,
      "is not repository:tag with a pinned tag (no registry host, not latest)",
      `set ${s.key("nodeTrustImage")} to a path under the mirror, e.g. casd/node-trust:1.0.0`,
    );
  }
  const internalSeed = secretValue(
    raw,
    problems,
    "harborInternalSeed",
    deploy === "helm"
      ? {
          why: "when deploy is helm (Harbor's internal secrets are derived from it)",
          fix: 'pulumi config set --secret harborInternalSeed "$(openssl rand -base64 48)"',
        }
      : undefined,
  );
  const seedText = raw.secrets.harborInternalSeed;
  if (seedText !== undefined && seedText !== "" && seedText.length < 32) {
    problems.add(
      "harborInternalSeed",
      "[secret]",
      "is shorter than 32 characters",
      'pulumi config set --secret harborInternalSeed "$(openssl rand -base64 48)"',
      true,
    );
  }
  const cfg: HelmConfig = {
    chartPath,
    chartSha256,
    chartVersion,
    namespace,
    kubeContext,
    kubeconfig,
    expose: s.oneOf("expose", ["ingress", "nodePort", "loadBalancer"] as const, "ingress"),
    ingressClass: s.string("ingressClass", "nginx") ?? "nginx",
    storageClass: s.string("storageClass"),
    mirrorRegistry,
    imageTag: s.string("imageTag", `v${harborVersion}`) ?? `v${harborVersion}`,
    imagePullSecrets: s.stringList("imagePullSecrets"),
    replicas,
    nodeTrust: s.bool("nodeTrust", true),
    createNamespace: s.bool("createNamespace", true),
    httpsNodePort: s.int("httpsNodePort", 30003, 30000, 32767),
    volumeSizes,
    nodeTrustImage,
    nodeTrustOsStore: s.bool("nodeTrustOsStore", false),
    timeoutSeconds: s.int("timeoutSeconds", 900, 60, 7200, "seconds"),
    internalSeed,
  };
  s.rejectUnknown();
  return cfg;
}

function parseDistribution(
  top: Section,
  raw: RawStackConfig,
  problems: Problems,
  deploy: DeployMode,
  hostname: string,
  pkiDnsNames: string[],
  helmMirror: string | undefined,
): DistributionConfig {
  const s = top.section("distribution");
  const image = s.string("image", "registry:2.8.3") ?? "registry:2.8.3";
  if (/:latest$/.test(image) || !/[:@]/.test(image.split("/").pop() ?? ""))
    s.problems.add(
      s.key("image"),
      image,
      "has no pinned tag (or uses latest)",
      `set ${s.key("image")} to name:tag or name@sha256:...`,
    );
  const m = s.section("mirror");
  const mirrorEnabled = m.bool("enabled", false);
  const username = s.string("username", "casd") ?? "casd";
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(username))
    s.problems.add(
      s.key("username"),
      username,
      "is not a user name of letters, digits, '.', '_' and '-' (no ':')",
      `set ${s.key("username")} to a name such as casd`,
    );
  const network = s.string("network", "bridge") ?? "bridge";
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(network) || network === "none")
    s.problems.add(
      s.key("network"),
      network,
      "is not a Docker network name (none is not allowed: clients could not reach the registry)",
      `set ${s.key("network")} to bridge, host, or the name of an existing Docker network`,
    );
  const identityFile = s.string("identityFile");
  if (
    identityFile !== undefined &&
    (!identityFile.startsWith("/") || /[\s"'\\]/.test(identityFile))
  )
    s.problems.add(
      s.key("identityFile"),
      identityFile,
      "must be an absolute path without spaces or quotes",
      `set ${s.key("identityFile")} to the key file, e.g. /home/you/.ssh/id_ed25519, or remove it to use the ssh agent`,
    );
  const port = s.int("port", 5000, 1, 65535);
  const debugPort = s.int("debugPort", 5001, 1, 65535);
  if (debugPort === port)
    s.problems.add(
      s.key("debugPort"),
      debugPort,
      "is the registry's own port",
      `set ${s.key("debugPort")} to a free port other than ${port}`,
    );
  const mirrorHostnameSet = m.string("hostname")?.toLowerCase();
  const mirrorHostname = mirrorHostnameSet ?? hostname;
  if (mirrorHostnameSet !== undefined && (!isDnsName(mirrorHostname) || isIp(mirrorHostname)))
    m.problems.add(
      m.key("hostname"),
      mirrorHostname,
      "is not a DNS name",
      `set ${m.key("hostname")} to a name such as mirror.casd.local`,
    );
  else if (
    mirrorEnabled &&
    mirrorHostnameSet !== undefined &&
    mirrorHostname !== hostname &&
    !pkiDnsNames.includes(mirrorHostname)
  ) {
    m.problems.add(
      m.key("hostname"),
      mirrorHostname,
      "is not in the server certificate (neither hostname nor pki.server.extraDnsNames)",
      `add it: pulumi config set --path 'pki.server.extraDnsNames[0]' ${mirrorHostname}`,
    );
  }
  const mirror: DistributionMirrorConfig = {
    enabled: mirrorEnabled,
    hostname: mirrorHostname,
    port: m.int("port", 5443, 1, 65535),
    debugPort: m.int("debugPort", 5444, 1, 65535),
    harborImagesArchivePath: m.string("harborImagesArchivePath"),
    harborImagesArchiveSha256: sha256(m, "harborImagesArchiveSha256"),
  };
  if (mirror.debugPort === mirror.port)
    m.problems.add(
      m.key("debugPort"),
      mirror.debugPort,
      "is the mirror's own port",
      `set ${m.key("debugPort")} to a free port other than ${mirror.port}`,
    );
  if (mirrorEnabled) {
    if (!mirror.harborImagesArchivePath)
      problems.add(
        m.key("harborImagesArchivePath"),
        undefined,
        "is required when the mirror is enabled",
        `extract it from the installer (tar -xzf harbor-offline-installer-v<version>.tgz harbor/harbor.v<version>.tar.gz), then pulumi config set --path ${m.key("harborImagesArchivePath")} <that file>`,
      );
    if (!m.has("harborImagesArchiveSha256"))
      problems.add(
        m.key("harborImagesArchiveSha256"),
        undefined,
        "is required when the mirror is enabled",
        `pulumi config set --path ${m.key("harborImagesArchiveSha256")} $(sha256sum <archive> | cut -d' ' -f1)`,
      );
    if (deploy !== "distribution" && !s.has("imageArchivePath"))
      problems.add(
        s.key("imageArchivePath"),
        undefined,
        "is required when the mirror is enabled (the mirror runs the Distribution image)",
        `pulumi config set --path ${s.key("imageArchivePath")} <image archive in the bundle>`,
      );
    if (deploy !== "distribution" && !s.has("imageArchiveSha256"))
      problems.add(
        s.key("imageArchiveSha256"),
        undefined,
        "is required when the mirror is enabled",
        `pulumi config set --path ${s.key("imageArchiveSha256")} $(sha256sum <archive> | cut -d' ' -f1)`,
      );
    const want = `${mirror.hostname}:${mirror.port}`;
    if (deploy === "helm" && helmMirror !== undefined && helmMirror !== want) {
      problems.add(
        "helm.mirrorRegistry",
        helmMirror,
        `is not the mirror this stack runs (${want})`,
        `pulumi config set --path helm.mirrorRegistry ${want}`,
      );
    }
    if (deploy === "distribution") {
      if (mirror.port === port)
        m.problems.add(
          m.key("port"),
          mirror.port,
          "is the registry's port too (both run on the registry host)",
          `set ${m.key("port")} to another port`,
        );
      if (network === "host" && [port, debugPort].includes(mirror.debugPort))
        m.problems.add(
          m.key("debugPort"),
          mirror.debugPort,
          "is taken by the registry on the same host network",
          `set ${m.key("debugPort")} to another port`,
        );
      if (network === "host" && mirror.port === debugPort)
        m.problems.add(
          m.key("port"),
          mirror.port,
          "is the registry's debug port on the same host network",
          `set ${m.key("port")} to another port`,
        );
    }
  }
  m.rejectUnknown();
  const needsPassword = deploy === "distribution" || mirrorEnabled;
  const cfg: DistributionConfig = {
    imageArchivePath: s.string("imageArchivePath"),
    imageArchiveSha256: sha256(s, "imageArchiveSha256"),
    image,
    port,
    username,
    password: password(
      raw,
      problems,
      "distributionPassword",
      needsPassword,
      "when deploy is distribution or distribution.mirror.enabled is true",
    ),
    network,
    identityFile,
    debugPort,
    deleteEnabled: s.bool("deleteEnabled", false),
    mirror,
  };
  const pw = raw.secrets.distributionPassword;
  if (pw && Buffer.byteLength(pw, "utf8") > 72) {
    problems.add(
      "distributionPassword",
      pw,
      "is longer than 72 bytes, which bcrypt (Distribution's htpasswd) silently cuts off",
      "pulumi config set --secret distributionPassword <12 to 72 characters>",
      true,
    );
  }
  if (deploy === "distribution") {
    if (!cfg.imageArchivePath)
      problems.add(
        s.key("imageArchivePath"),
        undefined,
        "is required when deploy is distribution",
        `pulumi config set --path ${s.key("imageArchivePath")} <image archive in the bundle>`,
      );
    if (!s.has("imageArchiveSha256"))
      problems.add(
        s.key("imageArchiveSha256"),
        undefined,
        "is required when deploy is distribution",
        `pulumi config set --path ${s.key("imageArchiveSha256")} $(sha256sum <archive> | cut -d' ' -f1)`,
      );
  }
  s.rejectUnknown();
  return cfg;
}

function parseClients(top: Section, problems: Problems): ClientConfig[] {
  const items = top.list("clients");
  const clients: ClientConfig[] = [];
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const s = Section.of(
      `clients[${i}]`,
      item,
      problems,
      "each client is an object with name, address, hostKey and runtimes",
    );
    const name = s.requireString(
      "name",
      `pulumi config set --path 'clients[${i}].name' <node name>`,
    );
    if (name && !/^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$/.test(name)) {
      problems.add(
        s.key("name"),
        name,
        "must be lowercase letters, digits and inner '-' (at most 42 characters): it names resources",
        `rename clients[${i}]`,
      );
    }
    if (name && seen.has(name)) {
      problems.add(
        s.key("name"),
        name,
        `duplicates clients[${seen.get(name)}].name`,
        "give every client a unique name",
      );
    } else if (name) seen.set(name, i);
    const ep = endpoint(s, { user: "root" });
    const runtimesRaw = s.stringList("runtimes");
    if (runtimesRaw.length === 0) {
      problems.add(
        s.key("runtimes"),
        s.raw("runtimes"),
        "is empty: the node would trust nothing",
        `list at least one of ${RUNTIMES.join(", ")}`,
      );
    }
    const runtimes: Runtime[] = [];
    for (const r of runtimesRaw) {
      if (!(RUNTIMES as readonly string[]).includes(r))
        problems.add(s.key("runtimes"), r, "is not a known runtime", `use ${RUNTIMES.join(", ")}`);
      else if (runtimes.includes(r as Runtime))
        problems.add(s.key("runtimes"), r, "is listed twice", "list each runtime once");
      else runtimes.push(r as Runtime);
    }
    const etcHostsAddress = s.string("etcHostsAddress");
    if (etcHostsAddress !== undefined && !isIp(etcHostsAddress))
      problems.add(
        s.key("etcHostsAddress"),
        etcHostsAddress,
        "is not an IP address",
        `set ${s.key("etcHostsAddress")} to the registry's address`,
      );
    clients.push({
      ...ep,
      name,
      runtimes,
      sudo: s.bool("sudo", ep.user !== "root"),
      etcHostsAddress,
      restartContainerd: s.bool("restartContainerd", false),
      push: s.bool("push", false),
    });
    s.rejectUnknown();
  });
  return clients;
}

/** Pure: validates raw values, applies defaults; throws ConfigError listing every problem. */
export function parseStackConfig(raw: RawStackConfig): StackConfig {
  const problems = new Problems();
  const top = new Section("", raw.values, problems);

  const hostname = (top.string("hostname") ?? "").toLowerCase();
  if (!hostname) {
    problems.add("hostname", undefined, "is required", "pulumi config set hostname reg.casd.local");
  } else if (!isDnsName(hostname) || !hostname.includes(".") || isIp(hostname)) {
    problems.add(
      "hostname",
      hostname,
      "is not a fully qualified DNS name",
      "set hostname to a name such as reg.casd.local (letters, digits, hyphens, dots; not an IP)",
    );
  }
  const deploy = top.oneOf("deploy", DEPLOY_MODES, "compose");
  const registryHost = parseRegistryHost(top);
  const sshPrivateKey = secretValue(raw, problems, "sshPrivateKey", {
    why: "to reach the registry host and the client nodes",
    fix: 'pulumi config set --secret sshPrivateKey -- "$(cat ~/.ssh/id_ed25519)"',
  });
  const sshKeyText = raw.secrets.sshPrivateKey;
  if (sshKeyText && !/-----BEGIN (OPENSSH |RSA |EC )?PRIVATE KEY-----/.test(sshKeyText)) {
    problems.add(
      "sshPrivateKey",
      sshKeyText,
      "is not an unencrypted PEM/OpenSSH private key",
      "set it to the content of the private key file (not the .pub)",
      true,
    );
  }
  const bastionPrivateKey = secretValue(raw, problems, "bastionPrivateKey", undefined);
  const pki = parsePki(top, raw, problems);
  const harbor = parseHarbor(top, raw, problems, deploy);
  const helm = parseHelm(top, raw, problems, deploy, harbor.version);
  const distribution = parseDistribution(
    top,
    raw,
    problems,
    deploy,
    hostname,
    pki.server.extraDnsNames,
    helm.mirrorRegistry,
  );
  const clients = parseClients(top, problems);
  const t = top.section("trust");
  const previousCaCertPem = t.string("previousCaCertPem");
  if (
    previousCaCertPem !== undefined &&
    !/^-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----$/.test(previousCaCertPem.trim())
  ) {
    problems.add(
      t.key("previousCaCertPem"),
      previousCaCertPem,
      "is not one PEM certificate",
      `set ${t.key("previousCaCertPem")} to the old CA's PEM, or remove it when the overlap window ends`,
    );
  }
  const trust: TrustConfig = {
    previousCaCertPem: previousCaCertPem?.trim(),
    verify: t.bool("verify", true),
  };
  t.rejectUnknown();

  // Constraints between rooms.
  if (deploy === "compose" && harbor.http === "off") {
    problems.add(
      "harbor.http",
      "off",
      "cannot be honoured by the offline installer (Harbor's nginx always listens on the http port and redirects)",
      "set harbor.http to redirect, and close harbor.httpPort at the host firewall if it must not answer",
    );
  }
  if ((deploy === "distribution" || distribution.mirror.enabled) && registryHost.bastion) {
    problems.add(
      "registryHost.bastion",
      registryHost.bastion.address,
      "is not supported with the Distribution registry (the docker provider's ssh pins only the registry host's key)",
      "reach the registry host directly, or use deploy compose",
    );
  }

  for (const k of Object.keys(raw.values)) {
    if (!TOP_LEVEL_KEYS.includes(k))
      problems.add(
        k,
        raw.values[k],
        "is not a known setting",
        `remove ${PROJECT}:${k} (known: ${TOP_LEVEL_KEYS.join(", ")})`,
      );
  }
  for (const k of Object.keys(raw.secrets)) {
    if (!(SECRET_KEYS as readonly string[]).includes(k))
      problems.add(k, "[secret]", "is not a known secret", `remove ${PROJECT}:${k}`);
  }

  if (!problems.empty) throw new ConfigError(problems.list);
  return {
    hostname,
    deploy,
    registryHost,
    sshPrivateKey: sshPrivateKey!,
    bastionPrivateKey,
    pki,
    harbor,
    helm,
    distribution,
    clients,
    trust,
  };
}

/** Reads the stack's Pulumi config (namespace casd-registry) into the raw form. */
export function readRawConfig(): RawStackConfig {
  const prefix = `${PROJECT}:`;
  const all = pulumi.runtime.allConfig();
  const runtime = pulumi.runtime as unknown as { isConfigSecret?: (k: string) => boolean };
  const values: Record<string, unknown> = {};
  const secrets: Partial<Record<SecretKey, string>> = {};
  const encryptedKeys = new Set<string>();
  for (const [fullKey, text] of Object.entries(all)) {
    if (!fullKey.startsWith(prefix)) continue;
    const key = fullKey.slice(prefix.length);
    if (runtime.isConfigSecret?.(fullKey)) encryptedKeys.add(key);
    if ((SECRET_KEYS as readonly string[]).includes(key)) {
      secrets[key as SecretKey] = text;
      continue;
    }
    values[key] = parseValue(text);
  }
  return { values, secrets, encryptedKeys };
}

/** Config values arrive as strings; objects, lists, numbers and booleans as their JSON text. */
function parseValue(text: string): unknown {
  const t = text.trim();
  if (t.startsWith("{") || t.startsWith("[")) {
    try {
      return JSON.parse(t);
    } catch {
      return text;
    }
  }
  return text;
}

/** Reads and validates the stack's config; throws ConfigError before any resource is created. */
export function loadStackConfig(): StackConfig {
  return parseStackConfig(readRawConfig());
}
