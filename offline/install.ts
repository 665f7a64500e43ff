/**
 * `cache install`: on the air-gapped machine, from a verified bundle:
 * - the Pulumi CLI into `$PULUMI_HOME/bin` (when asked);
 * - each plugin into `$PULUMI_HOME/plugins/<kind>-<name>-v<version>/`, with
 *   `pulumi plugin install <kind> <name> <version> --file <archive>` when a
 *   CLI is available, otherwise by laying out the folder the way the CLI does
 *   (`<dir>.lock` held during the install, `<dir>.partial` present until the
 *   archive is fully extracted); the result is checked either way;
 * - the npm packages with `npm ci --offline` from the bundle's npm cache;
 * - the Harbor artifacts to the paths the stack config names (when asked).
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Manifest, NPM_CACHE_DIR, bundlePath } from "./bundle";
import { OfflineError } from "./errors";
import { Parts, npmChildEnv } from "./fetch";
import { sha256File } from "./hash";
import { PluginLock, readLock } from "./lock";
import {
  Platform,
  cliArchiveName,
  pluginArchiveName,
  pluginBinaryName,
  pluginDirName,
  splitPlatform,
} from "./names";
import { assertBundle } from "./verify";

export interface InstallOptions {
  bundleDir: string;
  lockFile: string;
  projectDir: string;
  pulumiHome: string;
  platform: Platform;
  parts: Parts;
  /** A pulumi CLI to install plugins with; undefined: PATH, then $PULUMI_HOME/bin; null: never use a CLI. */
  pulumi?: string | null;
  /** Where the bundle's CLI is unpacked (default `$PULUMI_HOME/bin`). */
  cliDir?: string;
  reinstall?: boolean;
  /** Let npm run install scripts (default off: scripts that download would fail offline). */
  npmScripts?: boolean;
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  npmCommand?: string;
}

export interface InstalledPlugin {
  name: string;
  version: string;
  dir: string;
  via: "cli" | "layout" | "present";
}

export interface InstallResult {
  cli?: string;
  pluginsVia?: string;
  plugins: InstalledPlugin[];
  npm: boolean;
  harbor: string[];
}

/** `$PULUMI_HOME`, else `~/.pulumi`. */
export function defaultPulumiHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.PULUMI_HOME || path.join(os.homedir(), ".pulumi");
}

export function findOnPath(cmd: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const full = path.join(dir, cmd);
    try {
      fs.accessSync(full, fs.constants.X_OK);
      if (fs.statSync(full).isFile()) return full;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The CLI the tools use: given, on PATH, or in `$PULUMI_HOME/bin`. */
export function findPulumi(
  pulumiHome: string,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const onPath = findOnPath("pulumi", env);
  if (onPath) return onPath;
  const inHome = path.join(pulumiHome, "bin", "pulumi");
  return fs.existsSync(inHome) ? inHome : undefined;
}

/** What is wrong with an installed plugin's folder (empty when it is complete). */
export function pluginLayoutProblems(
  pulumiHome: string,
  kind: string,
  name: string,
  version: string,
  platform: Platform,
): string[] {
  const dir = path.join(pulumiHome, "plugins", pluginDirName(kind, name, version));
  const what = `${kind} plugin ${name} ${version}`;
  if (!fs.existsSync(dir)) return [`${what} is not installed: ${dir} does not exist`];
  if (!fs.statSync(dir).isDirectory()) return [`${what}: ${dir} is not a folder`];
  if (fs.existsSync(`${dir}.partial`))
    return [`${what}: its installation did not finish (${dir}.partial exists)`];
  const bin = path.join(dir, pluginBinaryName(kind, name, platform));
  if (!fs.existsSync(bin)) return [`${what}: ${bin} is missing`];
  const st = fs.statSync(bin);
  if (!st.isFile()) return [`${what}: ${bin} is not a file`];
  if (splitPlatform(platform).os !== "windows" && (st.mode & 0o111) === 0)
    return [`${what}: ${bin} is not executable`];
  return [];
}

/**
 * Holds an exclusive flock(2) on `lockFile` (the CLI's plugin install lock)
 * while `fn` runs, through flock(1); without flock(1) it runs unlocked.
 */
async function withFileLock<T>(lockFile: string, fn: () => Promise<T>): Promise<T> {
  fs.closeSync(fs.openSync(lockFile, "a", 0o600));
  if (!findOnPath("flock")) return fn();
  const holder: ChildProcess = spawn(
    "flock",
    ["-w", "120", lockFile, "sh", "-c", "echo locked; exec cat >/dev/null"],
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  await new Promise<void>((resolve, reject) => {
    let out = "";
    let err = "";
    holder.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("locked")) resolve();
    });
    holder.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    holder.on("exit", (code) =>
      reject(new OfflineError(`could not lock ${lockFile} (flock exit ${code}) ${err.trim()}`)),
    );
    holder.on("error", reject);
  });
  try {
    return await fn();
  } finally {
    holder.stdin?.end();
    await new Promise((r) => holder.once("exit", r));
  }
}

