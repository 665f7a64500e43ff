/**
 * The lab's one cached Debian rootfs: `debootstrap --variant=minbase bookworm`
 * plus {@link ROOTFS_PACKAGES}, shared read-only by every lab host as the lower
 * layer of its overlay.
 *
 * - Cached under `$CASD_LAB_CACHE` (default `/var/cache/casd-lab`) as
 *   `rootfs-<hash>`, the hash covering suite, variant, package list and recipe
 *   version: change any of them and a new rootfs is built beside the old one.
 * - Built atomically: in `.build-rootfs-<hash>-<pid>` next to it, renamed at the
 *   end. A lock file (owner PID + start time) lets one process build while
 *   others wait; a build left by a killed process is removed by the next one.
 *   debootstrap and apt run in private mount and PID namespaces that die with
 *   this process, so a killed build leaves no mount and no orphan process.
 * - The Debian mirror is never written in the project: it is read at run time
 *   from `$CASD_LAB_MIRROR`, else from the machine's apt sources
 *   (`/etc/apt/sources.list.d/*.sources` `URIs:`, then `/etc/apt/sources.list`).
 *   The finished rootfs keeps no apt source or list (hosts are air-gapped).
 * - `policy-rc.d` exits 101 (no service starts at install), no SSH host keys
 *   (each host generates its own), an empty resolv.conf (no DNS in the lab).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { isAlive, LAB_PATH, mustSucceed, procStartTime, run, runSync, shq, sleep } from "./proc";

export const ROOTFS_SUITE = "bookworm";

/**
 * Packages added to minbase. One flavour for every host: the registry host
 * needs a Docker engine and compose, clients need skopeo, containerd and
 * podman; splitting flavours would save ~400 MB of cache but build twice.
 */
export const ROOTFS_PACKAGES: readonly string[] = [
  "busybox-static",
  "ca-certificates",
  "containerd",
  "curl",
  "docker-compose",
  "docker.io",
  "iproute2",
  "openssh-server",
  "openssl",
  "podman",
  "procps",
  "python3",
  "skopeo",
];

/** Bump when the build steps change in a way the package list does not show. */
const RECIPE_VERSION = 1;

export interface RootfsOptions {
  /** Cache directory. Default `$CASD_LAB_CACHE`, else `/var/cache/casd-lab`. */
  cacheDir?: string;
  /** Packages added to minbase. Default {@link ROOTFS_PACKAGES}. */
  packages?: readonly string[];
  /** Debian mirror URL. Default {@link detectMirror}. */
  mirror?: string;
  /** Progress lines (build start, timings). Default: none. */
  log?: (line: string) => void;
}

export interface Rootfs {
  /** Absolute path of the finished rootfs (use it read-only). */
  dir: string;
  hash: string;
  packages: readonly string[];
  /** True when this call built it; false when it came from the cache. */
  built: boolean;
  /** Build wall time in seconds (when built now, else as recorded at build). */
  buildSeconds: number;
  /** Apparent size in bytes as recorded at build. */
  sizeBytes: number;
}

/** The cache directory: `$CASD_LAB_CACHE` or `/var/cache/casd-lab`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.CASD_LAB_CACHE || "/var/cache/casd-lab";
}

/** 12 hex digits identifying a rootfs recipe (suite, variant, sorted packages, recipe version). */
export function rootfsHash(packages: readonly string[] = ROOTFS_PACKAGES): string {
  const recipe = JSON.stringify({
    suite: ROOTFS_SUITE,
    variant: "minbase",
    packages: [...packages].sort(),
    recipe: RECIPE_VERSION,
  });
  return crypto.createHash("sha256").update(recipe).digest("hex").slice(0, 12);
}

/**
 * The first http(s)/file mirror serving `suite` with component `main`, from
 * deb822 `.sources` texts first, then one-line `sources.list` text. Pure.
 */
