/**
 * The bundle: a folder that carries everything `pulumi up` needs on a machine
 * with no network, and its manifest (every file with its sha256).
 *
 *   manifest.json            this list; written last by `cache fetch`
 *   plugins.lock.json        the lock the bundle was built from (sums filled)
 *   cli/<pulumi-vX-os-arch.tar.gz>
 *   plugins/<pulumi-resource-NAME-vX-os-arch.tar.gz>
 *   npm/package.json, npm/package-lock.json   what the npm cache was built from
 *   npm-cache/...            an npm cache for `npm ci --offline --cache`
 *   bootstrap-npm.sh         first step offline: checks SHA256SUMS, npm ci --offline
 *   harbor/...               installer, chart, image archives (when asked)
 *   SHA256SUMS               every file above, for sha256sum -c
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { OfflineError } from "./errors";
import { sha256File } from "./hash";
import { canonicalJson } from "./json";
import { Platform, isPlatform } from "./names";

export const MANIFEST = "manifest.json";
export const BUNDLE_LOCK = "plugins.lock.json";
export const DEFAULT_BUNDLE_DIR = path.join("offline", "bundle");
export const NPM_CACHE_DIR = "npm-cache";
export const BUNDLE_VERSION = 1;
/** `sha256sum -c` form of the manifest, for checks before node_modules exists. */
export const SHA256SUMS = "SHA256SUMS";
/** Installs the npm packages from the bundle with nothing but sh and npm. */
export const NPM_BOOTSTRAP = "bootstrap-npm.sh";

export type FileRole =
  | "lock"
  | "cli"
  | "plugin"
  | "npm-project"
  | "npm-cache"
  | "harbor-installer"
  | "harbor-chart"
  | "image"
  | "bootstrap";

export interface ManifestFile {
  path: string;
  sha256: string;
  size: number;
  role: FileRole;
  /** Plugin or CLI details, for messages. */
  name?: string;
  version?: string;
  platform?: Platform;
  /** Stack config key that names this file (harbor artifacts, images). */
  configKey?: string;
  /** Path the stack config expects the file at, relative to the project. */
  configPath?: string;
}

export interface Manifest {
  bundleVersion: number;
  generator: string;
  cliVersion: string;
  platforms: Platform[];
  parts: { cli: boolean; plugins: boolean; npm: boolean; harbor: boolean };
  npm?: {
    /** Registry URL the cache was filled from (npm keys cached metadata by it). */
    registry: string;
    packageLockSha256: string;
    nodeVersion: string;
    npmVersion: string;
  };
  files: ManifestFile[];
}

/** Joins a manifest path to the bundle folder, refusing anything that leaves it. */
export function bundlePath(bundleDir: string, rel: string): string {
  if (
    !rel ||
    path.isAbsolute(rel) ||
    rel.includes("\\") ||
    rel.split("/").some((s) => s === ".." || s === "")
  ) {
    throw new OfflineError(`unsafe path in the manifest: ${JSON.stringify(rel)}`);
  }
  return path.join(bundleDir, ...rel.split("/"));
}

export function readManifest(bundleDir: string): Manifest {
  const file = path.join(bundleDir, MANIFEST);
  let raw: Manifest;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8")) as Manifest;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT")
      throw new OfflineError(
        `missing ${MANIFEST} in ${bundleDir}: the bundle is incomplete (run npm run cache -- fetch)`,
      );
    throw new OfflineError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (
    raw.bundleVersion !== BUNDLE_VERSION ||
    !Array.isArray(raw.files) ||
    !Array.isArray(raw.platforms) ||
    !raw.platforms.every(isPlatform)
  ) {
    throw new OfflineError(`${file} is not a bundle manifest of version ${BUNDLE_VERSION}`);
  }
  return raw;
}

export function writeManifest(bundleDir: string, manifest: Manifest): void {
  const sorted: Manifest = {
    ...manifest,
    files: [...manifest.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
  };
  const file = path.join(bundleDir, MANIFEST);
  fs.writeFileSync(`${file}.tmp`, canonicalJson(sorted));
  fs.renameSync(`${file}.tmp`, file);
}

/** Writes SHA256SUMS: every manifest file and the manifest itself. */
export async function writeSha256Sums(bundleDir: string, manifest: Manifest): Promise<void> {
  const lines = manifest.files.map((f) => `${f.sha256}  ${f.path}`);
  lines.push(`${await sha256File(path.join(bundleDir, MANIFEST))}  ${MANIFEST}`);
  fs.writeFileSync(
    path.join(bundleDir, SHA256SUMS),
    lines.sort((a, b) => (a.slice(66) < b.slice(66) ? -1 : 1)).join("\n") + "\n",
  );
}

/** Every regular file under `dir`, as paths relative to `base` with `/`. */
export function listFiles(dir: string, base: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.isFile()) out.push(path.relative(base, full).split(path.sep).join("/"));
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out.sort();
}

export async function describeFile(
  bundleDir: string,
  rel: string,
  role: FileRole,
  extra: Partial<ManifestFile> = {},
): Promise<ManifestFile> {
  const full = bundlePath(bundleDir, rel);
  return {
    path: rel,
    sha256: await sha256File(full),
    size: fs.statSync(full).size,
    role,
    ...extra,
  };
}

/** Runs `fn` over `items` with at most `limit` at once; results keep their order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { status: "fulfilled", value: await fn(items[i]) };
      } catch (reason) {
        results[i] = { status: "rejected", reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
