/**
 * The whole path against a loopback mirror serving stand-in archives:
 * fetch → verify → install into a temporary PULUMI_HOME → preflight; then
 * tampering, missing files and plugins, resuming, the CLI path of install,
 * serving the bundle for PULUMI_PLUGIN_DOWNLOAD_URL_OVERRIDES, and the
 * Harbor artifacts named by a stack config.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { Manifest, readManifest, writeManifest } from "../../offline/bundle";
import { download } from "../../offline/download";
import { FetchOptions, fetchBundle, renderNpmBootstrap } from "../../offline/fetch";
import { findOnPath, installBundle, pluginLayoutProblems } from "../../offline/install";
import { PluginsLock, serializeLock } from "../../offline/lock";
import { Platform, cliArchiveName, hostPlatform, pluginArchiveName } from "../../offline/names";
import { formatChecks, preflight } from "../../offline/preflight";
import { humanBytes, lineProgress } from "../../offline/progress";
import { envLine, pluginOverride, startBundleServer } from "../../offline/serve";
import { skopeoCopyArgs } from "../../offline/stack";
import { verifyBundle } from "../../offline/verify";
import {
  COMMITTED_LOCK,
  Mirror,
  REPO,
  buildReleaseTree,
  fakeCliScript,
  readLockFile,
  removeTmpDirs,
  runCli,
  sha256,
  sha256Bytes,
  startMirror,
  tmpDir,
} from "./support/fixtures";

const platform: Platform = hostPlatform();
const noNpm = { cli: true, plugins: true, npm: false, harbor: false };

let work: string;
let releases: string;
let mirror: Mirror;
let sums: Map<string, string>;
let committed: PluginsLock;
let lockFile: string; // the lock the golden bundle was fetched with (sums recorded)
let bundle: string; // the golden bundle: never modified, copied for destructive tests
let progressLines: string[];

function freshLock(name: string): string {
  const file = path.join(tmpDir(name), "plugins.lock.json");
  fs.copyFileSync(COMMITTED_LOCK, file);
  return file;
}

function fetchOptions(
  overrides: Partial<FetchOptions> & Pick<FetchOptions, "bundleDir" | "lockFile">,
): FetchOptions {
  return {
    projectDir: REPO,
    platforms: [platform],
    pluginsUrl: `${mirror.url}/plugins`,
    cliUrl: `${mirror.url}/sdk`,
    parts: noNpm,
    progress: lineProgress(() => undefined),
    ...overrides,
  };
}

function copyBundle(): string {
  const dir = path.join(tmpDir("copy"), "bundle");
  fs.cpSync(bundle, dir, { recursive: true });
  return dir;
}

const pluginFile = (name: string) => {
  const p = committed.plugins.find((x) => x.name === name);
  if (!p) throw new Error(`no ${name}`);
  return pluginArchiveName(p.kind, p.name, p.version, platform);
};

beforeAll(async () => {
  committed = readLockFile(COMMITTED_LOCK);
  work = tmpDir("e2e");
  releases = path.join(work, "releases");
  sums = buildReleaseTree(releases, committed, platform);
  mirror = await startMirror(releases);
  lockFile = freshLock("lock");
  bundle = path.join(work, "bundle");
  progressLines = [];
  await fetchBundle(
    fetchOptions({
      bundleDir: bundle,
      lockFile,
      progress: lineProgress((l) => progressLines.push(l)),
    }),
  );
});

afterAll(async () => {
  await mirror.close();
  removeTmpDirs();
});

describe("fetch", () => {
  it("downloads the CLI and every locked plugin for the platform, records their sums in the lock and the manifest", () => {
    const lock = readLockFile(lockFile);
    const expected = [
      cliArchiveName(committed.cli.version, platform),
      ...committed.plugins.map((p) => pluginArchiveName(p.kind, p.name, p.version, platform)),
    ];
    expect(lock.cli.archives[platform]?.sha256).toBe(sums.get(expected[0]));
    for (const p of lock.plugins)
      expect(p.archives[platform]?.sha256).toBe(sums.get(pluginFile(p.name)));
    // Other platforms stay unpinned; nothing else in the lock changed.
    const unpinned = JSON.parse(serializeLock(lock)) as PluginsLock;
    unpinned.cli.archives[platform] = committed.cli.archives[platform];
    for (const p of unpinned.plugins)
      p.archives[platform] = committed.plugins.find((c) => c.name === p.name)?.archives[platform];
    expect(serializeLock(unpinned)).toBe(fs.readFileSync(COMMITTED_LOCK, "utf8"));

    const manifest = readManifest(bundle);
    expect(manifest.files.map((f) => [f.path, f.role, f.sha256])).toEqual([
      [`cli/${expected[0]}`, "cli", sums.get(expected[0])],
      ["plugins.lock.json", "lock", sha256(path.join(bundle, "plugins.lock.json"))],
      ...expected.slice(1).map((f) => [`plugins/${f}`, "plugin", sums.get(f)]),
    ]);
    expect(manifest.parts).toEqual(noNpm);
    expect(manifest.platforms).toEqual([platform]);
    expect(fs.readFileSync(path.join(bundle, "plugins.lock.json"), "utf8")).toBe(
      fs.readFileSync(lockFile, "utf8"),
    );
    expect(progressLines.filter((l) => l.startsWith("fetched ")).sort()).toEqual(
      expected
        .map(
          (f) =>
            `fetched ${f === expected[0] ? "cli" : "plugins"}/${f} (${humanBytes(fs.statSync(path.join(releases, f === expected[0] ? "sdk" : "plugins", f)).size)}) sha256 ${sums.get(f)}`,
        )
        .sort(),
    );
  });

  it("writes SHA256SUMS that sha256sum -c accepts (a check that needs no node_modules)", () => {
    const r = spawnSync("sha256sum", ["--quiet", "-c", "SHA256SUMS"], {
      cwd: bundle,
      encoding: "utf8",
    });
    expect([r.status, r.stdout, r.stderr]).toEqual([0, "", ""]);
    expect(
      fs
        .readFileSync(path.join(bundle, "SHA256SUMS"), "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => l.slice(66)),
    ).toEqual([
      `cli/${cliArchiveName(committed.cli.version, platform)}`,
      "manifest.json",
      "plugins.lock.json",
      ...committed.plugins.map(
        (p) => `plugins/${pluginArchiveName(p.kind, p.name, p.version, platform)}`,
      ),
    ]);
  });

  it("the npm bootstrap script is plain POSIX sh (shellcheck)", () => {
    const shellcheck = findOnPath("shellcheck", { PATH: `${process.env.PATH}:/usr/bin` });
    if (!shellcheck) {
      if (process.env.CI === "true")
        throw new Error("shellcheck is not installed (.ci/run installs it)");
      console.log("skipped: shellcheck is not installed");
      return;
    }
    const script = renderNpmBootstrap({
      registry: "http://127.0.0.1:4873/",
      packageLockSha256: "e".repeat(64),
    });
    const file = path.join(tmpDir("sc"), "bootstrap-npm.sh");
    fs.writeFileSync(file, script);
    const r = spawnSync(shellcheck, ["-s", "sh", file], { encoding: "utf8" });
    expect(r.stdout).toBe("");
    expect(r.status).toBe(0);
    expect(script).toContain(
      `npm ci --offline --cache "$tmp/cache" --registry 'http://127.0.0.1:4873/' --ignore-scripts`,
    );
  });

  it("a second run downloads nothing and keeps the bundle byte for byte", async () => {
    const before = fs.readFileSync(path.join(bundle, "manifest.json"), "utf8");
    const copy = copyBundle();
    const n = mirror.requests.length;
    const r = await fetchBundle(
      fetchOptions({
        bundleDir: copy,
        lockFile: (() => {
          const f = freshLock("again");
          fs.copyFileSync(lockFile, f);
          return f;
        })(),
      }),
    );
    expect([r.downloaded, r.skipped, r.recorded]).toEqual([0, 5, []]);
    expect(mirror.requests.length).toBe(n);
    expect(fs.readFileSync(path.join(copy, "manifest.json"), "utf8")).toBe(before);
  });

  it("refuses an archive whose sum differs from the one pinned in the lock, and keeps nothing of it", async () => {
    const pinned = freshLock("pinned");
    const lock = readLockFile(pinned);
    const tls = lock.plugins.find((p) => p.name === "tls");
    const entry = tls?.archives[platform];
    if (!entry) throw new Error("no tls entry");
    entry.sha256 = "b".repeat(64);
    fs.writeFileSync(pinned, serializeLock(lock));
    const dir = path.join(tmpDir("pinned-bundle"), "bundle");
    const url = `${mirror.url}/plugins/${pluginFile("tls")}`;
    await expect(fetchBundle(fetchOptions({ bundleDir: dir, lockFile: pinned }))).rejects.toThrow(
      `1 of 5 downloads failed (run the same command again: finished files are kept and partial ones resume)\n  - plugins/${pluginFile("tls")}: checksum mismatch for ${url}: expected sha256 ${"b".repeat(64)}, got ${sums.get(pluginFile("tls"))}`,
    );
    expect(fs.existsSync(path.join(dir, "plugins", pluginFile("tls")))).toBe(false);
    expect(fs.existsSync(path.join(dir, "plugins", `${pluginFile("tls")}.part`))).toBe(false);
    expect(fs.existsSync(path.join(dir, "manifest.json"))).toBe(false);
  });

  it("refuses to fetch from a lock that disagrees with node_modules", async () => {
    const drifted = freshLock("drift");
    fs.writeFileSync(drifted, fs.readFileSync(drifted, "utf8").replace(/5\.6\.1/g, "5.6.0"));
    await expect(
      fetchBundle(fetchOptions({ bundleDir: path.join(tmpDir("d"), "b"), lockFile: drifted })),
    ).rejects.toThrow(
      `${drifted} disagrees with node_modules: run npm run cache -- lock, then fetch again\n  - plugin resource tls: the lock has 5.6.0, node_modules asks for 5.6.1`,
    );
  });
});

describe("resuming", () => {
  it("a cut download resumes within the same fetch with a Range request", async () => {
    const dir = path.join(tmpDir("resume"), "bundle");
    const file = pluginFile("kubernetes");
    mirror.cutOnce(`/releases/plugins/${file}`, 40_000);
    const n = mirror.requests.length;
    const r = await fetchBundle(
      fetchOptions({
        bundleDir: dir,
        lockFile: freshLock("resume-lock"),
        parts: { ...noNpm, cli: false },
      }),
    );
    expect(r.resumed).toBe(1);
    const mine = mirror.requests.slice(n).filter((q) => q.path.endsWith(file));
    expect(mine.map((q) => q.range)).toEqual([undefined, expect.stringMatching(/^bytes=\d+-$/)]);
    expect(Number(/\d+/.exec(mine[1].range ?? "")?.[0])).toBeGreaterThan(0);
    expect(sha256(path.join(dir, "plugins", file))).toBe(sums.get(file));
  });

  it("an interrupted run leaves a .part that the next run completes", async () => {
    const file = pluginFile("docker");
    const url = `${mirror.url}/plugins/${file}`;
    const dest = path.join(tmpDir("part"), file);
    mirror.cutOnce(`/releases/plugins/${file}`, 50_000);
    await expect(download({ url, dest, attempts: 1 })).rejects.toThrow(
      / after \d+ bytes \(run again to resume\)$/,
    );
    const partial = fs.statSync(`${dest}.part`).size;
    expect(partial).toBeGreaterThan(0);
    expect(fs.existsSync(dest)).toBe(false);
    const r = await download({ url, dest, sha256: sums.get(file) });
    expect(r).toMatchObject({ resumed: true, skipped: false, sha256: sums.get(file) });
    expect(mirror.requests.at(-1)?.range).toBe(`bytes=${partial}-`);
    expect(fs.existsSync(`${dest}.part`)).toBe(false);
  });

  it("a .part that is already whole is finished from the server's 416 answer", async () => {
    const file = pluginFile("command");
    const dest = path.join(tmpDir("whole"), file);
    fs.copyFileSync(path.join(releases, "plugins", file), `${dest}.part`);
    const r = await download({
      url: `${mirror.url}/plugins/${file}`,
      dest,
      sha256: sums.get(file),
    });
    expect(r).toMatchObject({
      resumed: true,
      sha256: sums.get(file),
      size: fs.statSync(path.join(releases, "plugins", file)).size,
    });
  });

  it("an HTTP error names the URL", async () => {
    const url = `${mirror.url}/plugins/pulumi-resource-nope-v1.0.0-linux-amd64.tar.gz`;
    await expect(download({ url, dest: path.join(tmpDir("404"), "x") })).rejects.toThrow(
      `HTTP 404 for ${url}`,
    );
  });
});

describe("verify", () => {
  const verify = (bundleDir: string, lock = lockFile) =>
    verifyBundle({ bundleDir, lockFile: lock, projectDir: REPO, parts: noNpm });

  it("passes on the fetched bundle", async () => {
    const r = await verify(bundle);
    expect(r.errors).toEqual([]);
    expect(r.checked).toBe(6);
  });

  it("one changed byte: an exact error, and exit code 1 from the CLI", async () => {
    const copy = copyBundle();
    const file = path.join(copy, "plugins", pluginFile("tls"));
    const bytes = fs.readFileSync(file);
    bytes[100] ^= 0x01;
    fs.writeFileSync(file, bytes);
    const line = `checksum mismatch plugins/${pluginFile("tls")}: manifest sha256 ${sums.get(pluginFile("tls"))}, file sha256 ${sha256(file)}`;
    expect((await verify(copy)).errors).toEqual([line]);
    const cli = await runCli([
      "verify",
      "--project",
      REPO,
      "--lock",
      lockFile,
      "--bundle",
      copy,
      "--no-npm",
    ]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toBe(`error: bundle ${copy} failed verification (1 problem)\n  - ${line}\n`);
  });

  it("a missing file, a file the manifest lacks, and a sum the lock pins otherwise", async () => {
    const copy = copyBundle();
    fs.rmSync(path.join(copy, "plugins", pluginFile("docker")));
    const manifest: Manifest = readManifest(copy);
    writeManifest(copy, {
      ...manifest,
      files: manifest.files.filter((f) => !f.path.endsWith(pluginFile("command"))),
    });
    const otherLock = freshLock("other");
    const lock = readLockFile(lockFile);
    const tls = lock.plugins.find((p) => p.name === "tls")?.archives[platform];
    if (tls) tls.sha256 = "c".repeat(64);
    fs.writeFileSync(otherLock, serializeLock(lock));
    expect((await verify(copy, otherLock)).errors).toEqual([
      `missing file plugins/${pluginFile("docker")} (resource plugin docker 5.2.0 for ${platform})`,
      `not in bundle: resource plugin command 1.2.1 for ${platform} (plugins/${pluginFile("command")}), required by ${otherLock}`,
      `lock mismatch plugins/${pluginFile("tls")}: ${otherLock} pins sha256 ${"c".repeat(64)}, bundle has ${sums.get(pluginFile("tls"))}`,
    ]);
  });

  it("no manifest, no npm cache, another platform", async () => {
    const copy = copyBundle();
    expect(
      (
        await verifyBundle({
          bundleDir: copy,
          lockFile,
          projectDir: REPO,
          parts: { ...noNpm, npm: true },
        })
      ).errors,
    ).toEqual([
      "not in bundle: the npm cache (npm-cache/), required for npm ci --offline: run cache fetch without --no-npm",
    ]);
    const other: Platform = platform === "linux-arm64" ? "linux-amd64" : "linux-arm64";
    const errs = (
      await verifyBundle({
        bundleDir: copy,
        lockFile,
        projectDir: REPO,
        platforms: [other],
        parts: noNpm,
      })
    ).errors;
    expect(errs[0]).toBe(
      `not in bundle: Pulumi CLI 3.248.0 for ${other} (cli/${cliArchiveName("3.248.0", other)}), required by ${lockFile}`,
    );
    expect(errs).toHaveLength(5);
    fs.rmSync(path.join(copy, "manifest.json"));
    await expect(verify(copy)).rejects.toThrow(
      `missing manifest.json in ${copy}: the bundle is incomplete (run npm run cache -- fetch)`,
    );
  });

  it("a manifest path that leaves the bundle is refused", async () => {
    const copy = copyBundle();
    const manifest = readManifest(copy);
    writeManifest(copy, {
      ...manifest,
      files: [
        ...manifest.files,
        { path: "../../etc/passwd", sha256: "0".repeat(64), size: 1, role: "plugin" },
      ],
    });
    expect((await verify(copy)).errors).toEqual([
      'unsafe path in the manifest: "../../etc/passwd"',
    ]);
  });
});

/** A project the preflight can read: node_modules of the repo, a stack, the fetched lock. */
function preflightProject(): { projectDir: string; env: NodeJS.ProcessEnv } {
  const projectDir = tmpDir("proj");
  fs.symlinkSync(path.join(REPO, "node_modules"), path.join(projectDir, "node_modules"));
  fs.writeFileSync(path.join(projectDir, "Pulumi.yaml"), "name: casd-registry\nruntime: nodejs\n");
  fs.writeFileSync(
    path.join(projectDir, "Pulumi.offline.yaml"),
    "secretsprovider: passphrase\nencryptionsalt: v1:c2FsdA==:v1:aXY=:Y2lwaGVy\nconfig: {}\n",
  );
  fs.mkdirSync(path.join(projectDir, "offline"));
  fs.copyFileSync(lockFile, path.join(projectDir, "offline", "plugins.lock.json"));
  const passFile = path.join(projectDir, "passphrase");
  fs.writeFileSync(passFile, "correct horse\n", { mode: 0o600 });
  const env = {
    PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: projectDir,
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_BACKEND_URL: `file://${path.join(projectDir, "state")}`,
    PULUMI_CONFIG_PASSPHRASE_FILE: passFile,
  };
  return { projectDir, env };
}

