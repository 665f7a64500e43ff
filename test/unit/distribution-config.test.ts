/**
 * The `distribution` section of the stack config (infra/config.ts): defaults,
 * the bootstrap mirror, and each bad input reported with key, value and fix.
 */
import { ConfigError, parseStackConfig, RawStackConfig, SECRET_KEYS } from "../../infra/config";
import { sshKeyPair } from "../support/ssh-keys";

const HOST_KEY = sshKeyPair().publicKey;
const SSH_KEY = sshKeyPair().privateKey;
const A = "a".repeat(64);
const B = "b".repeat(64);

function base(deploy = "distribution"): RawStackConfig {
  return {
    values: {
      hostname: "reg.casd.local",
      deploy,
      registryHost: { address: "10.50.6.62", hostKey: HOST_KEY },
      distribution: {
        imageArchivePath: "offline/bundle/registry-2.8.3.tar",
        imageArchiveSha256: A,
      },
    },
    secrets: { sshPrivateKey: SSH_KEY, distributionPassword: "Distr1butionPassw0rd" },
    encryptedKeys: new Set(SECRET_KEYS),
  };
}

function helmWithMirror(): RawStackConfig {
  const r = base("helm");
  Object.assign(r.values, {
    pki: { server: { extraDnsNames: ["mirror.casd.local"] } },
    helm: {
      chartPath: "offline/bundle/harbor-1.19.1.tgz",
      chartSha256: B,
      kubeContext: "lab",
      mirrorRegistry: "mirror.casd.local:5443",
    },
    distribution: {
      imageArchivePath: "offline/bundle/registry-2.8.3.tar",
      imageArchiveSha256: A,
      mirror: {
        enabled: true,
        hostname: "mirror.casd.local",
        harborImagesArchivePath: "offline/bundle/harbor.v2.15.1.tar.gz",
        harborImagesArchiveSha256: B,
      },
    },
  });
  Object.assign(r.secrets, {
    harborAdminPassword: "Adm1nPassw0rdX",
    harborDatabasePassword: "Db1PasswordXyz",
    harborInternalSeed: "s".repeat(40),
  });
  return r;
}