/** Installs a plugin archive the way the CLI lays it out; returns "present" when already complete. */
export async function layoutPlugin(
  pulumiHome: string,
  plugin: Pick<PluginLock, "kind" | "name" | "version">,
  archive: string,
  reinstall = false,
): Promise<"installed" | "present"> {
  const pluginsDir = path.join(pulumiHome, "plugins");
  fs.mkdirSync(pluginsDir, { recursive: true, mode: 0o700 });
  const dir = path.join(pluginsDir, pluginDirName(plugin.kind, plugin.name, plugin.version));
  return withFileLock(`${dir}.lock`, async () => {
    const partial = `${dir}.partial`;
    if (fs.existsSync(dir) && !fs.existsSync(partial) && !reinstall) return "present";
    fs.rmSync(dir, { recursive: true, force: true });
    fs.writeFileSync(partial, "", { mode: 0o600 });
    fs.mkdirSync(dir, { mode: 0o700 });
    const r = spawnSync("tar", ["-xzf", archive, "-C", dir, "--no-same-owner"], {
      encoding: "utf8",
    });
    if (r.status !== 0)
      throw new OfflineError(
        `could not unpack ${archive} into ${dir}: ${(r.stderr || r.error?.message || "").trim()} (${partial} stays, so the next install starts over)`,
      );
    fs.rmSync(partial);
    return "installed";
  });
}

function pulumiEnv(pulumiHome: string, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return {
    ...env,
    PULUMI_HOME: pulumiHome,
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
  };
}

/** `pulumi version` without the leading v, or the error. */
export function cliVersion(
  pulumi: string,
  env: NodeJS.ProcessEnv,
): { version?: string; error?: string } {
  const r = spawnSync(pulumi, ["version"], { env, encoding: "utf8", timeout: 30_000 });
  if (r.error) return { error: r.error.message };
  if (r.status !== 0) return { error: `exit code ${r.status}: ${r.stderr.trim()}` };
  return { version: r.stdout.trim().replace(/^v/, "") };
}

export async function installBundle(opts: InstallOptions): Promise<InstallResult> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const { manifest } = await assertBundle({
    bundleDir: opts.bundleDir,
    lockFile: opts.lockFile,
    projectDir: opts.projectDir,
    platforms: [opts.platform],
    parts: opts.parts,
  });
  const lock = readLock(opts.lockFile);
  const result: InstallResult = { plugins: [], npm: false, harbor: [] };

  if (opts.parts.cli) {
    const cliDir = opts.cliDir ?? path.join(opts.pulumiHome, "bin");
    const archive = bundlePath(
      opts.bundleDir,
      `cli/${lock.cli.archives[opts.platform]?.file ?? cliArchiveName(lock.cli.version, opts.platform)}`,
    );
    if (archive.endsWith(".zip"))
      throw new OfflineError(`${archive}: unpack the Windows CLI archive by hand into ${cliDir}`);
    fs.mkdirSync(cliDir, { recursive: true });
    const r = spawnSync(
      "tar",
      ["-xzf", archive, "-C", cliDir, "--strip-components=1", "--no-same-owner"],
      { encoding: "utf8" },
    );
    if (r.status !== 0)
      throw new OfflineError(
        `could not unpack ${archive} into ${cliDir}: ${(r.stderr || r.error?.message || "").trim()}`,
      );
    const cli = path.join(cliDir, "pulumi");
    const v = cliVersion(cli, pulumiEnv(opts.pulumiHome, env));
    if (v.version !== lock.cli.version)
      throw new OfflineError(
        `the CLI unpacked to ${cli} reports ${v.version ?? v.error}, the lock asks for ${lock.cli.version}`,
      );
    result.cli = cli;
    log(`installed Pulumi CLI ${lock.cli.version} in ${cliDir} (add it to PATH)`);
  }

  if (opts.parts.plugins) {
    const pulumi =
      opts.pulumi === null ? undefined : (opts.pulumi ?? findPulumi(opts.pulumiHome, env));
    result.pluginsVia = pulumi ?? "layout";
    const problems: string[] = [];
    for (const p of lock.plugins) {
      const archive = bundlePath(
        opts.bundleDir,
        `plugins/${p.archives[opts.platform]?.file ?? pluginArchiveName(p.kind, p.name, p.version, opts.platform)}`,
      );
      const dir = path.join(opts.pulumiHome, "plugins", pluginDirName(p.kind, p.name, p.version));
      let via: InstalledPlugin["via"];
      if (pulumi) {
        const args = [
          "plugin",
          "install",
          p.kind,
          p.name,
          p.version,
          "--file",
          archive,
          ...(opts.reinstall ? ["--reinstall"] : []),
        ];
        const r = spawnSync(pulumi, args, {
          env: pulumiEnv(opts.pulumiHome, env),
          encoding: "utf8",
          timeout: 300_000,
        });
        if (r.status !== 0) {
          problems.push(
            `${pulumi} ${args.join(" ")} failed (${r.error?.message ?? `exit code ${r.status}`}): ${`${r.stderr}`.trim().split("\n").slice(-3).join(" | ")}`,
          );
          continue;
        }
        via = "cli";
      } else {
        via =
          (await layoutPlugin(opts.pulumiHome, p, archive, opts.reinstall)) === "present"
            ? "present"
            : "layout";
      }
      const layout = pluginLayoutProblems(
        opts.pulumiHome,
        p.kind,
        p.name,
        p.version,
        opts.platform,
      );
      problems.push(...layout);
      if (!layout.length) {
        result.plugins.push({ name: p.name, version: p.version, dir, via });
        log(
          `${via === "present" ? "present  " : "installed"} ${p.kind} plugin ${p.name} ${p.version} in ${dir}${via === "cli" ? ` (with ${pulumi})` : ""}`,
        );
      }
    }
    if (problems.length)
      throw new OfflineError(`plugins were not installed into ${opts.pulumiHome}`, problems);
  }

  if (opts.parts.npm) {
    installNpmOffline(opts, manifest, env, log);
    result.npm = true;
  }

  if (opts.parts.harbor) result.harbor = await placeStackArtifacts(opts, manifest, log);
  return result;
}

