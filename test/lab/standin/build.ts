/**
 * Builds a Harbor STAND-IN offline installer from local parts, for the lab.
 * It is NOT Harbor: it keeps the contract the compose path relies on
 * (`harbor/install.sh [--with-trivy]`, `harbor/prepare` reading harbor.yml,
 * `harbor/harbor.yml.tmpl`, images loaded with `docker load` from
 * `harbor/harbor.v<version>.tar.gz`, HTTPS with the configured certificate
 * serving /api/v2.0/health and a real Distribution `/v2/` behind it).
 *
 * The image is written by hand in `docker save` format: one layer with
 * busybox-static, the stand-in binary (standin.go, built with the machine's
 * Go, CGO off) and Debian's `docker-registry` with its shared libraries.
 * Nothing is pulled.
 */
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { harborConfigSchemaVersion } from "../../../infra/harbor/compose/harbor-yml";

export interface StandinInstaller {
  /** The installer archive (`harbor-offline-installer-v<version>.tgz`, stand-in). */
  path: string;
  sha256: string;
  version: string;
  /** The stand-in image (tagged as both the services' image and the prepare image). */
  image: string;
  prepareImage: string;
}

const sh = (cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) =>
  execFileSync(cmd, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 64 * 1024 * 1024,
  });

const sha256File = (f: string) => createHash("sha256").update(fs.readFileSync(f)).digest("hex");

