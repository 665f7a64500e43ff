/**
 * `cache fetch`: on a connected staging machine, fill the bundle with the
 * Pulumi CLI and plugin archives named by the lock, an npm cache for
 * `npm ci --offline`, and (when asked) the Harbor artifacts the stack config
 * names; then write the manifest with the sha256 of every file.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  BUNDLE_LOCK,
  BUNDLE_VERSION,
  Manifest,
  ManifestFile,
  NPM_BOOTSTRAP,
  NPM_CACHE_DIR,
  bundlePath,
  describeFile,
  listFiles,
  mapLimit,
  readManifest,
  writeManifest,
  writeSha256Sums,
} from "./bundle";
import { DownloadResult, download } from "./download";
import { shQuote } from "./display";
import { OfflineError, UsageError } from "./errors";
import { sha256File, sha256Text } from "./hash";
import {
  PluginsLock,
  archiveFor,
  deriveLock,
  lockDifferences,
  readLock,
  serializeLock,
  writeLock,
} from "./lock";
import { Platform, cliArchiveName, pluginArchiveName } from "./names";
import { Progress, humanBytes, lineProgress } from "./progress";
import {
  ArtifactSources,
  StackArtifact,
  listStacks,
  readProject,
  readStack,
  skopeoCopyArgs,
  stackArtifacts,
} from "./stack";

/** Pulumi's release server: `<base>/sdk/<CLI archive>` and `<base>/plugins/<plugin archive>`. */
export const DEFAULT_RELEASES_URL = "https://get.pulumi.com/releases";

export interface Parts {
  cli: boolean;
  plugins: boolean;
  npm: boolean;
  harbor: boolean;
}

export interface FetchOptions {
  projectDir: string;
  lockFile: string;
  bundleDir: string;
  platforms: Platform[];
  /** Base URL of plugin archives (default `<releases>/plugins`). */
  pluginsUrl: string;
  /** Base URL of CLI archives (default `<releases>/sdk`). */
  cliUrl: string;
  parts: Parts;
  /** Stack whose config names the Harbor artifacts (needed when parts.harbor). */
  stack?: string;
  sources?: ArtifactSources;
  /** Record sha256 sums of newly seen archives into the lock file (default true). */
  writeLock?: boolean;
  concurrency?: number;
  progress?: Progress;
  npmCommand?: string;
  skopeoCommand?: string;
}

export interface FetchResult {
  manifest: Manifest;
  /** Archive file names whose sha256 this run recorded in the lock. */
  recorded: string[];
  downloaded: number;
  skipped: number;
  resumed: number;
}

interface ArchiveTask {
  rel: string;
  url: string;
  sha256: string | null;
  entry: Omit<ManifestFile, "path" | "sha256" | "size">;
  /** Where to record the sum in the lock. */
  lockEntry: { sha256: string | null };
}

export function releaseUrls(base: string): { pluginsUrl: string; cliUrl: string } {
  const b = base.replace(/\/+$/, "");
  return { pluginsUrl: `${b}/plugins`, cliUrl: `${b}/sdk` };
}

/** The placeholders Pulumi fills in a plugin's http(s) download URL. */
export function interpolateServer(
  server: string,
  name: string,
  version: string,
  platform: Platform,
): string {
  const [os, arch] = platform.split("-");
  return server
    .replace(/\$\{NAME\}/g, name)
    .replace(/\$\{VERSION\}/g, version)
    .replace(/\$\{OS\}/g, os)
    .replace(/\$\{ARCH\}/g, arch);
}

function joinUrl(base: string, file: string): string {
  return `${base.replace(/\/+$/, "")}/${encodeURIComponent(file)}`;
}

export async function fetchBundle(opts: FetchOptions): Promise<FetchResult> {
  const progress = opts.progress ?? lineProgress();
  try {
    return await fetchInto(opts, progress);
  } finally {
    // Also on failure: a live progress display keeps a timer (and the process) running.
    progress.stop();
  }
}

