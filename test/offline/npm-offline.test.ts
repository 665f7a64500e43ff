/**
 * The npm half of the bundle, proven inside a network namespace that has
 * only a loopback interface and no route: `npm ci --offline` fails there
 * without the bundle, and `cache install` succeeds with it.
 *
 * The project is a fixture with one small dependency that has no
 * dependencies of its own (`ms`, at the version and integrity the real
 * package-lock.json pins); `cache fetch` fills the bundle's npm cache from the
 * configured registry once, outside the namespace.
 *
 * Needs root (ip netns). Skips with a message when not root, except under
 * CI=true, where it must run.
 */
import { spawnSync, SpawnSyncReturns } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fetchBundle } from "../../offline/fetch";
import { findOnPath } from "../../offline/install";
import { hostPlatform } from "../../offline/names";
import { lineProgress } from "../../offline/progress";
import { verifyBundle } from "../../offline/verify";
import { COMMITTED_LOCK, REPO, removeTmpDirs, tmpDir } from "./support/fixtures";

const TS_NODE = path.join(REPO, "node_modules", "ts-node", "dist", "bin.js");
const CLI = path.join(REPO, "offline", "cli.ts");
const NS_PREFIX = "casd-offline-";
const ns = `${NS_PREFIX}npm-${process.pid}`;

const isRoot = process.getuid?.() === 0;
const inCi = process.env.CI === "true";
const runnable = isRoot && !!findOnPath("ip", { PATH: `${process.env.PATH}:/usr/sbin:/sbin` });
const maybe = runnable || inCi ? describe : describe.skip;
if (!runnable && !inCi) {
  console.log(
    `skipped: the npm offline proof needs root and iproute2 for a network namespace (uid ${process.getuid?.()}); CI=true runs it`,
  );
}

const IP = findOnPath("ip", { PATH: `${process.env.PATH}:/usr/sbin:/sbin` }) ?? "ip";

function sh(
  cmd: string,
  args: string[],
  opts: { cwd?: string; timeout?: number } = {},
): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd: opts.cwd, encoding: "utf8", timeout: opts.timeout ?? 60_000 });
}

/** Runs a command inside the namespace. */
function inNs(args: string[], cwd?: string, timeout?: number): SpawnSyncReturns<string> {
  return sh(IP, ["netns", "exec", ns, ...args], { cwd, timeout });
}

/** A project with one dependency, pinned as the real lock pins it. */
function fixtureProject(dir: string): void {
  const lock = JSON.parse(fs.readFileSync(path.join(REPO, "package-lock.json"), "utf8")) as {
    packages: Record<string, { version: string; integrity: string; license?: string }>;
  };
  const ms = lock.packages["node_modules/ms"];
  if (!ms)
    throw new Error(
      "package-lock.json no longer pins ms: pick another dependency-free package for this fixture",
    );
  const pkg = {
    name: "casd-offline-fixture",
    version: "1.0.0",
    private: true,
    dependencies: { ms: ms.version },
  };
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify(pkg, null, 2) + "\n");
  const pkgLock = {
    name: pkg.name,
    version: pkg.version,
    lockfileVersion: 3,
    requires: true,
    packages: {
      "": { name: pkg.name, version: pkg.version, dependencies: pkg.dependencies },
      "node_modules/ms": { version: ms.version, integrity: ms.integrity, license: ms.license },
    },
  };
  fs.writeFileSync(path.join(dir, "package-lock.json"), JSON.stringify(pkgLock, null, 2) + "\n");
}

function removeStaleNamespaces(): void {
  const list = sh(IP, ["netns", "list"]).stdout ?? "";
  for (const line of list.split("\n")) {
    const name = line.split(" ")[0];
    if (name.startsWith(NS_PREFIX)) sh(IP, ["netns", "del", name]);
  }
}

