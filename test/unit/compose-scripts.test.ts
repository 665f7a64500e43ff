/**
 * The compose path's scripts: every one passes the real shellcheck for each
 * shape of input, and the extract step's checks run for real on a scratch
 * directory (sha256 refusal, signature with a real gpg key, extraction).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as s from "../../infra/harbor/compose/scripts";
import { pgpKeyring } from "../../infra/harbor/compose";
import { SHELLCHECK_AVAILABLE, shellcheckFindings } from "../support/shellcheck";
import { STANDIN_SCRIPTS } from "../lab/standin/build";

const SHA = "0123456789abcdef".repeat(4);
const CA =
  "-----BEGIN CERTIFICATE-----\nMIIBcTCCARegAwIBAgIUQ2FzZFRlc3RDQQ==\n-----END CERTIFICATE-----\n";
const P = s.composePaths("/opt/casd-registry", "2.15.1", SHA);
const APPLY: s.ApplyArgs = {
  paths: P,
  version: "2.15.1",
  schemaVersion: "2.15.0",
  withTrivy: true,
  certPath: "/etc/casd-registry/tls/server-fullchain.crt",
  keyPath: "/etc/casd-registry/tls/server.key",
  dataVolume: "/data",
  prepareImage: "goharbor/prepare:v2.15.1",
  certFingerprint: "ab".repeat(32),
};

const scripts: Array<[string, string]> = [
  ["layout", s.renderLayoutScript(P)],
  ["layout (delete)", s.renderLayoutDelete(P)],
  [
    "data",
    s.renderDataScript({ dataVolume: "/data", purgeOnDestroy: false, adminState: P.adminState }),
  ],
  [
    "data (delete, keep)",
    s.renderDataDelete({ dataVolume: "/data", purgeOnDestroy: false, adminState: P.adminState }),
  ],
  [
    "data (delete, purge)",
    s.renderDataDelete({
      dataVolume: "/srv/harbor data",
      purgeOnDestroy: true,
      adminState: P.adminState,
    }),
  ],
  ["extract", s.renderExtractScript({ paths: P, version: "2.15.1", sha256: SHA })],
  [
    "extract (signed)",
    s.renderExtractScript({
      paths: P,
      version: "2.15.1",
      sha256: SHA,
      signature: { ascArmored: "-----BEGIN PGP SIGNATURE-----\n'x'\n", keyringBase64: "mQ==" },
    }),
  ],
  ["extract (delete)", s.renderExtractDelete(P)],
  ["apply (trivy)", s.renderApplyScript(APPLY)],
  [
    "apply (no trivy, odd paths)",
    s.renderApplyScript({
      ...APPLY,
      withTrivy: false,
      certPath: "/etc/it's/cert.pem",
      dataVolume: "/srv/harbor data",
    }),
  ],
  ["apply (delete)", s.renderApplyDelete(P)],
  [
    "health (443)",
    s.renderHealthScript({
      hostname: "reg.casd.local",
      httpsPort: 443,
      caCertPem: CA,
      timeoutSeconds: 600,
    }),
  ],
  [
    "health (8443)",
    s.renderHealthScript({
      hostname: "reg.example.lan",
      httpsPort: 8443,
      caCertPem: CA,
      timeoutSeconds: 10,
    }),
  ],
  [
    "admin password",
    s.renderAdminPasswordScript({
      hostname: "reg.casd.local",
      httpsPort: 443,
      caCertPem: CA,
      statePath: P.adminState,
    }),
  ],
  ["Harbor stand-in install.sh (lab)", STANDIN_SCRIPTS.installSh("2.15.1")],
  ["Harbor stand-in prepare (lab)", STANDIN_SCRIPTS.prepare("2.15.1")],
];

describe("compose scripts pass shellcheck", () => {
  it("has the shellcheck binary (a missing one is a failure, not a skip)", () => {
    expect(SHELLCHECK_AVAILABLE).toBe(true);
  });
  it.each(scripts)("%s", (_name, text) => {
    expect(shellcheckFindings(text)).toEqual([]);
  });
});

describe("composePaths", () => {
  it("names one directory per installer archive", () => {
    expect(P).toEqual({
      base: "/opt/casd-registry/harbor",
      uploads: "/opt/casd-registry/harbor/uploads",
      archive:
        "/opt/casd-registry/harbor/uploads/harbor-offline-installer-v2.15.1-0123456789ab.tgz",
      installId: "v2.15.1-0123456789ab",
      installRoot: "/opt/casd-registry/harbor/v2.15.1-0123456789ab",
      harborDir: "/opt/casd-registry/harbor/v2.15.1-0123456789ab/harbor",
      current: "/opt/casd-registry/harbor/current",
      backups: "/opt/casd-registry/harbor/backups",
      adminState: "/opt/casd-registry/harbor/admin-password",
    });
    expect(s.harborEndpoint("reg.casd.local", 443)).toBe("https://reg.casd.local");
    expect(s.harborEndpoint("reg.casd.local", 8443)).toBe("https://reg.casd.local:8443");
  });
});

/** Runs the extract step for real in a scratch install dir (as root, like the host). */
describe("the extract step on a scratch directory", () => {
  let dir: string;
  let archive: Buffer;
  let sha: string;
  const isRoot = process.getuid?.() === 0;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "casd-compose-extract-"));
    const src = path.join(dir, "src/harbor");
    fs.mkdirSync(src, { recursive: true });
    for (const f of ["install.sh", "prepare"])
      fs.writeFileSync(path.join(src, f), "#!/bin/sh\necho stand-in\n", { mode: 0o755 });
    fs.writeFileSync(path.join(src, "harbor.yml.tmpl"), "hostname: x\n");
    fs.writeFileSync(path.join(src, "harbor.v2.15.1.tar.gz"), "images");
    const r = spawnSync("tar", ["-czf", "-", "-C", path.join(dir, "src"), "harbor"]);
    archive = r.stdout;
    sha = require("node:crypto").createHash("sha256").update(archive).digest("hex");
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function runExtract(
    paths: s.ComposePaths,
    expected: string,
    signature?: s.ExtractArgs["signature"],
  ) {
    return spawnSync(
      "bash",
      ["-c", s.renderExtractScript({ paths, version: "2.15.1", sha256: expected, signature })],
      { encoding: "utf8" },
    );
  }

  it("runs as root (the host steps chown to root)", () => {
    expect(isRoot).toBe(true);
  });

  it("refuses a checksum mismatch before extracting anything", () => {
    const paths = s.composePaths(path.join(dir, "bad"), "2.15.1", SHA);
    fs.mkdirSync(paths.uploads, { recursive: true });
    fs.writeFileSync(paths.archive, archive);
    const r = runExtract(paths, SHA);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      `casd: error: installer checksum mismatch: ${paths.archive} has sha256 ${sha} but harbor.installerSha256 is ${SHA}; nothing was extracted or changed. Fix: set harbor.installerSha256 to the bundle's published sha256, or replace the archive with the genuine one\n`,
    );
    expect(fs.readdirSync(paths.base).sort()).toEqual(["uploads"]);
  });

  it("extracts a verified archive once, then says unchanged", () => {
    const paths = s.composePaths(path.join(dir, "good"), "2.15.1", sha);
    fs.mkdirSync(paths.uploads, { recursive: true });
    fs.writeFileSync(paths.archive, archive);
    const first = runExtract(paths, sha);
    expect(first.stderr).toBe("");
    expect(first.stdout).toBe("casd: harbor-extract: changed\n");
    expect(fs.readFileSync(path.join(paths.harborDir, "install.sh"), "utf8")).toBe(
      "#!/bin/sh\necho stand-in\n",
    );
    expect(fs.readFileSync(path.join(paths.installRoot, ".casd-version"), "utf8")).toBe("2.15.1\n");
    expect((fs.statSync(paths.archive).mode & 0o777).toString(8)).toBe("600");
    expect(runExtract(paths, sha).stdout).toBe("casd: harbor-extract: unchanged\n");
    const del = spawnSync("bash", ["-c", s.renderExtractDelete(paths)], { encoding: "utf8" });
    expect(del.stdout).toBe("casd: harbor-extract-delete: changed\n");
    expect(fs.readdirSync(paths.base).sort()).toEqual(["uploads"]);
    expect(fs.readdirSync(paths.uploads)).toEqual([]);
  });

  it("refuses an archive of another version", () => {
    const paths = s.composePaths(path.join(dir, "other"), "2.15.1", sha);
    fs.mkdirSync(paths.uploads, { recursive: true });
    fs.writeFileSync(paths.archive, archive);
    const r = spawnSync(
      "bash",
      ["-c", s.renderExtractScript({ paths, version: "2.16.0", sha256: sha })],
      { encoding: "utf8" },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      `casd: error: ${paths.archive} is not Harbor 2.16.0's offline installer: harbor/harbor.v2.16.0.tar.gz is missing (check harbor.version and harbor.installerPath)\n`,
    );
    expect(fs.existsSync(paths.installRoot)).toBe(false);
  });

  it("checks a detached signature with the pinned key (real gpg), and refuses another key's", () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "casd-gpg-"));
    const gpg = (...a: string[]) =>
      spawnSync(
        "gpg",
        ["--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", "", ...a],
        { encoding: "buffer" },
      );
    expect(
      gpg("--quick-gen-key", "casd release test <release@casd.local>", "ed25519", "sign", "never")
        .status,
    ).toBe(0);
    expect(
      gpg("--quick-gen-key", "someone else <other@casd.local>", "ed25519", "sign", "never").status,
    ).toBe(0);
    const paths = s.composePaths(path.join(dir, "signed"), "2.15.1", sha);
    fs.mkdirSync(paths.uploads, { recursive: true });
    fs.writeFileSync(paths.archive, archive);
    const asc = gpg(
      "--local-user",
      "release@casd.local",
      "--armor",
      "--detach-sign",
      "--output",
      "-",
      paths.archive,
    ).stdout.toString();
    const pinned = gpg("--armor", "--export", "release@casd.local").stdout;
    const other = gpg("--armor", "--export", "other@casd.local").stdout;
    expect(pgpKeyring(pinned)).toEqual(gpg("--export", "release@casd.local").stdout);
    const bad = runExtract(paths, sha, {
      ascArmored: asc,
      keyringBase64: pgpKeyring(other).toString("base64"),
    });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(
      "casd: error: installer signature does not verify with the pinned key (harbor.signingKeyPath); nothing was extracted or changed\n",
    );
    expect(fs.existsSync(paths.installRoot)).toBe(false);
    const good = runExtract(paths, sha, {
      ascArmored: asc,
      keyringBase64: pgpKeyring(pinned).toString("base64"),
    });
    expect(good.stderr).toBe("");
    expect(good.stdout).toBe("casd: harbor-extract: changed\n");
    fs.rmSync(home, { recursive: true, force: true });
  });
});