async function fetchInto(opts: FetchOptions, progress: Progress): Promise<FetchResult> {
  const lock = readLock(opts.lockFile);
  if (fs.existsSync(path.join(opts.projectDir, "node_modules", "@pulumi", "pulumi"))) {
    const diffs = lockDifferences(lock, deriveLock(opts.projectDir, lock));
    if (diffs.length)
      throw new OfflineError(
        `${opts.lockFile} disagrees with node_modules: run npm run cache -- lock, then fetch again`,
        diffs,
      );
  }
  fs.mkdirSync(opts.bundleDir, { recursive: true });

  const tasks: ArchiveTask[] = [];
  for (const platform of opts.platforms) {
    if (opts.parts.cli) {
      const e = archiveFor(lock.cli.archives, platform, `the Pulumi CLI ${lock.cli.version}`);
      if (e.file !== cliArchiveName(lock.cli.version, platform))
        throw new OfflineError(
          `the lock names ${e.file} for the CLI on ${platform}: regenerate it with npm run cache -- lock`,
        );
      tasks.push({
        rel: `cli/${e.file}`,
        url: joinUrl(opts.cliUrl, e.file),
        sha256: e.sha256,
        entry: { role: "cli", name: "pulumi", version: lock.cli.version, platform },
        lockEntry: e,
      });
    }
    if (opts.parts.plugins) {
      for (const p of lock.plugins) {
        const e = archiveFor(p.archives, platform, `${p.kind} plugin ${p.name} ${p.version}`);
        if (e.file !== pluginArchiveName(p.kind, p.name, p.version, platform))
          throw new OfflineError(
            `the lock names ${e.file} for ${p.kind} plugin ${p.name} on ${platform}: regenerate it with npm run cache -- lock`,
          );
        // A plugin whose SDK names its own server comes from there; Pulumi's own from the release server (or mirror).
        const base =
          p.server && /^https?:\/\//.test(p.server)
            ? interpolateServer(p.server, p.name, p.version, platform)
            : opts.pluginsUrl;
        tasks.push({
          rel: `plugins/${e.file}`,
          url: joinUrl(base, e.file),
          sha256: e.sha256,
          entry: { role: "plugin", name: p.name, version: p.version, platform },
          lockEntry: e,
        });
      }
    }
  }

  const recorded: string[] = [];
  let downloaded = 0;
  let skipped = 0;
  let resumed = 0;
  const results = await mapLimit(tasks, opts.concurrency ?? 3, async (t) => {
    const item = progress.item(t.rel);
    let r: DownloadResult;
    try {
      r = await download({
        url: t.url,
        dest: bundlePath(opts.bundleDir, t.rel),
        sha256: t.sha256,
        onProgress: (a, b) => item.update(a, b),
      });
    } catch (e) {
      item.done(`failed  ${t.rel}`);
      throw e;
    }
    item.done(
      `${r.skipped ? "present" : r.resumed ? "resumed" : "fetched"} ${t.rel} (${humanBytes(r.size)}) sha256 ${r.sha256}`,
    );
    if (r.skipped) skipped++;
    else downloaded++;
    if (r.resumed) resumed++;
    if (t.lockEntry.sha256 === null) {
      t.lockEntry.sha256 = r.sha256;
      recorded.push(path.basename(t.rel));
    }
    return r;
  });
  const failures = results.flatMap((r, i) =>
    r.status === "rejected" ? [`${tasks[i].rel}: ${(r.reason as Error).message}`] : [],
  );
  if (recorded.length && opts.writeLock !== false) writeLock(opts.lockFile, lock);
  if (failures.length) {
    throw new OfflineError(
      `${failures.length} of ${tasks.length} downloads failed (run the same command again: finished files are kept and partial ones resume)`,
      failures,
    );
  }

  const files: ManifestFile[] = [];
  for (const [i, t] of tasks.entries()) {
    const r = results[i];
    if (r.status === "fulfilled")
      files.push({ path: t.rel, sha256: r.value.sha256, size: r.value.size, ...t.entry });
  }

  let npm: Manifest["npm"];
  if (opts.parts.npm) {
    progress.log("filling the npm cache from package-lock.json (npm ci into a scratch folder)");
    npm = fetchNpm(opts);
    for (const rel of ["npm/package.json", "npm/package-lock.json"])
      files.push(await describeFile(opts.bundleDir, rel, "npm-project"));
    const cacheFiles = listFiles(path.join(opts.bundleDir, NPM_CACHE_DIR), opts.bundleDir);
    for (const rel of cacheFiles) files.push(await describeFile(opts.bundleDir, rel, "npm-cache"));
    progress.log(`npm cache: ${cacheFiles.length} files`);
    fs.writeFileSync(path.join(opts.bundleDir, NPM_BOOTSTRAP), renderNpmBootstrap(npm), {
      mode: 0o755,
    });
    files.push(await describeFile(opts.bundleDir, NPM_BOOTSTRAP, "bootstrap"));
  }

  if (opts.parts.harbor) files.push(...(await fetchStackArtifacts(opts, progress)));

  fs.writeFileSync(path.join(opts.bundleDir, BUNDLE_LOCK), serializeLock(lock));
  files.push(await describeFile(opts.bundleDir, BUNDLE_LOCK, "lock"));

  const manifest = mergeManifest(opts, lock, files, npm);
  writeManifest(opts.bundleDir, manifest);
  await writeSha256Sums(opts.bundleDir, manifest);
  return { manifest, recorded, downloaded, skipped, resumed };
}

