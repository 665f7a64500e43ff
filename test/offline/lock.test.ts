import * as fs from "node:fs";
import * as path from "node:path";
import { canonicalJson } from "../../offline/json";
import {
  checkLock,
  deriveLock,
  lockDifferences,
  readLock,
  recordedSums,
  serializeLock,
  validateLock,
} from "../../offline/lock";
import {
  PLATFORMS,
  cliArchiveName,
  hostPlatform,
  pluginArchiveName,
  pluginDirName,
} from "../../offline/names";
import { COMMITTED_LOCK, REPO, removeTmpDirs, tmpDir } from "./support/fixtures";

afterAll(removeTmpDirs);

describe("the committed lock", () => {
  it("agrees byte for byte with what node_modules gives (fix: npm run cache -- lock)", () => {
    const committed = fs.readFileSync(COMMITTED_LOCK, "utf8");
    const derived = serializeLock(deriveLock(REPO, readLock(COMMITTED_LOCK)));
    expect(derived).toBe(committed);
  });

  it("names the provider SDKs' plugins (from their pulumi field) and the SDK's version as the CLI's", () => {
    const lock = readLock(COMMITTED_LOCK);
    const pkg = (name: string) =>
      JSON.parse(
        fs.readFileSync(path.join(REPO, "node_modules", name, "package.json"), "utf8"),
      ) as { version: string; pulumi?: { name: string; version: string } };
    expect(lock.cli.version).toBe(pkg("@pulumi/pulumi").version);
    expect(lock.plugins.map((p) => [p.name, p.version, p.sdk])).toEqual(
      ["command", "docker", "kubernetes", "tls"].map((n) => [
        n,
        pkg(`@pulumi/${n}`).pulumi?.version,
        `@pulumi/${n}`,
      ]),
    );
    expect(lock.plugins.map((p) => `${p.name} ${p.version}`)).toEqual([
      "command 1.2.1",
      "docker 5.2.0",
      "kubernetes 4.34.2",
      "tls 5.6.1",
    ]);
    for (const p of lock.plugins) expect(Object.keys(p.archives)).toEqual([...PLATFORMS]);
  });
});

describe("archive names", () => {
  it.each([
    [
      "linux-amd64",
      "pulumi-resource-tls-v5.6.1-linux-amd64.tar.gz",
      "pulumi-v3.248.0-linux-x64.tar.gz",
    ],
    [
      "linux-arm64",
      "pulumi-resource-tls-v5.6.1-linux-arm64.tar.gz",
      "pulumi-v3.248.0-linux-arm64.tar.gz",
    ],
    [
      "darwin-amd64",
      "pulumi-resource-tls-v5.6.1-darwin-amd64.tar.gz",
      "pulumi-v3.248.0-darwin-x64.tar.gz",
    ],
    [
      "darwin-arm64",
      "pulumi-resource-tls-v5.6.1-darwin-arm64.tar.gz",
      "pulumi-v3.248.0-darwin-arm64.tar.gz",
    ],
    [
      "windows-amd64",
      "pulumi-resource-tls-v5.6.1-windows-amd64.tar.gz",
      "pulumi-v3.248.0-windows-x64.zip",
    ],
  ] as const)("%s: %s, %s", (platform, plugin, cli) => {
    expect(pluginArchiveName("resource", "tls", "5.6.1", platform)).toBe(plugin);
    expect(cliArchiveName("3.248.0", platform)).toBe(cli);
  });

  it("plugin folder and host platform", () => {
    expect(pluginDirName("resource", "kubernetes", "4.34.2")).toBe("resource-kubernetes-v4.34.2");
    expect(hostPlatform("linux", "x64")).toBe("linux-amd64");
    expect(hostPlatform("darwin", "arm64")).toBe("darwin-arm64");
    expect(hostPlatform("win32", "x64")).toBe("windows-amd64");
    expect(() => hostPlatform("linux", "ia32")).toThrow(
      "unsupported platform linux/ia32: Pulumi publishes darwin-amd64, darwin-arm64, linux-amd64, linux-arm64, windows-amd64",
    );
  });
});

describe("canonical JSON", () => {
  it("sorts keys at every depth, keeps array order, ends with a newline", () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null }, u: undefined })).toBe(
      '{\n  "a": {\n    "c": null,\n    "d": [\n      3,\n      {\n        "y": 2,\n        "z": 1\n      }\n    ]\n  },\n  "b": 1\n}\n',
    );
  });
});

/** A fake project: node_modules with SDK package.json files only. */
function fakeProject(packages: Record<string, object>): string {
  const dir = tmpDir("lockproj");
  for (const [rel, pkg] of Object.entries(packages)) {
    const full = path.join(dir, rel);
    fs.mkdirSync(full, { recursive: true });
    fs.writeFileSync(path.join(full, "package.json"), JSON.stringify(pkg));
  }
  return dir;
}

const sdk = { "node_modules/@pulumi/pulumi": { name: "@pulumi/pulumi", version: "3.248.0" } };