describe("install, then preflight", () => {
  it("without a CLI on PATH: unpacks the CLI, lays out each plugin as the CLI does, and preflight passes", async () => {
    const home = path.join(tmpDir("home"), ".pulumi");
    const { projectDir, env } = preflightProject();
    const logs: string[] = [];
    const r = await installBundle({
      bundleDir: bundle,
      lockFile,
      projectDir: REPO,
      pulumiHome: home,
      platform,
      parts: { ...noNpm, cli: true },
      pulumi: null,
      env,
      log: (l) => logs.push(l),
    });
    expect(r.cli).toBe(path.join(home, "bin", "pulumi"));
    expect(r.plugins.map((p) => [p.name, p.via])).toEqual(
      committed.plugins.map((p) => [p.name, "layout"]),
    );
    expect(fs.readdirSync(path.join(home, "plugins")).sort()).toEqual(
      committed.plugins
        .flatMap((p) => [
          `resource-${p.name}-v${p.version}`,
          `resource-${p.name}-v${p.version}.lock`,
        ])
        .sort(),
    );
    for (const p of committed.plugins) {
      const dir = path.join(home, "plugins", `resource-${p.name}-v${p.version}`);
      expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
      expect(fs.statSync(`${dir}.lock`).mode & 0o777).toBe(0o600);
      expect(fs.readdirSync(dir).sort()).toEqual([
        "LICENSE",
        "README.md",
        "filler.bin",
        `pulumi-resource-${p.name}`,
      ]);
      expect(pluginLayoutProblems(home, "resource", p.name, p.version, platform)).toEqual([]);
    }
    expect(fs.readdirSync(path.join(home, "bin")).sort()).toEqual([
      "pulumi",
      "pulumi-language-nodejs",
    ]);

    const checks = preflight({
      projectDir,
      lockFile: path.join(projectDir, "offline", "plugins.lock.json"),
      pulumiHome: home,
      platform,
      bundleDir: bundle,
      env,
    });
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(checks.map((c) => c.name)).toEqual([
      "lock",
      "pulumi CLI",
      ...committed.plugins.map((p) => `plugin ${p.name} ${p.version}`),
      "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION",
      "PULUMI_SKIP_UPDATE_CHECK",
      "backend",
      "secrets (offline)",
      "passphrase",
    ]);
    expect(checks[1].detail).toBe(`${path.join(home, "bin", "pulumi")} is 3.248.0`);
    expect(formatChecks(checks).split("\n").at(-2)).toBe("preflight: all 11 checks passed");

    // A second install finds everything in place.
    const again = await installBundle({
      bundleDir: bundle,
      lockFile,
      projectDir: REPO,
      pulumiHome: home,
      platform,
      parts: { ...noNpm, cli: false },
      pulumi: null,
      env,
      log: () => undefined,
    });
    expect(again.plugins.map((p) => p.via)).toEqual(["present", "present", "present", "present"]);

    // A missing plugin: preflight names it and says how to fix it.
    fs.rmSync(path.join(home, "plugins", "resource-docker-v5.2.0"), { recursive: true });
    // An unfinished install of another.
    fs.writeFileSync(path.join(home, "plugins", "resource-tls-v5.6.1.partial"), "");
    const failed = preflight({
      projectDir,
      lockFile: path.join(projectDir, "offline", "plugins.lock.json"),
      pulumiHome: home,
      platform,
      bundleDir: bundle,
      env,
    }).filter((c) => !c.ok);
    expect(failed).toEqual([
      {
        name: "plugin docker 5.2.0",
        ok: false,
        detail: `resource plugin docker 5.2.0 is not installed: ${path.join(home, "plugins", "resource-docker-v5.2.0")} does not exist`,
        fix: `npm run cache -- install --bundle ${bundle} (or: pulumi plugin install resource docker 5.2.0 --file ${path.join(bundle, "plugins", pluginFile("docker"))})`,
      },
      {
        name: "plugin tls 5.6.1",
        ok: false,
        detail: `resource plugin tls 5.6.1: its installation did not finish (${path.join(home, "plugins", "resource-tls-v5.6.1")}.partial exists)`,
        fix: `npm run cache -- install --bundle ${bundle} (or: pulumi plugin install resource tls 5.6.1 --file ${path.join(bundle, "plugins", pluginFile("tls"))})`,
      },
    ]);
    // A provider binary on PATH would shadow the installed plugin.
    const ambientDir = tmpDir("ambient");
    fs.writeFileSync(path.join(ambientDir, "pulumi-resource-command"), "#!/bin/sh\n", {
      mode: 0o755,
    });
    const shadowed = preflight({
      projectDir,
      lockFile: path.join(projectDir, "offline", "plugins.lock.json"),
      pulumiHome: home,
      platform,
      bundleDir: bundle,
      env: { ...env, PATH: `${ambientDir}:${env.PATH}` },
    });
    expect(shadowed.find((c) => c.name === "plugin command 1.2.1")).toEqual({
      name: "plugin command 1.2.1",
      ok: false,
      detail: `${path.join(ambientDir, "pulumi-resource-command")} on PATH would be run instead of the installed resource plugin command 1.2.1`,
      fix: "remove it from PATH, or export PULUMI_IGNORE_AMBIENT_PLUGINS=true",
    });
    const ignored = preflight({
      projectDir,
      lockFile: path.join(projectDir, "offline", "plugins.lock.json"),
      pulumiHome: home,
      platform,
      bundleDir: bundle,
      env: { ...env, PATH: `${ambientDir}:${env.PATH}`, PULUMI_IGNORE_AMBIENT_PLUGINS: "true" },
    });
    expect(ignored.find((c) => c.name === "plugin command 1.2.1")?.ok).toBe(true);
    // install repairs both (the .partial makes it start that plugin over).
    const repaired = await installBundle({
      bundleDir: bundle,
      lockFile,
      projectDir: REPO,
      pulumiHome: home,
      platform,
      parts: { ...noNpm, cli: false },
      pulumi: null,
      env,
      log: () => undefined,
    });
    expect(repaired.plugins.map((p) => [p.name, p.via])).toEqual([
      ["command", "present"],
      ["docker", "layout"],
      ["kubernetes", "present"],
      ["tls", "layout"],
    ]);
  });

  it("with a CLI on PATH: runs pulumi plugin install <kind> <name> <version> --file <archive> with PULUMI_HOME set", async () => {
    const home = path.join(tmpDir("home-cli"), ".pulumi");
    const bin = tmpDir("fakebin");
    fs.writeFileSync(path.join(bin, "pulumi"), fakeCliScript("3.248.0"), { mode: 0o755 });
    const argvLog = path.join(bin, "argv.log");
    const env = { PATH: `${bin}:/usr/bin:/bin`, FAKE_PULUMI_LOG: argvLog };
    const r = await installBundle({
      bundleDir: bundle,
      lockFile,
      projectDir: REPO,
      pulumiHome: home,
      platform,
      parts: noNpm && { ...noNpm, cli: false },
      env,
      log: () => undefined,
    });
    expect(r.pluginsVia).toBe(path.join(bin, "pulumi"));
    expect(fs.readFileSync(argvLog, "utf8").trimEnd().split("\n")).toEqual(
      committed.plugins.map(
        (p) =>
          `plugin install resource ${p.name} ${p.version} --file ${path.join(bundle, "plugins", pluginFile(p.name))}`,
      ),
    );
    expect(r.plugins.map((p) => p.via)).toEqual(["cli", "cli", "cli", "cli"]);
    for (const p of committed.plugins)
      expect(pluginLayoutProblems(home, "resource", p.name, p.version, platform)).toEqual([]);
  });

  it("refuses a tampered bundle before touching PULUMI_HOME", async () => {
    const copy = copyBundle();
    fs.appendFileSync(path.join(copy, "plugins", pluginFile("command")), "x");
    const home = path.join(tmpDir("home-bad"), ".pulumi");
    await expect(
      installBundle({
        bundleDir: copy,
        lockFile,
        projectDir: REPO,
        pulumiHome: home,
        platform,
        parts: noNpm,
        pulumi: null,
        log: () => undefined,
      }),
    ).rejects.toThrow(
      `bundle ${copy} failed verification (1 problem)\n  - checksum mismatch plugins/${pluginFile("command")}`,
    );
    expect(fs.existsSync(home)).toBe(false);
  });

  it("preflight failures each say their fix", () => {
    const { projectDir } = preflightProject();
    fs.writeFileSync(
      path.join(projectDir, "Pulumi.cloud.yaml"),
      "secretsprovider: awskms://alias/x\n",
    );
    const env = {
      PATH: "/usr/bin:/bin",
      PULUMI_SKIP_UPDATE_CHECK: "false",
      PULUMI_BACKEND_URL: "https://api.pulumi.com",
    };
    const home = path.join(tmpDir("empty-home"), ".pulumi");
    const checks = preflight({
      projectDir,
      lockFile: path.join(projectDir, "offline", "plugins.lock.json"),
      pulumiHome: home,
      platform,
      bundleDir: path.join(projectDir, "offline", "bundle"),
      env,
    });
    const failed = checks.filter((c) => !c.ok);
    expect(failed.map((c) => [c.name, c.detail, c.fix])).toEqual([
      [
        "pulumi CLI",
        `no pulumi on PATH or in ${path.join(home, "bin")}`,
        `npm run cache -- install --bundle offline/bundle --cli, then export PATH="${path.join(home, "bin")}:$PATH"`,
      ],
      ...committed.plugins.map((p) => [
        `plugin ${p.name} ${p.version}`,
        `resource plugin ${p.name} ${p.version} is not installed: ${path.join(home, "plugins", `resource-${p.name}-v${p.version}`)} does not exist`,
        `npm run cache -- install --bundle offline/bundle (or: pulumi plugin install resource ${p.name} ${p.version} --file offline/bundle/plugins/${pluginFile(p.name)})`,
      ]),
      [
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION is not set: the engine would try to download any plugin it misses instead of failing at once",
        "export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true",
      ],
      [
        "PULUMI_SKIP_UPDATE_CHECK",
        'PULUMI_SKIP_UPDATE_CHECK is "false": the CLI would try to reach Pulumi\'s servers to look for a newer version',
        "export PULUMI_SKIP_UPDATE_CHECK=true",
      ],
      [
        "backend",
        "https://api.pulumi.com (from PULUMI_BACKEND_URL) is not a self-managed backend (file:// or s3://)",
        "pulumi login file://<folder> (or s3://<bucket>), or export PULUMI_BACKEND_URL=file://<folder>",
      ],
      [
        "secrets (cloud)",
        "Pulumi.cloud.yaml uses secrets provider awskms://alias/x, not passphrase",
        "pulumi stack change-secrets-provider --stack cloud passphrase",
      ],
      [
        "passphrase",
        "neither PULUMI_CONFIG_PASSPHRASE nor PULUMI_CONFIG_PASSPHRASE_FILE is set: the CLI would stop to prompt for it",
        "export PULUMI_CONFIG_PASSPHRASE_FILE=<file, mode 0600, holding the passphrase>",
      ],
    ]);
    // Backend from `pulumi login` (credentials.json) is read too.
    fs.mkdirSync(home, { recursive: true });
    fs.writeFileSync(
      path.join(home, "credentials.json"),
      JSON.stringify({ current: "s3://casd-state" }),
    );
    const backend = preflight({
      projectDir,
      lockFile: path.join(projectDir, "offline", "plugins.lock.json"),
      pulumiHome: home,
      platform,
      bundleDir: projectDir,
      env: {},
    }).find((c) => c.name === "backend");
    expect(backend).toEqual({
      name: "backend",
      ok: true,
      detail: `s3://casd-state (from ${path.join(home, "credentials.json")} (pulumi login))`,
    });
  });
});

