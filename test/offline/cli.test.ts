/**
 * The command line: parser, --help, exit codes (0 ok, 1 failure, 2 usage),
 * and the real process for `--help`, a usage error and `serve`.
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { fetchBundle } from "../../offline/fetch";
import { hostPlatform, pluginArchiveName } from "../../offline/names";
import { lineProgress } from "../../offline/progress";
import {
  COMMITTED_LOCK,
  REPO,
  buildReleaseTree,
  readLockFile,
  removeTmpDirs,
  runCli,
  sha256Bytes,
  startMirror,
  tmpDir,
} from "./support/fixtures";

const TS_NODE = path.join(REPO, "node_modules", "ts-node", "dist", "bin.js");
const CLI = path.join(REPO, "offline", "cli.ts");

function spawnCli(args: string[]) {
  return spawnSync(process.execPath, [TS_NODE, "--transpile-only", CLI, ...args], {
    cwd: REPO,
    encoding: "utf8",
    timeout: 60_000,
  });
}

afterAll(removeTmpDirs);

describe("parser and exit codes (in process)", () => {
  it("--help lists every command and the exit codes", async () => {
    const r = await runCli(["--help"]);
    expect(r.code).toBe(0);
    for (const cmd of ["lock", "fetch", "verify", "install", "serve", "preflight"])
      expect(r.stdout).toMatch(new RegExp(`^  ${cmd}\\b`, "m"));
    expect(r.stdout).toContain("Exit codes:\n  0  success\n  1  a check or an operation failed");
    expect(r.stdout).toContain("  2  usage error (unknown command or option, bad value)");
  });

  it("each command has its own help", async () => {
    const r = await runCli(["fetch", "--help"]);
    expect(r.code).toBe(0);
    for (const opt of [
      "--platform <os-arch>",
      "--base-url <url>",
      "--no-npm",
      "--harbor",
      "--stack <name>",
      "--harbor-installer-url <url>",
      "--no-write-lock",
      "Exit codes:",
    ])
      expect(r.stdout).toContain(opt);
  });

  it.each([
    [["fetch", "--bogus"], "error: unknown option '--bogus'"],
    [
      ["fetch", "--platform", "linux-x64"],
      "error: option '--platform <os-arch>' argument 'linux-x64' is invalid. expected one of darwin-amd64, darwin-arm64, linux-amd64, linux-arm64, windows-amd64",
    ],
    [
      ["serve", "--port", "http"],
      "error: option '--port <n>' argument 'http' is invalid. expected a whole number from 0 to 65535",
    ],
    [["frobnicate"], "error: unknown command 'frobnicate'"],
    [[], "Usage: cache [options] [command]"],
  ])("usage error %j exits 2", async (args, message) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });

  it("lock --check exits 1 on drift and names it; 0 when it agrees", async () => {
    const dir = tmpDir("cli-drift");
    const lock = path.join(dir, "plugins.lock.json");
    fs.writeFileSync(lock, fs.readFileSync(COMMITTED_LOCK, "utf8").replace(/4\.34\.2/g, "4.34.1"));
    const bad = await runCli(["lock", "--check", "--project", REPO, "--lock", lock]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe(
      `error: ${lock} is out of date: run npm run cache -- lock and commit it\n  - plugin resource kubernetes: the lock has 4.34.1, node_modules asks for 4.34.2\n`,
    );
    const good = await runCli(["lock", "--check", "--project", REPO]);
    expect([good.code, good.stdout]).toEqual([
      0,
      "offline/plugins.lock.json agrees with node_modules\n",
    ]);
    // Without --check the lock is rewritten from node_modules.
    const fixed = await runCli(["lock", "--project", REPO, "--lock", lock]);
    expect(fixed.code).toBe(0);
    expect(fs.readFileSync(lock, "utf8")).toBe(fs.readFileSync(COMMITTED_LOCK, "utf8"));
  });

  it("preflight exits 1 and prints every failed check with its fix", async () => {
    const home = tmpDir("cli-home");
    const saved = { ...process.env };
    delete process.env.PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION;
    try {
      const r = await runCli(["preflight", "--project", REPO, "--pulumi-home", home]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(
        "FAIL  PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION is not set",
      );
      expect(r.stderr).toContain(
        "      fix: export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true",
      );
      expect(r.stderr).toContain(
        `FAIL  plugin tls 5.6.1: resource plugin tls 5.6.1 is not installed: ${path.join(home, "plugins", "resource-tls-v5.6.1")} does not exist`,
      );
      expect(r.stderr).toMatch(/preflight: \d+ of \d+ checks failed\n$/);
    } finally {
      process.env = saved;
    }
  });
});

describe("the real process", () => {
  it("--help exits 0, an unknown option exits 2", () => {
    const help = spawnCli(["--help"]);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain("Exit codes:");
    const bad = spawnCli(["verify", "--frob"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("error: unknown option '--frob'");
  }, 60_000);

  it("serve prints the environment line and serves the plugins until stopped", async () => {
    const lock = readLockFile(COMMITTED_LOCK);
    const platform = hostPlatform();
    const releases = tmpDir("cli-rel");
    const sums = buildReleaseTree(releases, lock, platform);
    const mirror = await startMirror(releases);
    const lockFile = path.join(tmpDir("cli-lock"), "plugins.lock.json");
    fs.copyFileSync(COMMITTED_LOCK, lockFile);
    const bundle = path.join(tmpDir("cli-bundle"), "bundle");
    try {
      await fetchBundle({
        projectDir: REPO,
        lockFile,
        bundleDir: bundle,
        platforms: [platform],
        pluginsUrl: `${mirror.url}/plugins`,
        cliUrl: `${mirror.url}/sdk`,
        parts: { cli: true, plugins: true, npm: false, harbor: false },
        progress: lineProgress(() => undefined),
      });
    } finally {
      await mirror.close();
    }
    const child: ChildProcess = spawn(
      process.execPath,
      [
        TS_NODE,
        "--transpile-only",
        CLI,
        "serve",
        "--project",
        REPO,
        "--lock",
        lockFile,
        "--bundle",
        bundle,
        "--port",
        "0",
      ],
      { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] },
    );
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = "";
        const timer = setTimeout(
          () => reject(new Error(`serve printed nothing in 30 s: ${out}`)),
          30_000,
        );
        child.stdout?.on("data", (d: Buffer) => {
          out += d.toString();
          const nl = out.indexOf("\n");
          if (nl >= 0) {
            clearTimeout(timer);
            resolve(out.slice(0, nl));
          }
        });
        child.on("exit", (code) => reject(new Error(`serve exited ${code}`)));
      });
      const m =
        /^export PULUMI_PLUGIN_DOWNLOAD_URL_OVERRIDES='\^\(\?:(.+)\)\$=(http:\/\/127\.0\.0\.1:\d+\/plugins)'$/.exec(
          line,
        );
      expect(m).not.toBeNull();
      const file = pluginArchiveName("resource", "tls", "5.6.1", platform);
      const body = await new Promise<Buffer>((resolve, reject) => {
        http
          .get(`${m?.[2]}/${file}`, (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => resolve(Buffer.concat(chunks)));
          })
          .on("error", reject);
      });
      expect(sha256Bytes(body)).toBe(sums.get(file));
    } finally {
      const exited = new Promise((r) => child.once("exit", r));
      if (child.pid) process.kill(child.pid, "SIGTERM");
      await exited;
    }
  }, 60_000);
});