maybe("npm ci --offline inside a namespace with no route out", () => {
  let project: string;
  let bundle: string;
  let lockFile: string;
  let logs: string;

  beforeAll(async () => {
    removeStaleNamespaces();
    project = tmpDir("npm-proj");
    fixtureProject(project);
    lockFile = path.join(tmpDir("npm-lock"), "plugins.lock.json");
    fs.copyFileSync(COMMITTED_LOCK, lockFile);
    logs = tmpDir("npm-logs");
    bundle = path.join(tmpDir("npm-bundle"), "bundle");
    // On the "connected" side: fill the bundle's npm cache from the configured registry.
    await fetchBundle({
      projectDir: project,
      lockFile,
      bundleDir: bundle,
      platforms: [hostPlatform()],
      pluginsUrl: "http://127.0.0.1:9/unused",
      cliUrl: "http://127.0.0.1:9/unused",
      parts: { cli: false, plugins: false, npm: true, harbor: false },
      progress: lineProgress(() => undefined),
    });
    const add = sh(IP, ["netns", "add", ns]);
    if (add.status !== 0) throw new Error(`ip netns add ${ns}: ${add.stderr}`);
    inNs([IP, "link", "set", "lo", "up"]);
  }, 180_000);

  afterAll(() => {
    sh(IP, ["netns", "del", ns]);
    removeTmpDirs();
  });

  it("the namespace has loopback only and no route", () => {
    expect(inNs([IP, "route", "show"]).stdout.trim()).toBe("");
    expect(
      inNs([IP, "-o", "link", "show"])
        .stdout.trim()
        .split("\n")
        .map((l) => l.split(":")[1].trim()),
    ).toEqual(["lo"]);
  });

  it("the bundle holds an npm cache built from this package-lock.json", async () => {
    const r = await verifyBundle({
      bundleDir: bundle,
      lockFile,
      projectDir: project,
      parts: { cli: false, plugins: false, npm: true, harbor: false },
    });
    expect(r.errors).toEqual([]);
    expect(r.manifest.files.filter((f) => f.role === "npm-cache").length).toBeGreaterThan(0);
  });

  it("without the bundle, npm ci fails: offline it has nothing cached, online it has no route", () => {
    const copy = tmpDir("npm-nobundle");
    fixtureProject(copy);
    const offline = inNs(
      [
        "npm",
        "ci",
        "--offline",
        "--cache",
        tmpDir("npm-empty"),
        "--no-audit",
        "--no-fund",
        "--no-update-notifier",
        "--logs-dir",
        logs,
      ],
      copy,
    );
    expect(offline.status).not.toBe(0);
    expect(offline.stderr).toMatch(/ENOTCACHED/);
    const online = inNs(
      [
        "npm",
        "ci",
        "--cache",
        tmpDir("npm-empty2"),
        "--fetch-retries=0",
        "--fetch-timeout=5000",
        "--no-audit",
        "--no-fund",
        "--no-update-notifier",
        "--logs-dir",
        logs,
      ],
      copy,
      60_000,
    );
    expect(online.status).not.toBe(0);
    expect(online.stderr).toMatch(/EAI_AGAIN|ENETUNREACH|ENOTFOUND|ECONNREFUSED|ETIMEDOUT/);
    expect(fs.existsSync(path.join(copy, "node_modules", "ms"))).toBe(false);
  }, 90_000);

  it("with the bundle, cache install succeeds inside the namespace and the package loads", () => {
    const r = inNs(
      [
        process.execPath,
        TS_NODE,
        "--transpile-only",
        CLI,
        "install",
        "--project",
        project,
        "--lock",
        lockFile,
        "--bundle",
        bundle,
        "--no-plugins",
      ],
      REPO,
      120_000,
    );
    expect({ status: r.status, stderr: r.stderr }).toEqual({
      status: 0,
      stderr: expect.stringContaining(`installed npm packages offline in ${project}`),
    });
    expect(r.stdout).toContain("npm packages; next: npm run preflight");
    const load = inNs(
      [process.execPath, "-e", "process.stdout.write(String(require('ms')('2h')))"],
      project,
    );
    expect(load.stdout).toBe("7200000");
  }, 150_000);

  it("with the bundle, bootstrap-npm.sh (sh and npm only, for a machine without node_modules) succeeds too", () => {
    const fresh = tmpDir("npm-bootstrap");
    fixtureProject(fresh);
    const r = inNs(["sh", path.join(bundle, "bootstrap-npm.sh"), fresh], fresh, 120_000);
    expect({ status: r.status, stdout: r.stdout.trim().split("\n").at(-1) }).toEqual({
      status: 0,
      stdout: `bootstrap: npm packages installed offline in ${fresh}; next: npm run cache -- verify`,
    });
    expect(
      inNs([process.execPath, "-e", "process.stdout.write(String(require('ms')('1m')))"], fresh)
        .stdout,
    ).toBe("60000");
    // A package-lock.json other than the one the cache was built from is refused before npm runs.
    const other = tmpDir("npm-bootstrap-other");
    fixtureProject(other);
    fs.appendFileSync(path.join(other, "package-lock.json"), "\n");
    const refused = inNs(["sh", path.join(bundle, "bootstrap-npm.sh"), other], other);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain(
      `bootstrap: ${other}/package-lock.json is not the one the bundle's npm cache was built from`,
    );
    expect(fs.existsSync(path.join(other, "node_modules"))).toBe(false);
  }, 150_000);

  it("the install left the bundle as it was", async () => {
    const r = await verifyBundle({
      bundleDir: bundle,
      lockFile,
      projectDir: project,
      parts: { cli: false, plugins: false, npm: true, harbor: false },
    });
    expect(r.errors).toEqual([]);
  });
});