export function parseAptSources(
  deb822: readonly string[],
  list: string,
  suite = ROOTFS_SUITE,
): string | undefined {
  const usable = (u: string) => /^(https?|file):\/\//.test(u);
  for (const text of deb822) {
    for (const stanza of text.split(/\n\s*\n/)) {
      const fields = new Map<string, string>();
      let last = "";
      for (const line of stanza.split("\n")) {
        if (line.startsWith("#")) continue;
        const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
        if (m) fields.set((last = m[1].toLowerCase()), m[2].trim());
        else if (/^\s/.test(line) && last) fields.set(last, `${fields.get(last)} ${line.trim()}`);
      }
      const words = (k: string) => (fields.get(k) ?? "").split(/\s+/).filter(Boolean);
      if (fields.get("enabled")?.toLowerCase() === "no") continue;
      if (
        !words("types").includes("deb") ||
        !words("suites").includes(suite) ||
        !words("components").includes("main")
      )
        continue;
      const uri = words("uris").find(usable);
      if (uri) return uri;
    }
  }
  for (const raw of list.split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)$/.exec(line);
    if (m && m[2] === suite && m[3].split(/\s+/).includes("main") && usable(m[1])) return m[1];
  }
  return undefined;
}

/** The mirror for debootstrap: `$CASD_LAB_MIRROR`, else the machine's apt sources. Throws when none. */
export function detectMirror(env: NodeJS.ProcessEnv = process.env, aptDir = "/etc/apt"): string {
  if (env.CASD_LAB_MIRROR) return env.CASD_LAB_MIRROR;
  const read = (f: string) => {
    try {
      return fs.readFileSync(f, "utf8");
    } catch {
      return "";
    }
  };
  let sources: string[] = [];
  try {
    sources = fs
      .readdirSync(path.join(aptDir, "sources.list.d"))
      .filter((f) => f.endsWith(".sources"))
      .sort()
      .map((f) => read(path.join(aptDir, "sources.list.d", f)));
  } catch {
    /* no sources.list.d */
  }
  const mirror = parseAptSources(sources, read(path.join(aptDir, "sources.list")));
  if (!mirror)
    throw new Error(
      `no Debian mirror for ${ROOTFS_SUITE}/main in ${aptDir}/sources.list.d/*.sources or ${aptDir}/sources.list; set CASD_LAB_MIRROR`,
    );
  return mirror;
}

interface Manifest {
  hash: string;
  suite: string;
  packages: string[];
  buildSeconds: number;
  sizeBytes: number;
  builtAt: string;
}
const MANIFEST = "etc/casd-lab/rootfs.json";

/** Returns the cached rootfs for `opts.packages`, building it first when absent (takes minutes). */
export async function ensureRootfs(opts: RootfsOptions = {}): Promise<Rootfs> {
  const packages = [...(opts.packages ?? ROOTFS_PACKAGES)].sort();
  const hash = rootfsHash(packages);
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const dir = path.join(cacheDir, `rootfs-${hash}`);
  const log = opts.log ?? (() => undefined);
  const cached = readManifest(dir);
  if (cached)
    return {
      dir,
      hash,
      packages,
      built: false,
      buildSeconds: cached.buildSeconds,
      sizeBytes: cached.sizeBytes,
    };

  fs.mkdirSync(cacheDir, { recursive: true });
  const release = await acquireLock(path.join(cacheDir, `.rootfs-${hash}.lock`), log);
  try {
    const again = readManifest(dir); // built by another process while we waited
    if (again)
      return {
        dir,
        hash,
        packages,
        built: false,
        buildSeconds: again.buildSeconds,
        sizeBytes: again.sizeBytes,
      };
    removeStaleBuilds(cacheDir, hash);
    const tmp = path.join(cacheDir, `.build-rootfs-${hash}-${process.pid}`);
    const mirror = opts.mirror ?? detectMirror();
    log(`building lab rootfs ${dir} (${packages.length} packages); this takes a few minutes`);
    const started = Date.now();
    await build(tmp, mirror, packages);
    const sizeBytes = Number(mustSucceed(runSync(["du", "-sxb", tmp]), "du").stdout.split("\t")[0]);
    const manifest: Manifest = {
      hash,
      suite: ROOTFS_SUITE,
      packages,
      buildSeconds: Math.round((Date.now() - started) / 100) / 10,
      sizeBytes,
      builtAt: new Date().toISOString(),
    };
    fs.mkdirSync(path.join(tmp, path.dirname(MANIFEST)), { recursive: true });
    fs.writeFileSync(path.join(tmp, MANIFEST), JSON.stringify(manifest, null, 2) + "\n");
    fs.rmSync(dir, { recursive: true, force: true }); // a rootfs without manifest is incomplete (cannot happen via rename, but be sure)
    fs.renameSync(tmp, dir);
    log(`built lab rootfs in ${manifest.buildSeconds} s, ${(sizeBytes / 1e6).toFixed(0)} MB`);
    return { dir, hash, packages, built: true, buildSeconds: manifest.buildSeconds, sizeBytes };
  } finally {
    release();
  }
}

