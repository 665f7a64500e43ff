import { ConfigError, parseStackConfig, RawStackConfig, SECRET_KEYS } from "../../infra/config";
import { isDnsName, isSshPublicKey } from "../../infra/config-checks";
import { sshKeyPair } from "../support/ssh-keys";
import { generateKeyPairSync } from "node:crypto";

const HOST_KEY = sshKeyPair().publicKey;
const SSH_KEY = sshKeyPair().privateKey;

function base(): RawStackConfig {
  return {
    values: {
      hostname: "reg.casd.local",
      deploy: "compose",
      registryHost: { address: "10.50.6.62", hostKey: HOST_KEY },
      harbor: { installerPath: "offline/bundle/harbor.tgz", installerSha256: "b".repeat(64) },
      clients: [
        {
          name: "node-1",
          address: "10.50.6.71",
          hostKey: HOST_KEY,
          runtimes: ["docker", "containerd"],
        },
        { name: "node-2", address: "10.50.6.72", hostKey: HOST_KEY, runtimes: ["os"] },
      ],
    },
    secrets: {
      sshPrivateKey: SSH_KEY,
      harborAdminPassword: "Adm1nPassw0rdX",
      harborDatabasePassword: "Db1PasswordXyz",
    },
    encryptedKeys: new Set(SECRET_KEYS),
  };
}

type Mutate = (r: RawStackConfig) => void;
const v = (r: RawStackConfig) => r.values as Record<string, any>;

function problemsOf(mutate: Mutate): string[] {
  const raw = base();
  mutate(raw);
  try {
    parseStackConfig(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).message
      .split("\n")
      .slice(1)
      .map((l) => l.replace(/^ {2}- /, ""));
  }
  return [];
}

describe("parseStackConfig: a valid config", () => {
  it("applies the documented defaults", () => {
    const cfg = parseStackConfig(base());
    expect(cfg.hostname).toBe("reg.casd.local");
    expect(cfg.deploy).toBe("compose");
    expect(cfg.registryHost).toMatchObject({
      address: "10.50.6.62",
      port: 22,
      user: "root",
      sudo: false,
      dataDir: "/data",
      certDir: "/etc/casd-registry/tls",
      installDir: "/opt/casd-registry",
      minFreeGiB: 40,
      etcHosts: true,
      dialErrorLimit: 10,
      perDialTimeout: 15,
    });
    expect(cfg.pki.caSource).toBe("generate");
    expect(cfg.pki.ca).toMatchObject({
      algorithm: "ECDSA",
      ecdsaCurve: "P384",
      validityHours: 87600,
      protect: true,
      commonName: "CASD Registry Root CA",
    });
    expect(cfg.pki.server).toMatchObject({
      algorithm: "ECDSA",
      ecdsaCurve: "P256",
      validityHours: 4800,
      earlyRenewalHours: 1600,
    });
    expect(cfg.harbor).toMatchObject({
      version: "2.15.1",
      httpsPort: 443,
      http: "redirect",
      withTrivy: true,
      purgeDataOnDestroy: false,
    });
    expect(cfg.helm).toMatchObject({
      chartVersion: "1.19.1",
      namespace: "harbor",
      imageTag: "v2.15.1",
    });
    expect(cfg.clients.map((c) => [c.name, c.runtimes])).toEqual([
      ["node-1", ["docker", "containerd"]],
      ["node-2", ["os"]],
    ]);
  });

  it("keeps secrets secret", async () => {
    const pulumi = await import("@pulumi/pulumi");
    const cfg = parseStackConfig(base());
    expect(await pulumi.isSecret(cfg.sshPrivateKey)).toBe(true);
    expect(await pulumi.isSecret(cfg.harbor.adminPassword!)).toBe(true);
    expect(await pulumi.isSecret(cfg.harbor.databasePassword!)).toBe(true);
  });

  it("uses sudo by default for a non-root user, and RSA when asked", () => {
    const cfg = parseStackConfig(
      (() => {
        const r = base();
        v(r).registryHost.user = "deploy";
        v(r).pki = { server: { keyAlgorithm: "RSA", rsaBits: 4096 } };
        return r;
      })(),
    );
    expect(cfg.registryHost.sudo).toBe(true);
    expect(cfg.pki.server).toMatchObject({ algorithm: "RSA", rsaBits: 4096 });
  });
});