/** Keeps the entries of parts this run did not fetch from an earlier manifest. */
function mergeManifest(
  opts: FetchOptions,
  lock: PluginsLock,
  files: ManifestFile[],
  npm: Manifest["npm"],
): Manifest {
  let previous: Manifest | undefined;
  try {
    previous = readManifest(opts.bundleDir);
  } catch {
    previous = undefined;
  }
  const partOf = (f: ManifestFile): keyof Parts | "lock" =>
    f.role === "cli"
      ? "cli"
      : f.role === "plugin"
        ? "plugins"
        : f.role === "npm-project" || f.role === "npm-cache" || f.role === "bootstrap"
          ? "npm"
          : f.role === "lock"
            ? "lock"
            : "harbor";
  const kept =
    previous && previous.cliVersion === lock.cli.version
      ? previous.files.filter((f) => {
          const part = partOf(f);
          return part !== "lock" && !opts.parts[part];
        })
      : [];
  const keptParts =
    previous && previous.cliVersion === lock.cli.version
      ? previous.parts
      : { cli: false, plugins: false, npm: false, harbor: false };
  const binaries = opts.parts.cli || opts.parts.plugins;
  return {
    bundleVersion: BUNDLE_VERSION,
    generator: "casd-registry offline/cli.ts",
    cliVersion: lock.cli.version,
    platforms: binaries || !previous ? [...opts.platforms].sort() : previous.platforms,
    parts: {
      cli: opts.parts.cli || keptParts.cli,
      plugins: opts.parts.plugins || keptParts.plugins,
      npm: opts.parts.npm || keptParts.npm,
      harbor: opts.parts.harbor || keptParts.harbor,
    },
    npm: npm ?? (opts.parts.npm ? undefined : previous?.npm),
    files: [...kept, ...files],
  };
}

/** Environment for a child npm: without settings an outer `npm run` may pass down that would change what it does. */
export function npmChildEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const drop =
    /^npm_config_(offline|prefer_offline|prefer_online|cache|global|location|prefix|dry_run|workspaces?|include_workspace_root|ignore_scripts|omit|include|production|only)$/i;
  return Object.fromEntries(Object.entries(env).filter(([k]) => !drop.test(k)));
}

