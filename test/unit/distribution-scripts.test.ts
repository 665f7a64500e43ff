/**
 * The Distribution room's pure renderers: config.yml (exact text), every
 * rendered script through the real shellcheck, and the archive parsing and
 * checksum helpers run by bash on fabricated `docker save` archives.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as s from "../../infra/distribution/scripts";
import { remoteInvocation } from "../../infra/remote/script";
import { SHELLCHECK_AVAILABLE, shellcheckFindings } from "../support/shellcheck";

const CONFIG_ARGS: s.RegistryConfigArgs = {
  instance: "registry",
  hostname: "reg.casd.local",
  listenPort: 5000,
  debugPort: 5001,
  certFile: "fullchain.crt",
  keyFile: "server.key",
  deleteEnabled: false,
};

describe("config.yml", () => {
  test("bridge defaults: exact text", () => {
    expect(s.renderRegistryConfig(CONFIG_ARGS)).toBe(`version: 0.1
log:
  level: info
  formatter: text
  fields:
    service: registry
    instance: registry
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: false
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: true
      age: 168h
      interval: 24h
      dryrun: false
http:
  addr: :5000
  tls:
    certificate: /certs/fullchain.crt
    key: /certs/server.key
    minimumtls: tls1.2
  headers:
    X-Content-Type-Options:
      - nosniff
  debug:
    addr: 127.0.0.1:5001
auth:
  htpasswd:
    realm: reg.casd.local
    path: /auth/htpasswd
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`);
  });

  test.each([
    [
      "host network mirror",
      { instance: "mirror", hostname: "mirror.casd.local", listenPort: 5443, debugPort: 5444 },
      [
        "  addr: :5443",
        "    addr: 127.0.0.1:5444",
        "    realm: mirror.casd.local",
        "    instance: mirror",
      ],
    ],
    [
      "deletes enabled, other file names",
      { deleteEnabled: true, certFile: "chain.pem", keyFile: "key.pem" },
      [
        "    enabled: true\n  cache:",
        "    certificate: /certs/chain.pem",
        "    key: /certs/key.pem",
      ],
    ],
  ] as const)("%s", (_l, over, lines) => {
    const text = s.renderRegistryConfig({ ...CONFIG_ARGS, ...over });
    for (const l of lines) expect(text).toContain(`${l}\n`);
  });

  test("healthcheck probes the debug listener with busybox wget", () => {
    expect(s.healthcheckTest(5444)).toEqual([
      "CMD",
      "wget",
      "-q",
      "-O",
      "/dev/null",
      "http://127.0.0.1:5444/debug/health",
    ]);
  });

  test("instance paths", () => {
    expect(s.instancePaths("/opt/casd-registry", "mirror")).toEqual({
      base: "/opt/casd-registry/distribution-mirror",
      etcDir: "/opt/casd-registry/distribution-mirror/etc",
      configPath: "/opt/casd-registry/distribution-mirror/etc/config.yml",
      authDir: "/opt/casd-registry/distribution-mirror/auth",
      htpasswdPath: "/opt/casd-registry/distribution-mirror/auth/htpasswd",
    });
  });
});

const SHA = "a".repeat(64);
const SCRIPTS: Array<[string, string]> = [
  [
    "load",
    s.renderLoadScript({
      journal: "registry-load",
      archivePath: "/opt/casd-registry/images/registry-aaaa-registry.tar",
      sha256: SHA,
      image: "registry:2.8.3",
    }),
  ],
  [
    "load (delete)",
    s.renderLoadDeleteScript({
      journal: "registry-load",
      archivePath: "/opt/casd-registry/images/registry-aaaa-registry.tar",
    }),
  ],
  [
    "config",
    s.renderConfigScript({
      journal: "registry-config",
      storageDir: "/data/distribution-registry",
      etcDir: "/opt/casd-registry/distribution-registry/etc",
      configPath: "/opt/casd-registry/distribution-registry/etc/config.yml",
      config: s.renderRegistryConfig(CONFIG_ARGS),
    }),
  ],
  [
    "config (delete)",
    s.renderConfigDeleteScript({
      journal: "registry-config",
      storageDir: "/data/distribution-registry",
    }),
  ],
  [
    "auth",
    s.renderAuthScript({
      journal: "registry-auth",
      authDir: "/opt/x/auth",
      htpasswdPath: "/opt/x/auth/htpasswd",
    }),
  ],
  ["auth (delete)", s.renderAuthDeleteScript({ journal: "registry-auth" })],
  [
    "health",
    s.renderHealthScript({
      container: "casd-registry",
      hostname: "reg.casd.local",
      port: 5000,
      caPath: "/etc/casd-registry/tls/ca.crt",
      username: "casd",
      attempts: 60,
    }),
  ],
  [
    "harbor-images",
    s.renderMirrorPushScript({
      journal: "mirror-harbor-images",
      archivePath: "/opt/casd-registry/images/mirror-bbbb-harbor.v2.15.1.tar.gz",
      sha256: SHA,
      registry: "10.50.6.62:5443",
      caPath: "/etc/casd-registry/tls/ca.crt",
      username: "casd",
    }),
  ],
  [
    "harbor-images (delete)",
    s.renderMirrorPushDeleteScript({
      journal: "mirror-harbor-images",
      archivePath: "/opt/casd-registry/images/mirror-bbbb-harbor.v2.15.1.tar.gz",
    }),
  ],
];

describe("shellcheck", () => {
  test("the shellcheck binary is installed (a missing binary fails, it never skips)", () => {
    expect(SHELLCHECK_AVAILABLE).toBe(true);
  });
  test.each(SCRIPTS)("%s passes shellcheck and bash -n, also wrapped for sudo", (_l, script) => {
    expect(shellcheckFindings(script)).toEqual([]);
    expect(spawnSync("bash", ["-n", "-c", remoteInvocation(script, { sudo: false })]).status).toBe(
      0,
    );
    expect(remoteInvocation(script, { sudo: true }).startsWith("sudo -n bash -c '")).toBe(true);
  });
  test("each script prints exactly one result line naming its step", () => {
    for (const [label, script] of SCRIPTS) {
      const step = label.replace(/ \(delete\)$/, "");
      expect(script.match(/echo 'casd: [^']*: changed'/g)).toEqual([
        `echo 'casd: ${label.includes("delete") ? `${step} (delete)` : step}: changed'`,
      ]);
    }
  });
  test("no script reads a secret from anywhere but stdin: no password variable on any command line", () => {
    for (const [, script] of SCRIPTS) {
      expect(script).not.toMatch(/--password[= ]|-p "\$CASD_PW"|-u "\$CASD_USER:\$CASD_PW"/);
    }
  });
});

describe("bash helpers on fabricated archives (no docker needed)", () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "casd-dist-sh-"));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** Runs the load script's helper functions (prelude + ARCHIVE functions) with `tail` appended. */
  function helpers(tail: string): { code: number | null; stdout: string; stderr: string } {
    const load = s.renderLoadScript({
      journal: "t",
      archivePath: "/nonexistent",
      sha256: SHA,
      image: "x:1",
    });
    // Keep the prelude and the function definitions, drop the step's own commands.
    const cut = load.indexOf("ARCHIVE='/nonexistent'");
    const script = `${load.slice(0, cut)}\n${tail}\n`.replace("umask 077", "umask 022");
    const r = spawnSync("bash", ["-c", script], { encoding: "utf8" });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  function archive(name: string, manifest: string, gzip: boolean): string {
    const d = fs.mkdtempSync(path.join(dir, "a-"));
    fs.writeFileSync(path.join(d, "manifest.json"), manifest);
    const out = path.join(dir, name);
    expect(spawnSync("tar", [gzip ? "-czf" : "-cf", out, "-C", d, "manifest.json"]).status).toBe(0);
    return out;
  }

  test.each([
    [
      "classic docker save (Docker 20.10), gzipped",
      `[{"Config":"${"1".repeat(64)}.json","RepoTags":["goharbor/harbor-core:v2.15.1"],"Layers":["x/layer.tar"]},{"Config":"${"2".repeat(64)}.json","RepoTags":["goharbor/registry-photon:v2.15.1","other:1"],"Layers":[]}]`,
      true,
      `sha256:${"1".repeat(64)} goharbor/harbor-core:v2.15.1\nsha256:${"2".repeat(64)} goharbor/registry-photon:v2.15.1\n`,
    ],
    [
      "OCI-layout docker save (Docker 25+) with LayerSources, untagged image",
      `[{"Config":"blobs/sha256/${"3".repeat(64)}","RepoTags":["registry:2.8.3"],"Layers":["blobs/sha256/${"4".repeat(64)}"],"LayerSources":{"sha256:${"4".repeat(64)}":{"mediaType":"application/vnd.oci.image.layer.v1.tar","size":1,"digest":"sha256:${"4".repeat(64)}"}}},{"Config":"blobs/sha256/${"5".repeat(64)}","RepoTags":null,"Layers":[]}]`,
      false,
      `sha256:${"3".repeat(64)} registry:2.8.3\nsha256:${"5".repeat(64)} -\n`,
    ],
  ])("casd_archive_entries: %s", (name, manifest, gz, want) => {
    const a = archive(`${name.length}.tar${gz ? ".gz" : ""}`, manifest, gz);
    const r = helpers(`casd_archive_entries ${JSON.stringify(a)}`);
    expect(r).toEqual({ code: 0, stdout: want, stderr: "" });
  });

  test("casd_archive_entries refuses a tar without manifest.json", () => {
    const d = fs.mkdtempSync(path.join(dir, "n-"));
    fs.writeFileSync(path.join(d, "other"), "x");
    const a = path.join(dir, "not-docker.tar");
    spawnSync("tar", ["-cf", a, "-C", d, "other"]);
    expect(helpers(`casd_archive_entries ${JSON.stringify(a)}`)).toEqual({
      code: 1,
      stdout: "",
      stderr: `casd: error: ${a} is not a docker save archive (no manifest.json)\n`,
    });
  });

  test("casd_verify_archive names both checksums and the fix", () => {
    const a = path.join(dir, "blob.tar");
    fs.writeFileSync(a, "hello\n");
    const have = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
    expect(helpers(`casd_verify_archive ${JSON.stringify(a)} ${SHA}`)).toEqual({
      code: 1,
      stdout: "",
      stderr: `casd: error: ${a} has sha256 ${have}, expected ${SHA}: the bundle is corrupt or not the one configured; copy it again and check the sha256 in config\n`,
    });
    expect(
      helpers(
        `casd_verify_archive ${JSON.stringify(a)} ${have}; stat -c '%a' ${JSON.stringify(a)}; echo "changed=$CASD_CHANGED"`,
      ),
    ).toEqual({ code: 0, stdout: "600\nchanged=1\n", stderr: "" });
    expect(
      helpers(`casd_verify_archive ${JSON.stringify(path.join(dir, "absent.tar"))} ${have}`).stderr,
    ).toBe(
      `casd: error: ${path.join(dir, "absent.tar")} is missing: the upload step must run first\n`,
    );
  });

  test("the auth step accepts one bcrypt htpasswd line on stdin and refuses anything else", () => {
    const authDir = path.join(dir, "auth");
    const script = s
      .renderAuthScript({
        journal: "unit-auth",
        authDir,
        htpasswdPath: path.join(authDir, "htpasswd"),
      })
      .replace("CASD_UNDO_ROOT=/var/lib/casd-registry-undo", `CASD_UNDO_ROOT=${dir}/undo`);
    const bad = spawnSync("bash", ["-c", script], { input: "casd:plaintext\n", encoding: "utf8" });
    expect([bad.status, bad.stderr]).toEqual([
      1,
      "casd: error: stdin is not one htpasswd line with a bcrypt hash\n",
    ]);
    expect(fs.existsSync(authDir)).toBe(false);
    if (process.getuid?.() !== 0) return; // chown root needs root; the lab covers it otherwise
    const line = "casd:$2b$10$abcdefghijklmnopqrstuu0123456789012345678901234567890\n";
    const ok = spawnSync("bash", ["-c", script], { input: line, encoding: "utf8" });
    expect([ok.status, ok.stdout]).toEqual([0, "casd: auth: changed\n"]);
    expect(fs.readFileSync(path.join(authDir, "htpasswd"), "utf8")).toBe(line);
    expect((fs.statSync(path.join(authDir, "htpasswd")).mode & 0o777).toString(8)).toBe("400");
    const again = spawnSync("bash", ["-c", script], { input: line, encoding: "utf8" });
    expect(again.stdout).toBe("casd: auth: unchanged\n");
    const undo = s
      .renderAuthDeleteScript({ journal: "unit-auth" })
      .replace("CASD_UNDO_ROOT=/var/lib/casd-registry-undo", `CASD_UNDO_ROOT=${dir}/undo`);
    expect(spawnSync("bash", ["-c", undo], { encoding: "utf8" }).stdout).toBe(
      "casd: auth (delete): changed\n",
    );
    expect(fs.existsSync(authDir)).toBe(false);
  });
});