const CASES: Array<[string, Mutate, string[]]> = [
  [
    "unknown deploy mode",
    (r) => (v(r).deploy = "kubernetes"),
    [
      'casd-registry:deploy = "kubernetes": is not one of compose, helm, distribution. Fix: set deploy to one of compose, helm, distribution.',
    ],
  ],
  [
    "hostname that is not a DNS name",
    (r) => (v(r).hostname = "reg_casd local"),
    [
      'casd-registry:hostname = "reg_casd local": is not a fully qualified DNS name. Fix: set hostname to a name such as reg.casd.local (letters, digits, hyphens, dots; not an IP).',
    ],
  ],
  [
    "hostname that is an IP",
    (r) => (v(r).hostname = "10.50.6.62"),
    [
      'casd-registry:hostname = "10.50.6.62": is not a fully qualified DNS name. Fix: set hostname to a name such as reg.casd.local (letters, digits, hyphens, dots; not an IP).',
    ],
  ],
  [
    "invalid IP",
    (r) => (v(r).registryHost.address = "10.50.6.300"),
    [
      'casd-registry:registryHost.address = "10.50.6.300": is not an IPv4 or IPv6 address. Fix: set registryHost.address to the host\'s IP address.',
    ],
  ],
  [
    "missing host key",
    (r) => delete v(r).registryHost.hostKey,
    [
      "casd-registry:registryHost.hostKey = (unset): is required: without it host keys are not checked at all. Fix: pin the host's key: ssh-keyscan -t ed25519 10.50.6.62 | cut -d' ' -f2- , then pulumi config set --path registryHost.hostKey '<type> <base64>'.",
    ],
  ],
  [
    "malformed host key",
    (r) => (v(r).registryHost.hostKey = "ssh-ed25519 AAAAB3NzaC1yc2E"),
    [
      "casd-registry:registryHost.hostKey = \"ssh-ed25519 AAAAB3NzaC1yc2E\": is not an OpenSSH public key line. Fix: set registryHost.hostKey to '<type> <base64>' as in the host's /etc/ssh/ssh_host_ed25519_key.pub.",
    ],
  ],
  [
    "port out of range",
    (r) => (v(r).registryHost.port = 70000),
    [
      "casd-registry:registryHost.port = 70000: is out of range (1 to 65535). Fix: set registryHost.port to a value between 1 and 65535.",
    ],
  ],
  [
    "key algorithm not allowed",
    (r) => (v(r).pki = { ca: { keyAlgorithm: "ED25519" } }),
    [
      'casd-registry:pki.ca.keyAlgorithm = "ED25519": is not one of ECDSA, RSA. Fix: set pki.ca.keyAlgorithm to one of ECDSA, RSA.',
    ],
  ],
  [
    "RSA size not allowed",
    (r) => (v(r).pki = { ca: { keyAlgorithm: "RSA", rsaBits: 2048 } }),
    [
      "casd-registry:pki.ca.rsaBits = 2048: is not an allowed RSA key size (3072 or 4096). Fix: set pki.ca.rsaBits to 3072 or 4096.",
    ],
  ],
  [
    "ECDSA curve not allowed (the provider's P224 default)",
    (r) => (v(r).pki = { server: { ecdsaCurve: "P224" } }),
    [
      'casd-registry:pki.server.ecdsaCurve = "P224": is not one of P256, P384. Fix: set pki.server.ecdsaCurve to one of P256, P384.',
    ],
  ],
  [
    "server validity out of range",
    (r) => (v(r).pki = { server: { validityHours: 8760 } }),
    [
      "casd-registry:pki.server.validityHours = 8760: is out of range (24 to 4800 hours). Fix: set pki.server.validityHours to a value between 24 and 4800 hours.",
    ],
  ],
  [
    "CA validity out of range",
    (r) => (v(r).pki = { ca: { validityHours: 100 } }),
    [
      "casd-registry:pki.ca.validityHours = 100: is out of range (8760 to 219000 hours). Fix: set pki.ca.validityHours to a value between 8760 and 219000 hours.",
    ],
  ],
  [
    "early renewal not smaller than validity",
    (r) => (v(r).pki = { server: { validityHours: 2000, earlyRenewalHours: 2000 } }),
    [
      "casd-registry:pki.server.earlyRenewalHours = 2000: is not smaller than pki.server.validityHours (2000). Fix: set pki.server.earlyRenewalHours below the validity, e.g. 666 (a third).",
    ],
  ],
  [
    "duplicate client names",
    (r) => (v(r).clients[1].name = "node-1"),
    [
      'casd-registry:clients[1].name = "node-1": duplicates clients[0].name. Fix: give every client a unique name.',
    ],
  ],
  [
    "empty client runtime list",
    (r) => (v(r).clients[0].runtimes = []),
    [
      "casd-registry:clients[0].runtimes = []: is empty: the node would trust nothing. Fix: list at least one of docker, containerd, podman, os, k3s, rke2.",
    ],
  ],
  [
    "unknown client runtime",
    (r) => (v(r).clients[1].runtimes = ["os", "cri-o"]),
    [
      'casd-registry:clients[1].runtimes = "cri-o": is not a known runtime. Fix: use docker, containerd, podman, os, k3s, rke2.',
    ],
  ],
  [
    "missing SSH private key",
    (r) => delete r.secrets.sshPrivateKey,
    [
      'casd-registry:sshPrivateKey = (unset): is required to reach the registry host and the client nodes. Fix: pulumi config set --secret sshPrivateKey -- "$(cat ~/.ssh/id_ed25519)".',
    ],
  ],
  [
    "secret stored in plain text",
    (r) => (r.encryptedKeys = new Set(SECRET_KEYS.filter((k) => k !== "harborAdminPassword"))),
    [
      "casd-registry:harborAdminPassword = [secret]: is stored in plain text in the stack file. Fix: set it again with: pulumi config set --secret harborAdminPassword (and remove the plain value from history).",
    ],
  ],
  [
    "Harbor default password",
    (r) => (r.secrets.harborAdminPassword = "Harbor12345"),
    [
      "casd-registry:harborAdminPassword = [secret]: is a default value published with Harbor. Fix: choose a new password: pulumi config set --secret harborAdminPassword <a strong password>.",
    ],
  ],
  [
    "weak database password",
    (r) => (r.secrets.harborDatabasePassword = "short"),
    [
      "casd-registry:harborDatabasePassword = [secret]: is too weak (Harbor requires 8 to 128 characters with upper and lower case and digits; this stack asks at least 12). Fix: pulumi config set --secret harborDatabasePassword <at least 12 characters with upper and lower case letters and digits>.",
    ],
  ],
  [
    "installer checksum that is not a sha256",
    (r) => (v(r).harbor.installerSha256 = "abc"),
    [
      'casd-registry:harbor.installerSha256 = "abc": is not a sha256 (64 lowercase hex digits). Fix: set harbor.installerSha256 to the output of sha256sum <file>.',
    ],
  ],
  [
    "a misspelt key",
    (r) => (v(r).registryHost.adress = "10.0.0.1"),
    [
      'casd-registry:registryHost.adress = "10.0.0.1": is not a known setting. Fix: did you mean registryHost.address? Rename it.',
    ],
  ],
  [
    "relative data directory",
    (r) => (v(r).registryHost.dataDir = "data"),
    [
      "casd-registry:registryHost.dataDir = \"data\": must be an absolute path of letters, digits, '.', '_', '-' and '/' (not / itself). Fix: set registryHost.dataDir to a path such as /data.",
    ],
  ],
  [
    "provided CA without its certificate and key",
    (r) => (v(r).pki = { caSource: "provided" }),
    [
      'casd-registry:pkiCaCertPem = (unset): is required when pki.caSource is provided. Fix: pulumi config set pkiCaCertPem -- "$(cat site-ca.crt)".',
      'casd-registry:pkiCaKeyPem = (unset): is required when pki.caSource is provided. Fix: pulumi config set --secret pkiCaKeyPem -- "$(cat site-ca.key)".',
    ],
  ],
  [
    "helm without chart, cluster access or mirror",
    (r) => (v(r).deploy = "helm"),
    [
      "casd-registry:helm.chartPath = (unset): is required when deploy is helm. Fix: point it at the chart archive in the bundle: pulumi config set --path helm.chartPath offline/bundle/harbor-1.19.1.tgz.",
      "casd-registry:helm.chartSha256 = (unset): is required when deploy is helm. Fix: pulumi config set --path helm.chartSha256 $(sha256sum <chart> | cut -d' ' -f1).",
      'casd-registry:helm.kubeContext = (unset): is required when deploy is helm and no kubeconfig secret is set. Fix: pulumi config set --secret kubeconfig -- "$(cat kubeconfig)" or pulumi config set --path helm.kubeContext <context>.',
      "casd-registry:helm.mirrorRegistry = (unset): is required when deploy is helm (nodes cannot pull Harbor's images from the internet). Fix: pulumi config set --path helm.mirrorRegistry <bootstrap registry host:port>.",
      'casd-registry:harborInternalSeed = (unset): is required when deploy is helm (Harbor\'s internal secrets are derived from it). Fix: pulumi config set --secret harborInternalSeed "$(openssl rand -base64 48)".',
    ],
  ],
  [
    "http off with the offline installer",
    (r) => (v(r).harbor.http = "off"),
    [
      'casd-registry:harbor.http = "off": cannot be honoured by the offline installer (Harbor\'s nginx always listens on the http port and redirects). Fix: set harbor.http to redirect, and close harbor.httpPort at the host firewall if it must not answer.',
    ],
  ],
  [
    "a bastion with the Distribution registry",
    (r) => {
      v(r).deploy = "distribution";
      v(r).registryHost.bastion = { address: "10.50.6.1", hostKey: HOST_KEY };
      v(r).distribution = {
        imageArchivePath: "offline/bundle/registry.tar",
        imageArchiveSha256: "c".repeat(64),
      };
      r.secrets.distributionPassword = "Distr1butionPassw0rd";
    },
    [
      "casd-registry:registryHost.bastion = \"10.50.6.1\": is not supported with the Distribution registry (the docker provider's ssh pins only the registry host's key). Fix: reach the registry host directly, or use deploy compose.",
    ],
  ],
  [
    "an invalid extra SAN",
    (r) => (v(r).pki = { server: { extraDnsNames: ["ok.casd.local", "bad name"] } }),
    [
      'casd-registry:pki.server.extraDnsNames = "bad name": is not a DNS name. Fix: use names of letters, digits and hyphens separated by dots in pki.server.extraDnsNames.',
    ],
  ],
];