function run(
  cmd: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = npmChildEnv(),
): string {
  const r = spawnSync(cmd, args, { cwd, env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new OfflineError(`could not run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    const tail = `${r.stderr}\n${r.stdout}`.trim().split("\n").slice(-15);
    throw new OfflineError(`${cmd} ${args.join(" ")} failed with exit code ${r.status}`, tail);
  }
  return r.stdout.trim();
}

function fetchNpm(opts: FetchOptions): NonNullable<Manifest["npm"]> {
  const npmCmd = opts.npmCommand ?? "npm";
  const pkgLock = path.join(opts.projectDir, "package-lock.json");
  if (!fs.existsSync(pkgLock))
    throw new OfflineError(
      `no package-lock.json in ${opts.projectDir}: npm ci --offline needs one (run npm install once)`,
    );
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "casd-npm-fetch-"));
  const cacheDir = path.join(opts.bundleDir, NPM_CACHE_DIR);
  try {
    for (const f of ["package.json", "package-lock.json", ".npmrc"]) {
      const src = path.join(opts.projectDir, f);
      if (fs.existsSync(src)) fs.copyFileSync(src, path.join(scratch, f));
    }
    fs.mkdirSync(cacheDir, { recursive: true });
    run(
      npmCmd,
      [
        "ci",
        "--cache",
        cacheDir,
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--no-update-notifier",
        "--include=dev",
        "--include=optional",
        "--include=peer",
        "--logs-dir",
        path.join(scratch, "_logs"),
      ],
      scratch,
    );
    const registry = run(npmCmd, ["config", "get", "registry"], opts.projectDir);
    const npmVersion = run(npmCmd, ["--version"], opts.projectDir);
    fs.rmSync(path.join(cacheDir, "_logs"), { recursive: true, force: true });
    fs.rmSync(path.join(cacheDir, "_cacache", "tmp"), { recursive: true, force: true });
    fs.mkdirSync(path.join(opts.bundleDir, "npm"), { recursive: true });
    fs.copyFileSync(
      path.join(opts.projectDir, "package.json"),
      path.join(opts.bundleDir, "npm", "package.json"),
    );
    fs.copyFileSync(pkgLock, path.join(opts.bundleDir, "npm", "package-lock.json"));
    return {
      registry,
      packageLockSha256: sha256Text(fs.readFileSync(pkgLock)),
      nodeVersion: process.version,
      npmVersion,
    };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The first command on the air-gapped machine, before node_modules (and so
 * this CLI) exists: checks the bundle against SHA256SUMS and the project's
 * package-lock.json against the one the cache was built from, then runs
 * npm ci --offline from a scratch copy of the bundle's npm cache.
 */
export function renderNpmBootstrap(npm: { registry: string; packageLockSha256: string }): string {
  return [
    "#!/bin/sh",
    "# Generated by `npm run cache -- fetch`. First step on the air-gapped machine, before",
    "# node_modules exists: checks this bundle, then installs the project's npm packages",
    "# from the bundle's npm cache with npm ci --offline.",
    "# Usage: sh bootstrap-npm.sh [project folder, default: the current folder]",
    "set -eu",
    'bundle=$(cd "$(dirname "$0")" && pwd)',
    'project=$(cd "${1:-.}" && pwd)',
    "sha256check() {",
    '  if command -v sha256sum >/dev/null 2>&1; then sha256sum --quiet -c "$@"; else shasum -a 256 --quiet -c "$@"; fi',
    "}",
    '(cd "$bundle" && sha256check SHA256SUMS) || { echo "bootstrap: files of $bundle do not match its SHA256SUMS" >&2; exit 1; }',
    `echo "${npm.packageLockSha256}  $project/package-lock.json" | sha256check - || { echo "bootstrap: $project/package-lock.json is not the one the bundle's npm cache was built from" >&2; exit 1; }`,
    "tmp=$(mktemp -d)",
    "trap 'rm -rf \"$tmp\"' EXIT",
    'cp -R "$bundle/npm-cache" "$tmp/cache"',
    'cd "$project"',
    `npm ci --offline --cache "$tmp/cache" --registry ${shQuote(npm.registry)} --ignore-scripts --no-audit --no-fund --no-update-notifier --logs-dir "$tmp/logs"`,
    'echo "bootstrap: npm packages installed offline in $project; next: npm run cache -- verify"',
    "",
  ].join("\n");
}

/** The stack to read: the one given, or the only Pulumi.<stack>.yaml of the project. */
export function chooseStack(projectDir: string, stack: string | undefined): string {
  if (stack) return stack;
  const stacks = listStacks(projectDir);
  if (stacks.length === 1) return stacks[0];
  throw new UsageError(
    stacks.length
      ? `--stack is required: this project has stacks ${stacks.join(", ")}`
      : `--stack is required: no Pulumi.<stack>.yaml in ${projectDir}`,
  );
}

/** Where an artifact goes in the bundle: where the stack expects it when that is inside the bundle, else harbor/<name>. */
export function artifactRel(projectDir: string, bundleDir: string, a: StackArtifact): string {
  const expected = path.resolve(projectDir, a.configPath);
  const rel = path.relative(path.resolve(bundleDir), expected);
  if (rel && !rel.startsWith("..") && !path.isAbsolute(rel)) return rel.split(path.sep).join("/");
  return `harbor/${path.basename(a.configPath)}`;
}

async function fetchStackArtifacts(
  opts: FetchOptions,
  progress: Progress,
): Promise<ManifestFile[]> {
  const stackName = chooseStack(opts.projectDir, opts.stack);
  const project = readProject(opts.projectDir)?.name;
  if (!project) throw new OfflineError(`no Pulumi.yaml with a name in ${opts.projectDir}`);
  const stack = readStack(opts.projectDir, stackName);
  if (!stack) throw new OfflineError(`no Pulumi.${stackName}.yaml in ${opts.projectDir}`);
  const artifacts = stackArtifacts(project, stack, opts.sources);
  if (!artifacts.length) {
    throw new OfflineError(`${path.basename(stack.file)} names no Harbor artifact to fetch`, [
      `set ${project}:harbor.installerPath (compose), ${project}:helm.chartPath (helm) or ${project}:distribution.imageArchivePath (distribution), e.g. pulumi config set --path ${project}:harbor.installerPath offline/bundle/harbor-offline-installer-v2.15.1.tgz`,
    ]);
  }
  const out: ManifestFile[] = [];
  for (const a of artifacts) {
    const rel = artifactRel(opts.projectDir, opts.bundleDir, a);
    const dest = bundlePath(opts.bundleDir, rel);
    const item = progress.item(rel);
    let sum: string;
    if (a.role === "image") {
      sum = await fetchImage(opts, a, dest);
    } else {
      try {
        sum = (
          await download({
            url: a.source,
            dest,
            sha256: a.sha256,
            onProgress: (x, y) => item.update(x, y),
          })
        ).sha256;
      } catch (e) {
        throw new OfflineError(
          `${a.describe} (${a.configKey}) from ${a.source}: ${(e as Error).message}`,
          a.sha256
            ? [`if the new file is the right one, update ${a.configKey.replace(/Path$/, "Sha256")}`]
            : [],
        );
      }
    }
    item.done(`fetched ${rel} (${a.describe}) sha256 ${sum}`);
    out.push(
      await describeFile(opts.bundleDir, rel, a.role, {
        configKey: a.configKey,
        configPath: a.configPath,
      }),
    );
  }
  return out;
}

async function fetchImage(opts: FetchOptions, a: StackArtifact, dest: string): Promise<string> {
  if (fs.existsSync(dest)) {
    const sum = await sha256File(dest);
    if (!a.sha256 || a.sha256 === sum) return sum;
    fs.rmSync(dest);
  }
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.part`;
  fs.rmSync(tmp, { force: true });
  run(
    opts.skopeoCommand ?? "skopeo",
    skopeoCopyArgs(a.source, tmp, a.image ?? ""),
    opts.projectDir,
    process.env,
  );
  const sum = await sha256File(tmp);
  if (a.sha256 && a.sha256 !== sum) {
    fs.rmSync(tmp);
    throw new OfflineError(
      `${a.describe}: the archive has sha256 ${sum}, ${a.configKey.replace(/Path$/, "Sha256")} says ${a.sha256}`,
      [`if the new archive is the right one, update ${a.configKey.replace(/Path$/, "Sha256")}`],
    );
  }
  fs.renameSync(tmp, dest);
  return sum;
}