function problemsOf(raw: RawStackConfig): string[] {
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

const d = (r: RawStackConfig) => r.values.distribution as Record<string, any>;

describe("distribution config", () => {
  test("defaults for deploy distribution", () => {
    const cfg = parseStackConfig(base());
    const { password, ...rest } = cfg.distribution;
    expect(rest).toEqual({
      imageArchivePath: "offline/bundle/registry-2.8.3.tar",
      imageArchiveSha256: A,
      image: "registry:2.8.3",
      port: 5000,
      username: "casd",
      network: "bridge",
      identityFile: undefined,
      debugPort: 5001,
      deleteEnabled: false,
      mirror: {
        enabled: false,
        hostname: "reg.casd.local",
        port: 5443,
        debugPort: 5444,
        harborImagesArchivePath: undefined,
        harborImagesArchiveSha256: undefined,
      },
    });
    expect(password).toBeDefined();
  });

  test("helm with the bootstrap mirror: accepted, mirror resolved", () => {
    const cfg = parseStackConfig(helmWithMirror());
    expect(cfg.distribution.mirror).toEqual({
      enabled: true,
      hostname: "mirror.casd.local",
      port: 5443,
      debugPort: 5444,
      harborImagesArchivePath: "offline/bundle/harbor.v2.15.1.tar.gz",
      harborImagesArchiveSha256: B,
    });
  });

  const CASES: Array<[string, (r: RawStackConfig) => void, string[], () => RawStackConfig]> = [
    [
      "deploy distribution without archive and password",
      (r) => {
        r.values.distribution = {};
        r.secrets = { sshPrivateKey: SSH_KEY };
      },
      [
        "casd-registry:distributionPassword = (unset): is required when deploy is distribution or distribution.mirror.enabled is true. Fix: pulumi config set --secret distributionPassword <a strong password>.",
        "casd-registry:distribution.imageArchivePath = (unset): is required when deploy is distribution. Fix: pulumi config set --path distribution.imageArchivePath <image archive in the bundle>.",
        "casd-registry:distribution.imageArchiveSha256 = (unset): is required when deploy is distribution. Fix: pulumi config set --path distribution.imageArchiveSha256 $(sha256sum <archive> | cut -d' ' -f1).",
      ],
      () => base(),
    ],
    [
      "password longer than bcrypt's 72 bytes",
      (r) => {
        r.secrets.distributionPassword = `Aa1${"x".repeat(70)}`;
      },
      [
        "casd-registry:distributionPassword = [secret]: is longer than 72 bytes, which bcrypt (Distribution's htpasswd) silently cuts off. Fix: pulumi config set --secret distributionPassword <12 to 72 characters>.",
      ],
      () => base(),
    ],
    [
      "network none, debug port on the registry port, user with a colon, relative identity file",
      (r) => {
        Object.assign(d(r), {
          network: "none",
          debugPort: 5000,
          username: "a:b",
          identityFile: "id_ed25519",
        });
      },
      [
        "casd-registry:distribution.username = \"a:b\": is not a user name of letters, digits, '.', '_' and '-' (no ':'). Fix: set distribution.username to a name such as casd.",
        'casd-registry:distribution.network = "none": is not a Docker network name (none is not allowed: clients could not reach the registry). Fix: set distribution.network to bridge, host, or the name of an existing Docker network.',
        'casd-registry:distribution.identityFile = "id_ed25519": must be an absolute path without spaces or quotes. Fix: set distribution.identityFile to the key file, e.g. /home/you/.ssh/id_ed25519, or remove it to use the ssh agent.',
        "casd-registry:distribution.debugPort = 5000: is the registry's own port. Fix: set distribution.debugPort to a free port other than 5000.",
      ],
      () => base(),
    ],
    [
      "mirror enabled without the Harbor archive",
      (r) => {
        d(r).mirror = { enabled: true };
      },
      [
        "casd-registry:distribution.mirror.harborImagesArchivePath = (unset): is required when the mirror is enabled. Fix: extract it from the installer (tar -xzf harbor-offline-installer-v<version>.tgz harbor/harbor.v<version>.tar.gz), then pulumi config set --path distribution.mirror.harborImagesArchivePath <that file>.",
        "casd-registry:distribution.mirror.harborImagesArchiveSha256 = (unset): is required when the mirror is enabled. Fix: pulumi config set --path distribution.mirror.harborImagesArchiveSha256 $(sha256sum <archive> | cut -d' ' -f1).",
      ],
      () => base(),
    ],
    [
      "mirror on the registry's own port (deploy distribution)",
      (r) => {
        d(r).mirror = {
          enabled: true,
          port: 5000,
          harborImagesArchivePath: "h.tgz",
          harborImagesArchiveSha256: B,
        };
      },
      [
        "casd-registry:distribution.mirror.port = 5000: is the registry's port too (both run on the registry host). Fix: set distribution.mirror.port to another port.",
      ],
      () => base(),
    ],
    [
      "helm: mirrorRegistry is not the mirror this stack runs",
      (r) => {
        (r.values.helm as Record<string, unknown>).mirrorRegistry = "mirror.casd.local:5000";
      },
      [
        'casd-registry:helm.mirrorRegistry = "mirror.casd.local:5000": is not the mirror this stack runs (mirror.casd.local:5443). Fix: pulumi config set --path helm.mirrorRegistry mirror.casd.local:5443.',
      ],
      helmWithMirror,
    ],
    [
      "helm: the mirror's name is not in the certificate",
      (r) => {
        r.values.pki = {};
      },
      [
        "casd-registry:distribution.mirror.hostname = \"mirror.casd.local\": is not in the server certificate (neither hostname nor pki.server.extraDnsNames). Fix: add it: pulumi config set --path 'pki.server.extraDnsNames[0]' mirror.casd.local.",
      ],
      helmWithMirror,
    ],
    [
      "helm: mirror without the Distribution image archive",
      (r) => {
        d(r).imageArchivePath = undefined;
        d(r).imageArchiveSha256 = undefined;
      },
      [
        "casd-registry:distribution.imageArchivePath = (unset): is required when the mirror is enabled (the mirror runs the Distribution image). Fix: pulumi config set --path distribution.imageArchivePath <image archive in the bundle>.",
        "casd-registry:distribution.imageArchiveSha256 = (unset): is required when the mirror is enabled. Fix: pulumi config set --path distribution.imageArchiveSha256 $(sha256sum <archive> | cut -d' ' -f1).",
      ],
      helmWithMirror,
    ],
    [
      "a typo in the mirror section",
      (r) => {
        d(r).mirror.prot = 1;
      },
      [
        "casd-registry:distribution.mirror.prot = 1: is not a known setting. Fix: did you mean distribution.mirror.port? Rename it.",
      ],
      helmWithMirror,
    ],
  ];

  test.each(CASES)("%s", (_label, mutate, want, start) => {
    const raw = start();
    mutate(raw);
    expect(problemsOf(raw)).toEqual(want);
  });
});
