/**
 * Fixtures for the offline cache tests: stand-in release archives with the
 * real names and layout, and a loopback HTTP server standing in for Pulumi's
 * release server or an internal mirror.
 *
 * Stand-ins (named so wherever they appear):
 * - plugin archives hold a shell script `pulumi-resource-<name>` (plus README
 *   and LICENSE, as the real archives do), not the real provider;
 * - the CLI archive holds `pulumi/pulumi`, a shell script that records its
 *   argv, answers `version` with the locked version and performs
 *   `plugin install <kind> <name> <version> --file <archive>` by unpacking
 *   into `$PULUMI_HOME/plugins/<kind>-<name>-v<version>/`.
 */
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { PluginsLock } from "../../../offline/lock";
import { Platform, cliArchiveName, pluginArchiveName } from "../../../offline/names";

export const REPO = path.resolve(__dirname, "..", "..", "..");
export const COMMITTED_LOCK = path.join(REPO, "offline", "plugins.lock.json");

const created: string[] = [];

/** A fresh folder under the system temp dir, removed by `removeTmpDirs`. */
export function tmpDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `casd-offline-${prefix}-`));
  created.push(dir);
  return dir;
}

export function removeTmpDirs(): void {
  for (const dir of created.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

export function sha256(file: string): string {
  return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

export function sha256Bytes(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

export function readLockFile(file: string): PluginsLock {
  return JSON.parse(fs.readFileSync(file, "utf8")) as PluginsLock;
}

export function fakePluginScript(name: string, version: string): string {
  return `#!/bin/sh\n# stand-in for pulumi-resource-${name} ${version} (test fixture, not the provider)\necho "pulumi-resource-${name} ${version} (fixture)"\n`;
}

export function fakeCliScript(version: string): string {
  return [
    "#!/bin/sh",
    "# stand-in for the Pulumi CLI (test fixture): records argv, answers version, installs plugins from --file",
    'printf \'%s\\n\' "$*" >> "${FAKE_PULUMI_LOG:-/dev/null}"',
    'case "$1" in',
    `  version) echo "v${version}"; exit 0 ;;`,
    "  plugin)",
    '    [ "$2" = install ] || { echo "fake pulumi: only plugin install" >&2; exit 2; }',
    "    kind=$3; name=$4; ver=${5#v}",
    '    [ "$6" = --file ] || { echo "fake pulumi: needs --file" >&2; exit 3; }',
    '    dir="${PULUMI_HOME:?}/plugins/$kind-$name-v$ver"',
    '    mkdir -p "$dir" && tar -xzf "$7" -C "$dir" && exit 0',
    "    exit 4 ;;",
    "esac",
    'echo "fake pulumi: unsupported: $*" >&2',
    "exit 2",
    "",
  ].join("\n");
}

function tarGz(srcDir: string, out: string, entries: string[]): void {
  execFileSync("tar", ["-czf", out, "--owner=0", "--group=0", "-C", srcDir, ...entries]);
}

/**
 * Writes `<root>/plugins/<archive>` for every plugin of the lock and
 * `<root>/sdk/<CLI archive>`, for one platform, laid out as the release
 * server does. Returns sha256 by archive file name.
 */
export function buildReleaseTree(
  root: string,
  lock: PluginsLock,
  platform: Platform,
): Map<string, string> {
  const sums = new Map<string, string>();
  const work = tmpDir("pack");
  fs.mkdirSync(path.join(root, "plugins"), { recursive: true });
  fs.mkdirSync(path.join(root, "sdk"), { recursive: true });
  for (const p of lock.plugins) {
    const dir = path.join(work, p.name);
    fs.mkdirSync(dir);
    fs.writeFileSync(
      path.join(dir, `pulumi-resource-${p.name}`),
      fakePluginScript(p.name, p.version),
      { mode: 0o755 },
    );
    fs.writeFileSync(path.join(dir, "README.md"), `fixture for ${p.name}\n`);
    fs.writeFileSync(path.join(dir, "LICENSE"), "fixture\n");
    // Incompressible filler so that an archive is large enough to be cut and resumed.
    fs.writeFileSync(path.join(dir, "filler.bin"), randomBytes(96 * 1024));
    const file = pluginArchiveName(p.kind, p.name, p.version, platform);
    tarGz(dir, path.join(root, "plugins", file), [
      `pulumi-resource-${p.name}`,
      "README.md",
      "LICENSE",
      "filler.bin",
    ]);
    sums.set(file, sha256(path.join(root, "plugins", file)));
  }
  const cliDir = path.join(work, "cli");
  fs.mkdirSync(path.join(cliDir, "pulumi"), { recursive: true });
  fs.writeFileSync(path.join(cliDir, "pulumi", "pulumi"), fakeCliScript(lock.cli.version), {
    mode: 0o755,
  });
  fs.writeFileSync(path.join(cliDir, "pulumi", "pulumi-language-nodejs"), "#!/bin/sh\nexit 0\n", {
    mode: 0o755,
  });
  const cliFile = cliArchiveName(lock.cli.version, platform);
  tarGz(cliDir, path.join(root, "sdk", cliFile), ["pulumi"]);
  sums.set(cliFile, sha256(path.join(root, "sdk", cliFile)));
  fs.rmSync(work, { recursive: true, force: true });
  return sums;
}

export interface MirrorRequest {
  method: string;
  path: string;
  range?: string;
}

export interface Mirror {
  url: string;
  requests: MirrorRequest[];
  /** The next GET of `urlPath` sends only `bytes` bytes, then drops the connection. */
  cutOnce(urlPath: string, bytes: number): void;
  close(): Promise<void>;
}

/** A loopback static server over `root` with Range support: the stand-in mirror. */
export async function startMirror(root: string, prefix = "/releases"): Promise<Mirror> {
  const requests: MirrorRequest[] = [];
  const cuts = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const urlPath = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    requests.push({ method: req.method ?? "", path: urlPath, range: req.headers.range });
    const rel = urlPath.startsWith(`${prefix}/`) ? urlPath.slice(prefix.length + 1) : undefined;
    const file = rel && !rel.split("/").includes("..") ? path.join(root, rel) : undefined;
    if (!file || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404);
      res.end("not found");
      return;
    }
    const data = fs.readFileSync(file);
    const m = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ""));
    const start = m ? Number(m[1]) : 0;
    if (start >= data.length && m) {
      res.writeHead(416, { "Content-Range": `bytes */${data.length}` });
      res.end();
      return;
    }
    const body = data.subarray(start);
    res.writeHead(m ? 206 : 200, {
      "Content-Length": body.length,
      ...(m ? { "Content-Range": `bytes ${start}-${data.length - 1}/${data.length}` } : {}),
    });
    const cut = cuts.get(urlPath);
    if (cut !== undefined) {
      cuts.delete(urlPath);
      res.write(body.subarray(0, cut), () => res.destroy());
      return;
    }
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${prefix}`,
    requests,
    cutOnce: (p, bytes) => cuts.set(p, bytes),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Runs the CLI in-process and captures its output. */
export async function runCli(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { main } = await import("../../../offline/cli");
  let stdout = "";
  let stderr = "";
  const code = await main(args, {
    stdout: (s) => void (stdout += s),
    stderr: (s) => void (stderr += s),
  });
  return { code, stdout, stderr };
}
