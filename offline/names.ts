/**
 * Platforms and release archive names.
 *
 * Plugin archives are named `pulumi-<kind>-<name>-v<version>-<os>-<arch>.tar.gz`
 * with Go's arch names (amd64, arm64); the CLI archive is
 * `pulumi-v<version>-<os>-<arch>.tar.gz` (`.zip` on Windows) with x64 for amd64.
 * The CLI archive holds one top-level `pulumi/` folder (the CLI, the language
 * hosts, the policy analyzer).
 */

export const OSES = ["darwin", "linux", "windows"] as const;
export type Os = (typeof OSES)[number];
export const ARCHES = ["amd64", "arm64"] as const;
export type Arch = (typeof ARCHES)[number];
export type Platform = `${Os}-${Arch}`;

/** The platforms the lock names archives for (Pulumi publishes all of them). */
export const PLATFORMS: readonly Platform[] = [
  "darwin-amd64",
  "darwin-arm64",
  "linux-amd64",
  "linux-arm64",
  "windows-amd64",
];

export function isPlatform(value: string): value is Platform {
  return (PLATFORMS as readonly string[]).includes(value);
}

export function splitPlatform(platform: Platform): { os: Os; arch: Arch } {
  const [os, arch] = platform.split("-") as [Os, Arch];
  return { os, arch };
}

/** The platform this process runs on, in the names Pulumi's archives use. */
export function hostPlatform(
  platform: string = process.platform,
  arch: string = process.arch,
): Platform {
  const os = platform === "win32" ? "windows" : platform;
  const goArch = arch === "x64" ? "amd64" : arch;
  const p = `${os}-${goArch}`;
  if (!isPlatform(p))
    throw new Error(
      `unsupported platform ${platform}/${arch}: Pulumi publishes ${PLATFORMS.join(", ")}`,
    );
  return p;
}

export function pluginArchiveName(
  kind: string,
  name: string,
  version: string,
  platform: Platform,
): string {
  const { os, arch } = splitPlatform(platform);
  return `pulumi-${kind}-${name}-v${version}-${os}-${arch}.tar.gz`;
}

export function cliArchiveName(version: string, platform: Platform): string {
  const { os, arch } = splitPlatform(platform);
  const cliArch = arch === "amd64" ? "x64" : arch;
  return `pulumi-v${version}-${os}-${cliArch}${os === "windows" ? ".zip" : ".tar.gz"}`;
}

/** Directory of an installed plugin under `$PULUMI_HOME/plugins` (the CLI's layout). */
export function pluginDirName(kind: string, name: string, version: string): string {
  return `${kind}-${name}-v${version}`;
}

/** File name of a plugin's executable inside its directory. */
export function pluginBinaryName(kind: string, name: string, platform: Platform): string {
  return `pulumi-${kind}-${name}${splitPlatform(platform).os === "windows" ? ".exe" : ""}`;
}