describe("parseStackConfig: each bad input is reported with key, value and fix", () => {
  it.each(CASES)("%s", (_title, mutate, expected) => {
    expect(problemsOf(mutate)).toEqual(expected);
  });

  it("has at least 15 distinct cases", () => {
    expect(new Set(CASES.map((c) => c[0])).size).toBeGreaterThanOrEqual(15);
  });

  it("reports every problem at once, in one error", () => {
    const raw = base();
    v(raw).deploy = "kubernetes";
    v(raw).hostname = "bad host";
    delete v(raw).registryHost.hostKey;
    v(raw).clients[0].runtimes = [];
    let err: unknown;
    try {
      parseStackConfig(raw);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.problems.map((p) => p.key)).toEqual([
      "hostname",
      "deploy",
      "registryHost.hostKey",
      "clients[0].runtimes",
    ]);
    expect(e.message.split("\n")[0]).toBe("Stack config has 4 problems; nothing was changed:");
  });

  it("never prints a secret's value", () => {
    const raw = base();
    raw.secrets.harborAdminPassword = "Harbor12345";
    raw.encryptedKeys = new Set();
    let message = "";
    try {
      parseStackConfig(raw);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain("harborAdminPassword = [secret]");
    expect(message).not.toContain("Harbor12345");
    expect(message).not.toContain("Adm1nPassw0rdX");
    expect(message).not.toContain("PRIVATE KEY");
  });
});

describe("a provided CA is checked against its key", () => {
  it("refuses a key that does not belong to the certificate", async () => {
    const { materializeTls } = await import("../support/x509");
    const { unwrap } = await import("../support/mocks");
    const key = await materializeTls("tls:index/privateKey:PrivateKey", {
      algorithm: "ECDSA",
      ecdsaCurve: "P256",
    });
    const cert = await materializeTls("tls:index/selfSignedCert:SelfSignedCert", {
      privateKeyPem: key.privateKeyPem,
      subject: { commonName: "Site CA" },
      isCaCertificate: true,
      allowedUses: ["cert_signing"],
      validityPeriodHours: 100,
    });
    const other = generateKeyPairSync("ec", { namedCurve: "P-256" })
      .privateKey.export({ type: "sec1", format: "pem" })
      .toString();
    const raw = base();
    v(raw).pki = { caSource: "provided" };
    v(raw).pkiCaCertPem = cert.certPem;
    raw.secrets.pkiCaKeyPem = other;
    expect(() => parseStackConfig(raw)).toThrow(
      "casd-registry:pkiCaKeyPem = [secret]: does not belong to the certificate in pkiCaCertPem. Fix: supply the private key of that CA certificate.",
    );
    raw.secrets.pkiCaKeyPem = unwrap(key.privateKeyPem) as string;
    expect(parseStackConfig(raw).pki.providedCaCertPem).toBe(cert.certPem);
  });
});

describe("checks", () => {
  it.each([
    ["reg.casd.local", true],
    ["a", true],
    ["-bad.local", false],
    ["bad-.local", false],
    ["under_score.local", false],
    ["trailing.dot.", false],
    ["x".repeat(64) + ".local", false],
  ])("isDnsName(%s) = %s", (name, ok) => expect(isDnsName(name)).toBe(ok));

  it("isSshPublicKey checks that the blob's type agrees with the line's", () => {
    const k = sshKeyPair().publicKey;
    expect(isSshPublicKey(k)).toBe(true);
    expect(isSshPublicKey(`${k} root@host`)).toBe(true);
    expect(isSshPublicKey(k.replace("ssh-ed25519", "ssh-rsa"))).toBe(false);
    expect(isSshPublicKey("ssh-ed25519")).toBe(false);
  });
});