function get(
  url: string,
  headers: Record<string, string> = {},
  method = "GET",
): Promise<{ status: number; body: Buffer; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

describe("serve", () => {
  it("serves the locked plugins where PULUMI_PLUGIN_DOWNLOAD_URL_OVERRIDES sends the CLI", async () => {
    const srv = await startBundleServer({ bundleDir: bundle, host: "127.0.0.1", port: 0 });
    try {
      const lock = readLockFile(lockFile);
      const value = pluginOverride(lock, `${srv.url}/plugins`);
      expect(value).toBe(
        `^(?:github://api\\.github\\.com/pulumi/pulumi-command|github://api\\.github\\.com/pulumi/pulumi-docker|github://api\\.github\\.com/pulumi/pulumi-kubernetes|github://api\\.github\\.com/pulumi/pulumi-tls)$=${srv.url}/plugins`,
      );
      expect(envLine("PULUMI_PLUGIN_DOWNLOAD_URL_OVERRIDES", value)).toBe(
        `export PULUMI_PLUGIN_DOWNLOAD_URL_OVERRIDES='${value}'`,
      );

      // Read the value the way the CLI does: pairs split on ',', each on '=' into exactly two parts;
      // the regexp is matched against the plugin's source URL; the archive is asked for below the URL.
      const pairs = value.split(",").map((pair) => pair.split("="));
      expect(pairs.every((p) => p.length === 2)).toBe(true);
      const resolve = (source: string) => pairs.find(([re]) => new RegExp(re).test(source))?.[1];
      for (const p of lock.plugins) {
        const base = resolve(`github://api.github.com/pulumi/pulumi-${p.name}`);
        expect(base).toBe(`${srv.url}/plugins`);
        const res = await get(
          `${base}/${encodeURIComponent(pluginArchiveName(p.kind, p.name, p.version, platform))}`,
        );
        expect(res.status).toBe(200);
        expect(sha256Bytes(res.body)).toBe(p.archives[platform]?.sha256);
      }
      expect(resolve("github://api.github.com/pulumi/pulumi-aws")).toBeUndefined();
      expect(resolve("github://api.github.com/pulumi/pulumi-tls-extra")).toBeUndefined();
      expect(resolve("github://api.github.com/someone/pulumi-tls")).toBeUndefined();

      const cli = cliArchiveName("3.248.0", platform);
      expect(
        (await get(`${srv.url}/sdk/${cli}`)).body.equals(
          fs.readFileSync(path.join(bundle, "cli", cli)),
        ),
      ).toBe(true);
      const ranged = await get(`${srv.url}/plugins/${pluginFile("tls")}`, { Range: "bytes=10-19" });
      expect([
        ranged.status,
        ranged.headers["content-range"],
        ranged.body.equals(
          fs.readFileSync(path.join(bundle, "plugins", pluginFile("tls"))).subarray(10, 20),
        ),
      ]).toEqual([
        206,
        `bytes 10-19/${fs.statSync(path.join(bundle, "plugins", pluginFile("tls"))).size}`,
        true,
      ]);
      expect(
        (await get(`${srv.url}/plugins/${pluginFile("tls")}`, {}, "HEAD")).headers[
          "content-length"
        ],
      ).toBe(String(fs.statSync(path.join(bundle, "plugins", pluginFile("tls"))).size));
      expect(
        (await get(`${srv.url}/plugins/pulumi-resource-aws-v7.0.0-linux-amd64.tar.gz`)).status,
      ).toBe(404);
      expect((await get(`${srv.url}/plugins/%2e%2e/%2e%2e/etc/passwd`)).status).toBe(404);
      expect((await get(`${srv.url}/plugins/x`, {}, "POST")).status).toBe(405);

      // The served bundle is itself a mirror for another staging machine.
      const second = path.join(tmpDir("chain"), "bundle");
      const chained = await fetchBundle(
        fetchOptions({
          bundleDir: second,
          lockFile: (() => {
            const f = freshLock("chain");
            fs.copyFileSync(lockFile, f);
            return f;
          })(),
          pluginsUrl: `${srv.url}/plugins`,
          cliUrl: `${srv.url}/sdk`,
        }),
      );
      expect(chained.downloaded).toBe(5);
      expect(
        (await verifyBundle({ bundleDir: second, lockFile, projectDir: REPO, parts: noNpm }))
          .errors,
      ).toEqual([]);
    } finally {
      await srv.close();
    }
  });

  it("refuses what the variable cannot carry", () => {
    expect(() => pluginOverride({ plugins: [] }, "http://x")).toThrow(
      "the lock names no plugin to serve",
    );
    expect(() => pluginOverride(committed, "http://x/plugins?a=b")).toThrow(
      "the server URL contains ',' or '=', which PULUMI_PLUGIN_DOWNLOAD_URL_OVERRIDES cannot carry: http://x/plugins?a=b",
    );
  });
});

describe("Harbor artifacts named by the stack config", () => {
  it("fetches the installer into the bundle path the config names, the chart elsewhere, checks the configured sums", async () => {
    const projectDir = tmpDir("harbor-proj");
    const harborDir = path.join(releases, "harbor");
    fs.mkdirSync(harborDir, { recursive: true });
    fs.writeFileSync(
      path.join(harborDir, "harbor-offline-installer-v2.15.1.tgz"),
      "stand-in installer (fixture)\n",
    );
    fs.writeFileSync(path.join(harborDir, "harbor-1.19.1.tgz"), "stand-in chart (fixture)\n");
    const installerSum = sha256(path.join(harborDir, "harbor-offline-installer-v2.15.1.tgz"));
    const chartSum = sha256(path.join(harborDir, "harbor-1.19.1.tgz"));
    fs.writeFileSync(
      path.join(projectDir, "Pulumi.yaml"),
      "name: casd-registry\nruntime: nodejs\n",
    );
    const stackYaml = (installerSha: string) =>
      [
        "config:",
        "  casd-registry:deploy: compose",
        "  casd-registry:harbor:",
        "    version: 2.15.1",
        "    installerPath: offline/bundle/harbor-offline-installer-v2.15.1.tgz",
        `    installerSha256: ${installerSha}`,
        "  casd-registry:helm:",
        "    chartPath: charts/harbor-1.19.1.tgz",
        `    chartSha256: ${chartSum}`,
        "",
      ].join("\n");
    fs.writeFileSync(path.join(projectDir, "Pulumi.lab.yaml"), stackYaml(installerSum));
    const bundleDir = path.join(projectDir, "offline", "bundle");
    const lock = freshLock("harbor-lock");
    const sources = {
      installerUrl: `${mirror.url}/harbor/harbor-offline-installer-v2.15.1.tgz`,
      chartUrl: `${mirror.url}/harbor/harbor-1.19.1.tgz`,
    };
    const harborOnly = { cli: false, plugins: false, npm: false, harbor: true };
    await fetchBundle(
      fetchOptions({ projectDir, bundleDir, lockFile: lock, parts: harborOnly, sources }),
    );
    const m = readManifest(bundleDir);
    expect(
      m.files
        .filter((f) => f.configKey)
        .map((f) => [f.path, f.role, f.sha256, f.configKey, f.configPath]),
    ).toEqual([
      [
        "harbor-offline-installer-v2.15.1.tgz",
        "harbor-installer",
        installerSum,
        "casd-registry:harbor.installerPath",
        "offline/bundle/harbor-offline-installer-v2.15.1.tgz",
      ],
      [
        "harbor/harbor-1.19.1.tgz",
        "harbor-chart",
        chartSum,
        "casd-registry:helm.chartPath",
        "charts/harbor-1.19.1.tgz",
      ],
    ]);
    expect(
      (await verifyBundle({ bundleDir, lockFile: lock, projectDir, parts: harborOnly })).errors,
    ).toEqual([]);

    const r = await installBundle({
      bundleDir,
      lockFile: lock,
      projectDir,
      pulumiHome: tmpDir("h"),
      platform,
      parts: harborOnly,
      log: () => undefined,
    });
    expect(r.harbor).toEqual([
      path.join(bundleDir, "harbor-offline-installer-v2.15.1.tgz"),
      path.join(projectDir, "charts", "harbor-1.19.1.tgz"),
    ]);
    expect(sha256(path.join(projectDir, "charts", "harbor-1.19.1.tgz"))).toBe(chartSum);

    // A configured sum that the download does not match.
    fs.rmSync(path.join(bundleDir, "harbor-offline-installer-v2.15.1.tgz"));
    fs.writeFileSync(path.join(projectDir, "Pulumi.lab.yaml"), stackYaml("d".repeat(64)));
    await expect(
      fetchBundle(
        fetchOptions({ projectDir, bundleDir, lockFile: lock, parts: harborOnly, sources }),
      ),
    ).rejects.toThrow(
      `Harbor 2.15.1 offline installer (casd-registry:harbor.installerPath) from ${sources.installerUrl}: checksum mismatch for ${sources.installerUrl}: expected sha256 ${"d".repeat(64)}, got ${installerSum}\n  - if the new file is the right one, update casd-registry:harbor.installerSha256`,
    );

    // A stack that names nothing.
    fs.writeFileSync(path.join(projectDir, "Pulumi.lab.yaml"), "config: {}\n");
    await expect(
      fetchBundle(
        fetchOptions({ projectDir, bundleDir, lockFile: lock, parts: harborOnly, sources }),
      ),
    ).rejects.toThrow("Pulumi.lab.yaml names no Harbor artifact to fetch");
  });

  it("the image named by distribution.image is written by skopeo as a docker-archive (docker load reads it)", async () => {
    const skopeo = findOnPath("skopeo");
    const umoci = findOnPath("umoci");
    if (!skopeo || !umoci) {
      if (process.env.CI === "true")
        throw new Error("skopeo and umoci are not installed (.ci/run installs them)");
      console.log("skipped: skopeo or umoci is not installed");
      return;
    }
    // Stand-in source: an empty image built locally, in skopeo's dir: transport, named like the image.
    const src = tmpDir("img-src");
    const run = (cmd: string, args: string[]) => {
      const r = spawnSync(cmd, args, { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
    };
    run(umoci, ["init", "--layout", path.join(src, "layout")]);
    run(umoci, ["new", "--image", `${path.join(src, "layout")}:base`]);
    fs.mkdirSync(path.join(src, "images"));
    run(skopeo, [
      "copy",
      `oci:${path.join(src, "layout")}:base`,
      `dir:${path.join(src, "images", "registry:2.8.3")}`,
    ]);

    const projectDir = tmpDir("img-proj");
    fs.writeFileSync(
      path.join(projectDir, "Pulumi.yaml"),
      "name: casd-registry\nruntime: nodejs\n",
    );
    fs.writeFileSync(
      path.join(projectDir, "Pulumi.lab.yaml"),
      "config:\n  casd-registry:deploy: distribution\n  casd-registry:distribution:\n    image: registry:2.8.3\n    imageArchivePath: offline/bundle/images/registry-2.8.3.tar\n",
    );
    const bundleDir = path.join(projectDir, "offline", "bundle");
    const parts = { cli: false, plugins: false, npm: false, harbor: true };
    await fetchBundle(
      fetchOptions({
        projectDir,
        bundleDir,
        lockFile: freshLock("img-lock"),
        parts,
        sources: { imageSourcePrefix: `dir:${path.join(src, "images")}/` },
      }),
    );
    const entry = readManifest(bundleDir).files.find((f) => f.role === "image");
    expect(entry).toMatchObject({
      path: "images/registry-2.8.3.tar",
      configKey: "casd-registry:distribution.imageArchivePath",
      configPath: "offline/bundle/images/registry-2.8.3.tar",
    });
    const archive = path.join(bundleDir, "images", "registry-2.8.3.tar");
    expect(entry?.sha256).toBe(sha256(archive));
    const manifest = JSON.parse(
      spawnSync("tar", ["-xOf", archive, "manifest.json"], { encoding: "utf8" }).stdout,
    ) as { RepoTags: string[] }[];
    expect(manifest[0].RepoTags).toEqual(["docker.io/library/registry:2.8.3"]);
  }, 60_000);

  it("skopeo's arguments", () => {
    expect(
      skopeoCopyArgs("docker://registry:2.8.3", "/b/harbor/registry.tar", "registry:2.8.3"),
    ).toEqual([
      "copy",
      "--retry-times",
      "3",
      "docker://registry:2.8.3",
      "docker-archive:/b/harbor/registry.tar:registry:2.8.3",
    ]);
  });
});
