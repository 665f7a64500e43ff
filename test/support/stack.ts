/** Stack configs for tests: the committed dev stack plus test-only secrets and pins. */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as YAML from "yaml";
import { REPO_ROOT } from "./mocks";
import { sshKeyPair } from "./ssh-keys";

const PREFIX = "casd-registry:";

/** The `config:` values of a committed stack file, keys without the project prefix. */
export function stackFileConfig(stack = "dev"): Record<string, unknown> {
  const doc = YAML.parse(fs.readFileSync(path.join(REPO_ROOT, `Pulumi.${stack}.yaml`), "utf8")) as {
    config: Record<string, unknown>;
  };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc.config)) {
    if (k.startsWith(PREFIX)) out[k.slice(PREFIX.length)] = v;
  }
  return out;
}

export const TEST_SSH = sshKeyPair();
export const TEST_HOST_KEY = sshKeyPair().publicKey;

/**
 * A stand-in for the installer archive of the offline bundle: a small local
 * file (the program checks that the configured archive exists on the
 * machine running it), and its real sha256.
 */
function standInInstaller(): { path: string; sha256: string } {
  // One fixed file, same bytes every time: nothing accumulates across test runs.
  const dir = path.join(os.tmpdir(), "casd-test-bundle");
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "harbor-offline-installer-v2.15.1.tgz");
  const bytes = Buffer.from("stand-in for the Harbor offline installer archive\n");
  if (!fs.existsSync(file) || !fs.readFileSync(file).equals(bytes)) {
    const tmp = `${file}.${process.pid}`;
    fs.writeFileSync(tmp, bytes);
    fs.renameSync(tmp, file);
  }
  return { path: file, sha256: createHash("sha256").update(bytes).digest("hex") };
}
export const TEST_INSTALLER = standInInstaller();
export const TEST_INSTALLER_SHA256 = TEST_INSTALLER.sha256;

/** Test-only secrets (never the real ones, which are never committed). */
export const TEST_SECRETS: Record<string, string> = {
  sshPrivateKey: TEST_SSH.privateKey,
  harborAdminPassword: "Adm1nPassw0rdForTests",
  harborDatabasePassword: "Db1PasswordForTests9",
};

/**
 * The dev stack as an operator completes it before `pulumi up -s dev`:
 * Pulumi.dev.yaml plus the pinned host key, and the installer (a local
 * stand-in file, as the bundle would hold) with its checksum.
 */
export function devStack(): { config: Record<string, unknown>; secrets: Record<string, string> } {
  const config = stackFileConfig("dev");
  const host = { ...(config.registryHost as Record<string, unknown>), hostKey: TEST_HOST_KEY };
  const harbor = {
    ...(config.harbor as Record<string, unknown>),
    installerPath: TEST_INSTALLER.path,
    installerSha256: TEST_INSTALLER_SHA256,
  };
  return { config: { ...config, registryHost: host, harbor }, secrets: { ...TEST_SECRETS } };
}