/** Shared libraries a dynamic binary needs (from ldd), with the loader. */
function libsOf(bin: string): string[] {
  const out = sh("ldd", [bin]).toString();
  const libs: string[] = [];
  for (const l of out.split("\n")) {
    const m = /=>\s+(\/\S+)/.exec(l) ?? /^\s+(\/\S+)\s+\(/.exec(l);
    if (m) libs.push(m[1]);
  }
  return libs;
}

function copyInto(root: string, src: string, dest = src) {
  const to = path.join(root, dest);
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(fs.realpathSync(src), to);
  fs.chmodSync(to, 0o755);
}

const INSTALL_SH = (version: string) => `#!/bin/bash
# Harbor STAND-IN installer (casd-registry lab): NOT Harbor. Keeps install.sh's contract:
# load the images, run prepare, compose down -v, compose up -d.
set -e
workdir="$(cd "$(dirname "\${BASH_SOURCE[0]}")" && pwd)"
cd "$workdir"
with_trivy=""
for a in "$@"; do
  case "$a" in
    --with-trivy) with_trivy="--with-trivy" ;;
    *) echo "install.sh (stand-in): unknown option $a" >&2; exit 1 ;;
  esac
done
echo "$(date -u +%FT%TZ) install.sh $* (stand-in ${version})" >> /var/log/casd-standin.log
[ -f harbor.yml ] || { echo "install.sh (stand-in): harbor.yml is missing" >&2; exit 1; }
if docker compose version >/dev/null 2>&1; then dc() { docker compose "$@"; }; else dc() { docker-compose "$@"; }; fi
docker load -i "$workdir/harbor.v${version}.tar.gz"
# shellcheck disable=SC2086
./prepare $with_trivy
if [ -f docker-compose.yml ]; then dc down -v; fi
dc up -d
echo "Harbor stand-in ${version} has been installed and started"
`;

const PREPARE = (version: string) => `#!/bin/bash
# Harbor STAND-IN prepare (casd-registry lab): NOT Harbor. Like Harbor's, it runs the
# prepare image on harbor.yml and writes docker-compose.yml next to it.
set -e
workdir="$(cd "$(dirname "\${BASH_SOURCE[0]}")" && pwd)"
echo "$(date -u +%FT%TZ) prepare $* (stand-in ${version})" >> /var/log/casd-standin.log
docker run --rm -e STANDIN_WORKDIR="$workdir" -v "$workdir:/input" -v "$workdir:/compose_location" -v /:/hostfs casd-standin/prepare:v${version} prepare "$@"
`;

const TEMPLATE = (
  schema: string,
) => `# harbor.yml template of the Harbor STAND-IN (casd-registry lab): NOT Harbor's template.
hostname: reg.mydomain.com
https:
  port: 443
  certificate: /your/certificate/path
  private_key: /your/private/key/path
harbor_admin_password: change-me
database:
  password: change-me
data_volume: /data
_version: ${schema}
`;

/** Builds (or reuses, when cached in outDir) the stand-in installer of `version`. */
export function buildStandinInstaller(opts: { version: string; outDir: string }): StandinInstaller {
  const { version, outDir } = opts;
  const schema = harborConfigSchemaVersion(version);
  const image = `casd-standin/harbor:v${version}`;
  const prepareImage = `casd-standin/prepare:v${version}`;
  // Cached per version and per source of the stand-in (a changed standin.go or recipe builds anew).
  const recipe = createHash("sha256")
    .update(fs.readFileSync(path.join(__dirname, "standin.go")))
    .update(fs.readFileSync(__filename))
    .digest("hex")
    .slice(0, 12);
  const cacheDir = path.join(outDir, recipe);
  fs.mkdirSync(cacheDir, { recursive: true });
  const archive = path.join(cacheDir, `harbor-offline-installer-v${version}.tgz`);
  if (fs.existsSync(archive))
    return { path: archive, sha256: sha256File(archive), version, image, prepareImage };

  const work = fs.mkdtempSync(path.join(outDir, `.standin-${version}-`));
  const rootfs = path.join(work, "rootfs");
  fs.mkdirSync(path.join(rootfs, "tmp"), { recursive: true, mode: 0o1777 });
  // The stand-in binary, static.
  sh(
    "go",
    [
      "build",
      "-trimpath",
      "-ldflags",
      `-s -w -X main.schemaVersion=${schema} -X main.installerVersion=${version}`,
      "-o",
      path.join(rootfs, "standin"),
      path.join(__dirname, "standin.go"),
    ],
    {
      cwd: work,
      env: {
        CGO_ENABLED: "0",
        GOTOOLCHAIN: "local",
        GOPROXY: "off",
        GOFLAGS: "-mod=mod",
        GO111MODULE: "off",
        GOCACHE: path.join(outDir, ".gocache"),
      },
    },
  );
  copyInto(rootfs, "/bin/busybox", "/bin/busybox");
  fs.symlinkSync("busybox", path.join(rootfs, "bin/sh"));
  copyInto(rootfs, "/usr/bin/docker-registry");
  for (const lib of libsOf("/usr/bin/docker-registry")) copyInto(rootfs, lib);

  // One layer, docker save format (manifest.json + config + layer.tar).
  const img = path.join(work, "image");
  fs.mkdirSync(img);
  const layerTmp = path.join(work, "layer.tar");
  sh("tar", [
    "--numeric-owner",
    "--owner=0",
    "--group=0",
    "--sort=name",
    "--mtime=@0",
    "-C",
    rootfs,
    "-cf",
    layerTmp,
    ".",
  ]);
  const layerSha = sha256File(layerTmp);
  fs.mkdirSync(path.join(img, layerSha));
  fs.renameSync(layerTmp, path.join(img, layerSha, "layer.tar"));
  const config = JSON.stringify({
    architecture: "amd64",
    os: "linux",
    created: "1970-01-01T00:00:00Z",
    config: {
      Env: ["PATH=/bin:/usr/bin"],
      Entrypoint: ["/standin"],
      Labels: { "casd.standin": "Harbor stand-in, not Harbor" },
    },
    rootfs: { type: "layers", diff_ids: [`sha256:${layerSha}`] },
    history: [
      {
        created: "1970-01-01T00:00:00Z",
        created_by: "test/lab/standin/build.ts (Harbor stand-in)",
      },
    ],
  });
  const configSha = createHash("sha256").update(config).digest("hex");
  fs.writeFileSync(path.join(img, `${configSha}.json`), config);
  fs.writeFileSync(
    path.join(img, "manifest.json"),
    JSON.stringify([
      {
        Config: `${configSha}.json`,
        RepoTags: [image, prepareImage],
        Layers: [`${layerSha}/layer.tar`],
      },
    ]),
  );

  const stage = path.join(work, "stage/harbor");
  fs.mkdirSync(stage, { recursive: true });
  sh("tar", [
    "--numeric-owner",
    "--owner=0",
    "--group=0",
    "-C",
    img,
    "-czf",
    path.join(stage, `harbor.v${version}.tar.gz`),
    ".",
  ]);
  fs.writeFileSync(path.join(stage, "install.sh"), INSTALL_SH(version), { mode: 0o755 });
  fs.writeFileSync(path.join(stage, "prepare"), PREPARE(version), { mode: 0o755 });
  fs.writeFileSync(path.join(stage, "harbor.yml.tmpl"), TEMPLATE(schema));
  fs.writeFileSync(
    path.join(stage, "STAND-IN"),
    "This is a Harbor stand-in built by test/lab/standin/build.ts for the casd-registry lab. It is not Harbor.\n",
  );
  sh("tar", [
    "--numeric-owner",
    "--owner=0",
    "--group=0",
    "-C",
    path.dirname(stage),
    "-czf",
    `${archive}.partial`,
    "harbor",
  ]);
  fs.renameSync(`${archive}.partial`, archive);
  fs.rmSync(work, { recursive: true, force: true });
  return { path: archive, sha256: sha256File(archive), version, image, prepareImage };
}

/** The stand-in's scripts, for shellcheck. */
export const STANDIN_SCRIPTS = { installSh: INSTALL_SH, prepare: PREPARE };
