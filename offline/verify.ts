/**
 * `cache verify`: the bundle holds every file the project's lock asks for,
 * and every file matches the sha256 in the manifest (and in the lock, where
 * the lock pins one).
 *
 * The manifest protects against damage in transit; the sums committed in
 * offline/plugins.lock.json protect the CLI and plugins against a bundle
 * rebuilt by someone else (a forged manifest cannot change them). npm checks
 * every package it installs against the `integrity` of package-lock.json.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BUNDLE_LOCK, Manifest, ManifestFile, bundlePath, readManifest } from "./bundle";
import { displayPath } from "./display";
import { OfflineError } from "./errors";
import { sha256File, sha256Text } from "./hash";
import { PluginsLock, readLock } from "./lock";
import { Platform, cliArchiveName, pluginArchiveName } from "./names";
import type { Parts } from "./fetch";

export interface VerifyOptions {
  bundleDir: string;
  /** The project's lock (what the bundle must be complete against). */
  lockFile: string;
  projectDir: string;
  /** Platforms that must be present (default: those of the manifest). */
  platforms?: Platform[];
  /** Parts that must be present. */
  parts: Parts;
}

export interface VerifyResult {
  manifest: Manifest;
  /** One exact sentence per problem; empty when the bundle is good. */
  errors: string[];
  checked: number;
}

export async function verifyBundle(opts: VerifyOptions): Promise<VerifyResult> {
  const manifest = readManifest(opts.bundleDir);
  const lock: PluginsLock = readLock(opts.lockFile);
  const lockLabel = displayPath(opts.projectDir, opts.lockFile);
  const errors: string[] = [];
  const byPath = new Map<string, ManifestFile>(manifest.files.map((f) => [f.path, f]));

  // 1. Every file listed is there, whole.
  let checked = 0;
  for (const f of manifest.files) {
    let full: string;
    try {
      full = bundlePath(opts.bundleDir, f.path);
    } catch (e) {
      errors.push((e as Error).message);
      continue;
    }
    if (!fs.existsSync(full)) {
      errors.push(`missing file ${f.path}${what(f)}`);
      continue;
    }
    const sum = await sha256File(full);
    checked++;
    if (sum !== f.sha256)
      errors.push(`checksum mismatch ${f.path}: manifest sha256 ${f.sha256}, file sha256 ${sum}`);
  }

  // 2. Complete against the lock.
  if (manifest.cliVersion !== lock.cli.version) {
    errors.push(
      `the bundle is for Pulumi CLI ${manifest.cliVersion}, ${lockLabel} asks for ${lock.cli.version}: fetch a new bundle`,
    );
  }
  const platforms = opts.platforms ?? manifest.platforms;
  for (const platform of platforms) {
    if (opts.parts.cli) {
      const entry = lock.cli.archives[platform];
      const rel = `cli/${entry?.file ?? cliArchiveName(lock.cli.version, platform)}`;
      requireFile(rel, `Pulumi CLI ${lock.cli.version} for ${platform}`, entry?.sha256 ?? null);
    }
    if (opts.parts.plugins) {
      for (const p of lock.plugins) {
        const entry = p.archives[platform];
        const rel = `plugins/${entry?.file ?? pluginArchiveName(p.kind, p.name, p.version, platform)}`;
        requireFile(
          rel,
          `${p.kind} plugin ${p.name} ${p.version} for ${platform}`,
          entry?.sha256 ?? null,
        );
      }
    }
  }
  function requireFile(rel: string, desc: string, pinned: string | null): void {
    const f = byPath.get(rel);
    if (!f) {
      errors.push(`not in bundle: ${desc} (${rel}), required by ${lockLabel}`);
      return;
    }
    if (pinned && f.sha256 !== pinned)
      errors.push(
        `lock mismatch ${rel}: ${lockLabel} pins sha256 ${pinned}, bundle has ${f.sha256}`,
      );
  }

  if (opts.parts.npm) {
    const cacheFiles = manifest.files.filter((f) => f.role === "npm-cache").length;
    if (!manifest.parts.npm || !manifest.npm || cacheFiles === 0) {
      errors.push(
        "not in bundle: the npm cache (npm-cache/), required for npm ci --offline: run cache fetch without --no-npm",
      );
    } else {
      const projectLock = path.join(opts.projectDir, "package-lock.json");
      if (fs.existsSync(projectLock)) {
        const sum = sha256Text(fs.readFileSync(projectLock));
        if (sum !== manifest.npm.packageLockSha256) {
          errors.push(
            `npm cache mismatch: the bundle was filled from a package-lock.json with sha256 ${manifest.npm.packageLockSha256}, ${displayPath(opts.projectDir, projectLock)} has ${sum}: fetch a new bundle`,
          );
        }
      }
    }
  }
  if (
    opts.parts.harbor &&
    !manifest.files.some(
      (f) => f.role === "harbor-installer" || f.role === "harbor-chart" || f.role === "image",
    )
  ) {
    errors.push(
      "not in bundle: Harbor artifacts (installer, chart or image archive): run cache fetch --harbor",
    );
  }
  if (!byPath.has(BUNDLE_LOCK))
    errors.push(`not in bundle: ${BUNDLE_LOCK} (the lock the bundle was built from)`);

  return { manifest, errors, checked };
}

function what(f: ManifestFile): string {
  if (f.role === "plugin") return ` (resource plugin ${f.name} ${f.version} for ${f.platform})`;
  if (f.role === "cli") return ` (Pulumi CLI ${f.version} for ${f.platform})`;
  if (f.configKey) return ` (named by ${f.configKey})`;
  return "";
}

/** Throws an OfflineError listing every problem when the bundle is not good. */
export async function assertBundle(opts: VerifyOptions): Promise<VerifyResult> {
  const r = await verifyBundle(opts);
  if (r.errors.length)
    throw new OfflineError(
      `bundle ${opts.bundleDir} failed verification (${r.errors.length} problem${r.errors.length === 1 ? "" : "s"})`,
      r.errors,
    );
  return r;
}
