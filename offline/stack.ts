/**
 * What the offline tools read from the Pulumi project and stack files:
 * the project name and backend (Pulumi.yaml), a stack's secrets provider and
 * the Harbor artifacts its config names (Pulumi.<stack>.yaml). Missing files
 * and keys are not errors here; callers decide what they need.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { OfflineError } from "./errors";

export interface ProjectFile {
  name: string;
  backendUrl?: string;
}

export interface StackFile {
  stack: string;
  file: string;
  secretsProvider?: string;
  encryptionSalt?: string;
  config: Record<string, unknown>;
}

function readYaml(file: string): unknown {
  try {
    return parse(fs.readFileSync(file, "utf8")) as unknown;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new OfflineError(`${file} is not valid YAML: ${(e as Error).message}`);
  }
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return v && typeof v === "object" && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

export function readProject(projectDir: string): ProjectFile | undefined {
  for (const name of ["Pulumi.yaml", "Pulumi.yml"]) {
    const doc = obj(readYaml(path.join(projectDir, name)));
    if (doc) return { name: str(doc.name) ?? "", backendUrl: str(obj(doc.backend)?.url) };
  }
  return undefined;
}

/** Stack names that have a `Pulumi.<stack>.yaml` in the project. */
export function listStacks(projectDir: string): string[] {
  return fs
    .readdirSync(projectDir)
    .map((f) => /^Pulumi\.(.+)\.ya?ml$/.exec(f)?.[1])
    .filter((s): s is string => !!s)
    .sort();
}

export function readStack(projectDir: string, stack: string): StackFile | undefined {
  for (const ext of ["yaml", "yml"]) {
    const file = path.join(projectDir, `Pulumi.${stack}.${ext}`);
    const raw = readYaml(file);
    if (raw === undefined) continue;
    const doc = obj(raw) ?? {};
    return {
      stack,
      file,
      secretsProvider: str(doc.secretsprovider),
      encryptionSalt: str(doc.encryptionsalt),
      config: obj(doc.config) ?? {},
    };
  }
  return undefined;
}

/** One artifact the stack config names, with where it is fetched from. */
export interface StackArtifact {
  role: "harbor-installer" | "harbor-chart" | "image";
  /** Config key, e.g. casd-registry:harbor.installerPath. */
  configKey: string;
  /** Path the stack expects the file at, relative to the project (or absolute). */
  configPath: string;
  sha256?: string;
  /** Download URL (installer, chart) or image reference (image). */
  source: string;
  /** Image reference written into an image archive. */
  image?: string;
  describe: string;
}

export interface ArtifactSources {
  /** URL of the Harbor offline installer; default: Harbor's GitHub release of the configured version. */
  installerUrl?: string;
  /** URL of the Harbor chart archive; default: Harbor's chart repository. */
  chartUrl?: string;
  /** Prefix skopeo reads images from (default `docker://`, e.g. `docker://mirror.example:5000/`). */
  imageSourcePrefix?: string;
}

const DEFAULT_HARBOR_VERSION = "2.15.1";
const DEFAULT_CHART_VERSION = "1.19.1";
const DEFAULT_DISTRIBUTION_IMAGE = "registry:2.8.3";

/**
 * The installer, chart and image archive the stack config points at
 * (`<project>:harbor.installerPath`, `<project>:helm.chartPath`,
 * `<project>:distribution.imageArchivePath`); keys left unset are skipped.
 */
export function stackArtifacts(
  project: string,
  stack: StackFile,
  sources: ArtifactSources = {},
): StackArtifact[] {
  const section = (key: string) => obj(stack.config[`${project}:${key}`]) ?? {};
  const out: StackArtifact[] = [];
  const harbor = section("harbor");
  const version = str(harbor.version) ?? DEFAULT_HARBOR_VERSION;
  const installerPath = str(harbor.installerPath);
  if (installerPath) {
    out.push({
      role: "harbor-installer",
      configKey: `${project}:harbor.installerPath`,
      configPath: installerPath,
      sha256: str(harbor.installerSha256),
      source:
        sources.installerUrl ??
        `https://github.com/goharbor/harbor/releases/download/v${version}/harbor-offline-installer-v${version}.tgz`,
      describe: `Harbor ${version} offline installer`,
    });
  }
  const helm = section("helm");
  const chartVersion = str(helm.chartVersion) ?? DEFAULT_CHART_VERSION;
  const chartPath = str(helm.chartPath);
  if (chartPath) {
    out.push({
      role: "harbor-chart",
      configKey: `${project}:helm.chartPath`,
      configPath: chartPath,
      sha256: str(helm.chartSha256),
      source: sources.chartUrl ?? `https://helm.goharbor.io/harbor-${chartVersion}.tgz`,
      describe: `Harbor chart ${chartVersion}`,
    });
  }
  const dist = section("distribution");
  const archivePath = str(dist.imageArchivePath);
  if (archivePath) {
    const image = str(dist.image) ?? DEFAULT_DISTRIBUTION_IMAGE;
    out.push({
      role: "image",
      configKey: `${project}:distribution.imageArchivePath`,
      configPath: archivePath,
      sha256: str(dist.imageArchiveSha256),
      source: `${sources.imageSourcePrefix ?? "docker://"}${image}`,
      image,
      describe: `image ${image}`,
    });
  }
  return out;
}

/** skopeo arguments that write `source` as a docker-archive (loadable by `docker load` and `ctr import`). */
export function skopeoCopyArgs(source: string, dest: string, image: string): string[] {
  return ["copy", "--retry-times", "3", source, `docker-archive:${dest}:${image}`];
}

/** The path inside the bundle for an artifact: `harbor/<file name>`. */
export function artifactBundlePath(a: StackArtifact): string {
  return `harbor/${path.basename(a.configPath)}`;
}