function installNpmOffline(
  opts: InstallOptions,
  manifest: Manifest,
  env: NodeJS.ProcessEnv,
  log: (l: string) => void,
): void {
  const npm = manifest.npm;
  if (!npm) throw new OfflineError("the bundle has no npm cache: fetch it without --no-npm");
  // A scratch copy: npm writes to its cache even offline, and the bundle may be read-only.
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "casd-npm-offline-"));
  try {
    const cache = path.join(scratch, "cache");
    fs.cpSync(path.join(opts.bundleDir, NPM_CACHE_DIR), cache, { recursive: true });
    const args = [
      "ci",
      "--offline",
      "--cache",
      cache,
      "--registry",
      npm.registry,
      "--no-audit",
      "--no-fund",
      "--no-update-notifier",
      "--logs-dir",
      path.join(scratch, "logs"),
    ];
    if (!opts.npmScripts) args.push("--ignore-scripts");
    const r = spawnSync(opts.npmCommand ?? "npm", args, {
      cwd: opts.projectDir,
      env: npmChildEnv(env),
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.status !== 0) {
      const out = `${r.stderr}\n${r.stdout}`.trim().split("\n").slice(-12);
      const hint = /ENOTCACHED/.test(out.join("\n"))
        ? [
            "ENOTCACHED: the bundle's npm cache lacks a package of this package-lock.json: fetch the bundle again",
          ]
        : [];
      throw new OfflineError(
        `npm ${args.join(" ")} failed (${r.error?.message ?? `exit code ${r.status}`})`,
        [...hint, ...out],
      );
    }
    log(
      `installed npm packages offline in ${opts.projectDir} from ${path.join(opts.bundleDir, NPM_CACHE_DIR)}`,
    );
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

async function placeStackArtifacts(
  opts: InstallOptions,
  manifest: Manifest,
  log: (l: string) => void,
): Promise<string[]> {
  const placed: string[] = [];
  for (const f of manifest.files.filter((x) => x.configPath)) {
    const src = bundlePath(opts.bundleDir, f.path);
    const dest = path.resolve(opts.projectDir, f.configPath as string);
    if (path.resolve(src) !== dest) {
      if (!fs.existsSync(dest) || (await sha256File(dest)) !== f.sha256) {
        fs.mkdirSync(path.dirname(dest), { recursive: true });
        fs.copyFileSync(src, `${dest}.tmp`);
        fs.renameSync(`${dest}.tmp`, dest);
      }
    }
    placed.push(dest);
    log(`${f.configKey}: ${dest} (sha256 ${f.sha256})`);
  }
  if (!placed.length)
    throw new OfflineError("the bundle holds no Harbor artifact: fetch it with --harbor");
  return placed;
}
