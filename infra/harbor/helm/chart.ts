/**
 * The chart archive from the offline bundle, verified before use: its sha256
 * against the pinned sum, then its `Chart.yaml` name and version against the
 * pinned version. Its `values.yaml` is returned so that the values this stack
 * builds are checked against the keys of the very chart that will render them.
 * Runs at plan time in Node, before any resource is created.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { gunzipSync } from "node:zlib";
import { parse as parseYaml } from "yaml";

export interface TarEntry {
  path: string;
  type: string;
  data: Buffer;
}

function field(block: Buffer, start: number, length: number): string {
  const raw = block.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? raw.length : end).toString("utf8");
}

function paxPath(data: Buffer): string | undefined {
  let rest = data.toString("utf8");
  while (rest.length > 0) {
    const sp = rest.indexOf(" ");
    const len = Number(rest.slice(0, sp));
    if (!Number.isInteger(len) || len <= 0) return undefined;
    const record = rest.slice(sp + 1, len - 1);
    const eq = record.indexOf("=");
    if (record.slice(0, eq) === "path") return record.slice(eq + 1);
    rest = rest.slice(len);
  }
  return undefined;
}

/** The regular files of a (ustar, pax or GNU) tar stream. Pure. */
export function readTar(tar: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  let off = 0;
  let nextPath: string | undefined;
  while (off + 512 <= tar.length) {
    const block = tar.subarray(off, off + 512);
    if (block.every((b) => b === 0)) break;
    const size = parseInt(field(block, 124, 12).trim() || "0", 8);
    const type = String.fromCharCode(block[156] || 0x30);
    const magic = field(block, 257, 6);
    const prefix = magic.startsWith("ustar") ? field(block, 345, 155) : "";
    const name = prefix ? `${prefix}/${field(block, 0, 100)}` : field(block, 0, 100);
    const data = tar.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === "x") {
      nextPath = paxPath(data) ?? nextPath;
      continue;
    }
    if (type === "L") {
      nextPath = field(data, 0, data.length);
      continue;
    }
    if (type === "g") continue;
    entries.push({ path: nextPath ?? name, type: type === "\0" ? "0" : type, data });
    nextPath = undefined;
  }
  return entries;
}

export interface VerifiedChart {
  /** Absolute path of the archive (what the Release installs). */
  path: string;
  name: string;
  version: string;
  appVersion?: string;
  /** The chart's own values.yaml text. */
  valuesYaml: string;
}

/** Hex sha256 of a file. */
export function sha256File(path: string): string {
  return createHash("sha256").update(fs.readFileSync(path)).digest("hex");
}

/**
 * Verifies the chart archive: exists, sha256 equals `expectedSha256`, the
 * chart's name is `expectedName` and its version `expectedVersion`. Throws one
 * clear error naming the path, what was expected and what was found.
 */
export function verifyChartArchive(
  path: string,
  expectedSha256: string,
  expectedVersion: string,
  expectedName = "harbor",
): VerifiedChart {
  if (!fs.existsSync(path)) {
    throw new Error(
      `helm.chartPath: ${path} does not exist. Fix: put harbor-${expectedVersion}.tgz from the offline bundle there, or point helm.chartPath at it`,
    );
  }
  const actual = sha256File(path);
  if (actual !== expectedSha256) {
    throw new Error(
      `helm.chartPath: ${path} has sha256 ${actual}, but helm.chartSha256 pins ${expectedSha256}. Fix: use the archive from the verified offline bundle (or, after checking it, pin its sum in helm.chartSha256)`,
    );
  }
  let entries: TarEntry[];
  try {
    entries = readTar(gunzipSync(fs.readFileSync(path)));
  } catch (e) {
    throw new Error(
      `helm.chartPath: ${path} is not a gzip'd tar archive (${(e as Error).message}). Fix: use the chart .tgz from the offline bundle`,
      { cause: e },
    );
  }
  const file = (base: string): TarEntry | undefined =>
    entries.find(
      (e) => e.type === "0" && /^[^/]+\/[^/]+$/.test(e.path) && e.path.endsWith(`/${base}`),
    );
  const chartYaml = file("Chart.yaml");
  const valuesYaml = file("values.yaml");
  if (!chartYaml || !valuesYaml) {
    throw new Error(
      `helm.chartPath: ${path} holds no <chart>/Chart.yaml and <chart>/values.yaml. Fix: use the chart .tgz from the offline bundle`,
    );
  }
  const meta = parseYaml(chartYaml.data.toString("utf8")) as {
    name?: unknown;
    version?: unknown;
    appVersion?: unknown;
  };
  if (meta.name !== expectedName || String(meta.version) !== expectedVersion) {
    throw new Error(
      `helm.chartPath: ${path} is chart ${String(meta.name)} ${String(meta.version)}, but helm.chartVersion pins ${expectedName} ${expectedVersion}. Fix: use harbor-${expectedVersion}.tgz, or change helm.chartVersion (and its sum) deliberately`,
    );
  }
  return {
    path,
    name: meta.name,
    version: expectedVersion,
    appVersion: meta.appVersion === undefined ? undefined : String(meta.appVersion),
    valuesYaml: valuesYaml.data.toString("utf8"),
  };
}