describe("deriving from node_modules", () => {
  it("finds nested SDKs, uses the pulumi field, keeps a third-party server", () => {
    const dir = fakeProject({
      ...sdk,
      "node_modules/@pulumi/tls": {
        name: "@pulumi/tls",
        version: "5.6.1",
        pulumi: { resource: true, name: "tls", version: "5.6.1" },
      },
      "node_modules/other/node_modules/@pulumi/tls": {
        name: "@pulumi/tls",
        version: "5.5.0",
        pulumi: { resource: true, name: "tls", version: "5.5.0" },
      },
      "node_modules/@acme/thing": {
        name: "@acme/thing",
        version: "0.3.0",
        pulumi: {
          resource: true,
          name: "thing",
          version: "v0.3.0",
          server: "https://downloads.acme.example/thing/v${VERSION}",
        },
      },
      "node_modules/@pulumi/policy": { name: "@pulumi/policy", version: "1.21.0" },
      "node_modules/not-a-plugin": {
        name: "not-a-plugin",
        version: "1.0.0",
        pulumi: { comment: "x" },
      },
    });
    const lock = deriveLock(dir);
    expect(lock.plugins.map((p) => [p.name, p.version, p.sdk, p.server])).toEqual([
      ["thing", "0.3.0", "@acme/thing", "https://downloads.acme.example/thing/v${VERSION}"],
      ["tls", "5.5.0", "@pulumi/tls", null],
      ["tls", "5.6.1", "@pulumi/tls", null],
    ]);
    expect(lock.plugins[2].archives["linux-amd64"]).toEqual({
      file: "pulumi-resource-tls-v5.6.1-linux-amd64.tar.gz",
      sha256: null,
    });
    expect(lock.cli.archives["linux-amd64"]).toEqual({
      file: "pulumi-v3.248.0-linux-x64.tar.gz",
      sha256: null,
    });
  });

  it("keeps recorded sums while the archive name is unchanged, drops them on a version change", () => {
    const sum = "a".repeat(64);
    const previous = readLock(COMMITTED_LOCK);
    const tls = previous.plugins.find((p) => p.name === "tls");
    if (!tls?.archives["linux-amd64"]) throw new Error("no tls in lock");
    tls.archives["linux-amd64"] = { ...tls.archives["linux-amd64"], sha256: sum };
    const same = fakeProject({
      ...sdk,
      "node_modules/@pulumi/tls": {
        name: "@pulumi/tls",
        version: "5.6.1",
        pulumi: { resource: true, name: "tls", version: "5.6.1" },
      },
    });
    expect(deriveLock(same, previous).plugins[0].archives["linux-amd64"]?.sha256).toBe(sum);
    const bumped = fakeProject({
      ...sdk,
      "node_modules/@pulumi/tls": {
        name: "@pulumi/tls",
        version: "5.7.0",
        pulumi: { resource: true, name: "tls", version: "5.7.0" },
      },
    });
    expect(deriveLock(bumped, previous).plugins[0].archives["linux-amd64"]?.sha256).toBeNull();
    expect(recordedSums(previous).get("pulumi-resource-tls-v5.6.1-linux-amd64.tar.gz")).toBe(sum);
  });

  it("names every way the lock and node_modules disagree", () => {
    const dir = fakeProject({
      "node_modules/@pulumi/pulumi": { name: "@pulumi/pulumi", version: "3.249.0" },
      "node_modules/@pulumi/tls": {
        name: "@pulumi/tls",
        version: "5.7.0",
        pulumi: { resource: true, name: "tls", version: "5.7.0" },
      },
      "node_modules/@pulumi/command": {
        name: "@pulumi/command",
        version: "1.2.1",
        pulumi: { resource: true, name: "command", version: "1.2.1" },
      },
      "node_modules/@pulumi/random": {
        name: "@pulumi/random",
        version: "4.18.0",
        pulumi: { resource: true, name: "random", version: "4.18.0" },
      },
    });
    expect(lockDifferences(readLock(COMMITTED_LOCK), deriveLock(dir))).toEqual([
      "Pulumi CLI: the lock has 3.248.0, node_modules/@pulumi/pulumi is 3.249.0",
      "plugin resource docker 5.2.0: in the lock, but no package in node_modules asks for it",
      "plugin resource kubernetes 4.34.2: in the lock, but no package in node_modules asks for it",
      "plugin resource random 4.18.0: asked for by node_modules (@pulumi/random), missing from the lock",
      "plugin resource tls: the lock has 5.6.1, node_modules asks for 5.7.0",
    ]);
    fs.mkdirSync(path.join(dir, "offline"));
    fs.copyFileSync(COMMITTED_LOCK, path.join(dir, "offline", "plugins.lock.json"));
    const r = checkLock(dir, path.join(dir, "offline", "plugins.lock.json"));
    expect(r.ok).toBe(false);
    expect(r.problems).toHaveLength(5);
  });

  it("a hand edit that changes nothing of substance is still drift", () => {
    const dir = tmpDir("handedit");
    const lockFile = path.join(dir, "plugins.lock.json");
    fs.writeFileSync(lockFile, fs.readFileSync(COMMITTED_LOCK, "utf8").replace(/\n$/, ""));
    const r = checkLock(REPO, lockFile);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([
      `${lockFile} is not in the generated form (hand-edited, or written by another version of this tool)`,
    ]);
  });

  it("validates a lock file and says what is wrong", () => {
    expect(
      validateLock({
        lockVersion: 2,
        cli: { version: "3.248.0", archives: { "linux-x64": { file: "a b", sha256: "xyz" } } },
        plugins: [{ kind: "language" }],
      }),
    ).toEqual([
      "lockVersion is 2, expected 1",
      "cli.archives has unknown platform linux-x64",
      "cli.archives.linux-x64.file must be a plain file name",
      "cli.archives.linux-x64.sha256 must be null or 64 lowercase hex digits",
      'plugins[0] needs kind "resource", name and version',
    ]);
  });
});