function readManifest(dir: string): Manifest | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), "utf8")) as Manifest;
  } catch {
    return undefined;
  }
}

async function build(tmp: string, mirror: string, packages: readonly string[]): Promise<void> {
  fs.rmSync(tmp, { recursive: true, force: true });
  const env = { PATH: LAB_PATH, LANG: "C.UTF-8", DEBIAN_FRONTEND: "noninteractive", HOME: "/root" };
  // Both steps run in a private mount and PID namespace: the proc/sys mounts
  // that debootstrap and the install make die with them, and so does every
  // build process when this Node process dies (setpriv's parent-death signal
  // kills unshare, whose --kill-child kills the namespace's PID 1).
  const script = `set -euo pipefail
T=${shq(tmp)}
debootstrap --variant=minbase ${ROOTFS_SUITE} "$T" ${shq(mirror)}
printf '#!/bin/sh\\nexit 101\\n' > "$T/usr/sbin/policy-rc.d"
chmod 0755 "$T/usr/sbin/policy-rc.d"
chroot "$T" /bin/sh -c 'mount -t proc proc /proc && apt-get update -q && apt-get install -y -q --no-install-recommends ${packages.join(" ")} && apt-get clean; rc=$?; umount /proc; exit $rc'
rm -f "$T"/etc/ssh/ssh_host_* "$T"/etc/apt/sources.list "$T"/etc/apt/sources.list.d/* "$T"/var/log/bootstrap.log
rm -rf "$T"/var/lib/apt/lists/* "$T"/var/cache/apt/*.bin
echo '# casd lab: air-gapped, no DNS' > "$T/etc/resolv.conf"
: > "$T/etc/machine-id"
`;
  const argv = ["setpriv", "--pdeathsig", "KILL", "unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private", "bash", "-c", script]; // prettier-ignore
  const r = await run(argv, {
    env,
    timeoutMs: 30 * 60_000,
  });
  if (r.code !== 0) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new Error(
      `lab rootfs build failed (exit ${r.code}):\n${(r.stdout + r.stderr).slice(-4000)}`,
    );
  }
}

/** Removes `.build-rootfs-<hash>-*` left by killed builds (we hold the lock, so none is live). */
function removeStaleBuilds(cacheDir: string, hash: string): void {
  for (const f of fs.readdirSync(cacheDir)) {
    if (f.startsWith(`.build-rootfs-${hash}-`))
      runSync(["rm", "-rf", "--one-file-system", path.join(cacheDir, f)]);
  }
}

/** An exclusive lock file holding "<pid> <starttime>"; a lock whose owner is gone is taken over. */
async function acquireLock(file: string, log: (l: string) => void): Promise<() => void> {
  const me = `${process.pid} ${procStartTime(process.pid)}`;
  const deadline = Date.now() + 45 * 60_000;
  let told = false;
  for (;;) {
    try {
      fs.writeFileSync(file, me, { flag: "wx" });
      return () => fs.rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    let owner: string;
    try {
      owner = fs.readFileSync(file, "utf8");
    } catch {
      continue; // released meanwhile
    }
    const [pid, start] = owner.split(" ");
    if (!pid || !isAlive(Number(pid), start)) {
      fs.rmSync(file, { force: true });
      continue;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${file} (held by pid ${pid})`);
    if (!told) log(`waiting for pid ${pid} to finish building the lab rootfs`);
    told = true;
    await sleep(2000);
  }
}
