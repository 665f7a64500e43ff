/**
 * Pure renderers for the Distribution room: the registry's config.yml and
 * the bash steps run on the registry host (load the image archive, write
 * the config, write htpasswd, verify health, push Harbor's images into the
 * bootstrap mirror), each with the delete that undoes it. Scripts follow
 * infra/remote/script.ts (prelude, check-then-change, one result line,
 * secrets only on stdin, undo journal).
 */
import { posix } from "node:path";
import { stringify } from "yaml";
import { embedFile, renderStepScript, shQuote } from "../remote/script";
import { ACCEPT_ALL_MANIFESTS } from "./media-types";

/** Where things live inside the container. */
export const CONTAINER_PATHS = {
  storage: "/var/lib/registry",
  certs: "/certs",
  auth: "/auth",
  htpasswd: "/auth/htpasswd",
  etc: "/etc/docker/registry",
  config: "/etc/docker/registry/config.yml",
} as const;

/** The port Distribution listens on inside the container in bridge mode. */
export const BRIDGE_PORT = 5000;

const dirname = (p: string): string => posix.dirname(p);

/** Where one instance keeps its files on the host. */
export function instancePaths(
  installDir: string,
  name: string,
): { base: string; etcDir: string; configPath: string; authDir: string; htpasswdPath: string } {
  const base = `${installDir}/distribution-${name}`;
  return {
    base,
    etcDir: `${base}/etc`,
    configPath: `${base}/etc/config.yml`,
    authDir: `${base}/auth`,
    htpasswdPath: `${base}/auth/htpasswd`,
  };
}

// ------------------------------------------------------------------ config.yml

export interface RegistryConfigArgs {
  /** Names the instance in its log lines. */
  instance: string;
  /** The name clients use (the htpasswd realm). */
  hostname: string;
  /** The port the process listens on (BRIDGE_PORT in bridge mode, `port` on the host network). */
  listenPort: number;
  /** Loopback port of the debug listener (health endpoint for the container healthcheck). */
  debugPort: number;
  /** File names of the certificate chain and key inside the mounted certificate directory. */
  certFile: string;
  keyFile: string;
  deleteEnabled: boolean;
}

/** Distribution 2.8's config.yml (rendered with the YAML library). */
export function renderRegistryConfig(a: RegistryConfigArgs): string {
  const config = {
    version: 0.1,
    log: {
      level: "info",
      formatter: "text",
      fields: { service: "registry", instance: a.instance },
    },
    storage: {
      filesystem: { rootdirectory: CONTAINER_PATHS.storage },
      delete: { enabled: a.deleteEnabled },
      cache: { blobdescriptor: "inmemory" },
      maintenance: {
        uploadpurging: { enabled: true, age: "168h", interval: "24h", dryrun: false },
      },
    },
    http: {
      // No http.host: upload URLs then follow the Host the client used (an address or
      // another name in the certificate); a fixed host would send clients elsewhere.
      addr: `:${a.listenPort}`,
      tls: {
        certificate: `${CONTAINER_PATHS.certs}/${a.certFile}`,
        key: `${CONTAINER_PATHS.certs}/${a.keyFile}`,
        minimumtls: "tls1.2",
      },
      headers: { "X-Content-Type-Options": ["nosniff"] },
      debug: { addr: `127.0.0.1:${a.debugPort}` },
    },
    auth: { htpasswd: { realm: a.hostname, path: CONTAINER_PATHS.htpasswd } },
    health: { storagedriver: { enabled: true, interval: "10s", threshold: 3 } },
  };
  return stringify(config, { lineWidth: 0 });
}

/** The container healthcheck: the debug listener's health endpoint, over loopback, with busybox wget. */
export function healthcheckTest(debugPort: number): string[] {
  return ["CMD", "wget", "-q", "-O", "/dev/null", `http://127.0.0.1:${debugPort}/debug/health`];
}

// ------------------------------------------------------------ shared snippets

/**
 * Bash functions for `docker save` archives: the manifest.json entries
 * (config digest and first RepoTag, one `<id> <tag>` line per image),
 * parsed without jq (hosts may lack it).
 */
const ARCHIVE_FUNCS = String.raw`# casd_archive_entries ARCHIVE: one "sha256:<config hex> <first RepoTag or ->" line per image.
casd_archive_entries() {
  local m line hex tag
  m=$(tar -xOf "$1" manifest.json 2>/dev/null) || casd_fail "$1 is not a docker save archive (no manifest.json)"
  printf '%s\n' "$m" | tr '{' '\n' | grep '"Config"' | while IFS= read -r line; do
    hex=$(printf '%s\n' "$line" | sed -n 's/.*"Config":"[^"]*\([0-9a-f]\{64\}\)[^"]*".*/\1/p')
    tag=$(printf '%s\n' "$line" | sed -n 's/.*"RepoTags":\["\([^"]*\)".*/\1/p')
    [ -n "$hex" ] || casd_fail "$1: cannot read an image config digest from manifest.json"
    [ -n "$tag" ] || tag=-
    printf 'sha256:%s %s\n' "$hex" "$tag"
  done
}
# casd_image_id REF: the engine's id of REF, or nothing.
casd_image_id() { docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }
# casd_verify_archive ARCHIVE SHA256: the archive is there, intact, and root's only.
casd_verify_archive() {
  local have
  [ -f "$1" ] || casd_fail "$1 is missing: the upload step must run first"
  have=$(sha256sum "$1" | cut -d' ' -f1)
  [ "$have" = "$2" ] || casd_fail "$1 has sha256 $have, expected $2: the bundle is corrupt or not the one configured; copy it again and check the sha256 in config"
  if [ "$(stat -c '%a %U %G' "$1")" != "600 root root" ]; then chown root:root "$1"; chmod 600 "$1"; casd_mark; fi
}
`;

/** Reads the password (first line of stdin) into $CASD_PW; fails when there is none. */
const READ_PASSWORD = [
  "CASD_PW=",
  "IFS= read -r CASD_PW || true",
  '[ -n "$CASD_PW" ] || casd_fail "no password on stdin"',
  "# curl gets the credentials as a header read from a file descriptor: never on argv.",
  `casd_auth_header() { printf 'Authorization: Basic %s\\n' "$(printf '%s:%s' "$CASD_USER" "$CASD_PW" | base64 -w0)"; }`,
].join("\n");

// ------------------------------------------------------------------ load image

export interface LoadScriptArgs {
  /** Undo journal id: names the record of what was loaded. */
  journal: string;
  /** The uploaded archive on the host. */
  archivePath: string;
  sha256: string;
  /** The image reference the archive must hold (a RepoTag of it). */
  image: string;
}

/** Verifies the archive and loads it unless the engine already has the same image id; prints the id. */
export function renderLoadScript(a: LoadScriptArgs): string {
  const body = [
    ARCHIVE_FUNCS,
    `ARCHIVE=${shQuote(a.archivePath)}`,
    `IMAGE=${shQuote(a.image)}`,
    `RECORD="$CASD_UNDO_ROOT"/${shQuote(`${a.journal}.loaded`)}`,
    `command -v docker >/dev/null 2>&1 || casd_fail "docker is not installed on this host"`,
    `casd_verify_archive "$ARCHIVE" ${shQuote(a.sha256)}`,
    `entries=$(casd_archive_entries "$ARCHIVE")`,
    `want=$(printf '%s\\n' "$entries" | awk -v t="$IMAGE" '$2 == t { print $1; exit }')`,
    `[ -n "$want" ] || casd_fail "$ARCHIVE holds $(printf '%s\\n' "$entries" | awk '{print $2}' | paste -sd ' ' -), not $IMAGE: set distribution.image to the image the archive holds"`,
    `if [ "$(casd_image_id "$IMAGE")" != "$want" ]; then`,
    `  casd_log "loading $IMAGE ($want) from $ARCHIVE"`,
    `  docker load -i "$ARCHIVE" >&2`,
    `  if [ ! -d "$CASD_UNDO_ROOT" ]; then mkdir -p "$CASD_UNDO_ROOT"; chmod 700 "$CASD_UNDO_ROOT"; fi`,
    `  printf '%s %s\\n' "$want" "$IMAGE" > "$RECORD"`,
    `  casd_mark`,
    `fi`,
    `have=$(casd_image_id "$IMAGE")`,
    `[ "$have" = "$want" ] || casd_fail "after docker load, $IMAGE is \${have:-absent}, expected $want"`,
    `printf 'casd: load: image %s\\n' "$want"`,
  ].join("\n");
  return renderStepScript({ step: "load", body });
}

/** Removes the uploaded archive, and the image when this step loaded it and no container uses it. */
export function renderLoadDeleteScript(a: Pick<LoadScriptArgs, "journal" | "archivePath">): string {
  const body = [
    `RECORD="$CASD_UNDO_ROOT"/${shQuote(`${a.journal}.loaded`)}`,
    `if [ -f "$RECORD" ]; then`,
    `  read -r id ref < "$RECORD" || true`,
    `  if ! command -v docker >/dev/null 2>&1; then casd_log "docker is gone: nothing to remove"`,
    `  elif [ -n "$(docker ps -aq --filter "ancestor=$id" 2>/dev/null)" ]; then casd_log "kept image $ref ($id): containers still use it"`,
    `  elif [ "$(docker image inspect --format '{{.Id}}' "$ref" 2>/dev/null || true)" = "$id" ]; then`,
    `    if docker image rm "$ref" >&2; then casd_mark; else casd_warn "could not remove image $ref"; fi`,
    `  fi`,
    `  rm -f "$RECORD"`,
    `  rmdir "$CASD_UNDO_ROOT" 2>/dev/null || true`,
    `fi`,
    `casd_rm ${shQuote(a.archivePath)}`,
    `rmdir ${shQuote(dirname(a.archivePath))} 2>/dev/null || true`,
  ].join("\n");
  return renderStepScript({ step: "load (delete)", body });
}

// ------------------------------------------------------------- config + dirs

export interface ConfigScriptArgs {
  journal: string;
  /** The registry's storage directory (kept on delete). */
  storageDir: string;
  etcDir: string;
  configPath: string;
  config: string;
}

/** Creates the storage and config directories and installs config.yml (journaled). */
export function renderConfigScript(a: ConfigScriptArgs): string {
  const body = [
    `casd_undo_begin ${shQuote(a.journal)}`,
    `casd_tdir ${shQuote(a.storageDir)} 755 root root`,
    `casd_tdir ${shQuote(a.etcDir)} 755 root root`,
    embedFile(a.configPath, a.config, "444", "root", "root", true),
  ].join("\n");
  return renderStepScript({ step: "config", body });
}

/** Undoes the config step; the storage directory (registry data) is kept. */
export function renderConfigDeleteScript(
  a: Pick<ConfigScriptArgs, "journal" | "storageDir">,
): string {
  const body = [
    `casd_undo_run ${shQuote(a.journal)} ${shQuote(a.storageDir)}`,
    `if [ -d ${shQuote(a.storageDir)} ]; then casd_log ${shQuote(`kept ${a.storageDir}: registry data is never deleted by destroy`)}; fi`,
  ].join("\n");
  return renderStepScript({ step: "config (delete)", body });
}

// -------------------------------------------------------------------- htpasswd

export interface AuthScriptArgs {
  journal: string;
  authDir: string;
  htpasswdPath: string;
}

/** Installs the htpasswd line read from stdin (0400 root:root; never on argv, never echoed). */
export function renderAuthScript(a: AuthScriptArgs): string {
  const body = [
    `casd_undo_begin ${shQuote(a.journal)}`,
    `line=`,
    `IFS= read -r line || true`,
    `case $line in`,
    `  *:\\$2[aby]\\$[0-9][0-9]\\$*) ;;`,
    `  *) casd_fail "stdin is not one htpasswd line with a bcrypt hash" ;;`,
    `esac`,
    `casd_tdir ${shQuote(a.authDir)} 700 root root`,
    `printf '%s\\n' "$line" | casd_tfile ${shQuote(a.htpasswdPath)} 400 root root`,
  ].join("\n");
  return renderStepScript({ step: "auth", body });
}

export function renderAuthDeleteScript(a: Pick<AuthScriptArgs, "journal">): string {
  return renderStepScript({ step: "auth (delete)", body: `casd_undo_run ${shQuote(a.journal)}` });
}

// ---------------------------------------------------------------------- health

export interface HealthScriptArgs {
  container: string;
  hostname: string;
  port: number;
  /** The CA certificate on the host. */
  caPath: string;
  username: string;
  /** Polls of the container's health, two seconds apart. */
  attempts: number;
}

/**
 * Read-only: waits until Docker reports the container healthy, then proves
 * from the host that TLS verifies for the hostname with the CA and that
 * htpasswd auth is enforced (401 without, 200 with the password on stdin).
 */
export function renderHealthScript(a: HealthScriptArgs): string {
  const url = `https://${a.hostname}:${a.port}/v2/`;
  const body = [
    `CASD_USER=${shQuote(a.username)}`,
    READ_PASSWORD,
    `command -v curl >/dev/null 2>&1 || casd_fail "curl is not installed on this host (needed to verify the registry)"`,
    `CONTAINER=${shQuote(a.container)}`,
    `status=missing`,
    `for _ in $(seq 1 ${a.attempts}); do`,
    `  status=$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}no-healthcheck{{end}}' "$CONTAINER" 2>/dev/null || echo missing)`,
    `  case $status in healthy|unhealthy|no-healthcheck) break ;; esac`,
    `  sleep 2`,
    `done`,
    `if [ "$status" != healthy ]; then`,
    `  docker logs --tail 20 "$CONTAINER" >&2 || true`,
    `  casd_fail "container $CONTAINER is $status, not healthy"`,
    `fi`,
    `CURL=(curl -sS -o /dev/null -w '%{http_code}' --max-time 20 --cacert ${shQuote(a.caPath)} --resolve ${shQuote(`${a.hostname}:${a.port}:127.0.0.1`)})`,
    `code=$("\${CURL[@]}" ${shQuote(url)}) || casd_fail "${url} did not answer over TLS verified with ${a.caPath}"`,
    `[ "$code" = 401 ] || casd_fail "${url} answered $code without credentials, expected 401 (htpasswd auth)"`,
    `code=$("\${CURL[@]}" -H @<(casd_auth_header) ${shQuote(url)}) || casd_fail "${url} did not answer"`,
    `[ "$code" = 200 ] || casd_fail "${url} answered $code with the configured credentials, expected 200"`,
    `casd_log "$CONTAINER is healthy; ${url} verifies with the CA and enforces auth"`,
  ].join("\n");
  return renderStepScript({ step: "health", body });
}

// ------------------------------------------------------ Harbor images -> mirror

export interface MirrorPushScriptArgs {
  journal: string;
  archivePath: string;
  sha256: string;
  /** `host:port` the host's engine pushes to (an address or name in the server certificate). */
  registry: string;
  caPath: string;
  username: string;
}

/**
 * Loads the Harbor installer's image archive (skipped when every image is
 * already in the engine) and pushes each image to `<registry>/<RepoTag>`
 * (so goharbor/<name>:<tag>), skipping those whose manifest the mirror
 * already has. The engine trusts the mirror through
 * /etc/docker/certs.d/<registry>/ca.crt (journaled); docker login uses a
 * throw-away config directory. The password comes on stdin.
 */
export function renderMirrorPushScript(a: MirrorPushScriptArgs): string {
  const body = [
    ARCHIVE_FUNCS,
    `CASD_USER=${shQuote(a.username)}`,
    READ_PASSWORD,
    `command -v docker >/dev/null 2>&1 || casd_fail "docker is not installed on this host"`,
    `command -v curl >/dev/null 2>&1 || casd_fail "curl is not installed on this host"`,
    `ARCHIVE=${shQuote(a.archivePath)}`,
    `REG=${shQuote(a.registry)}`,
    `RECORD="$CASD_UNDO_ROOT"/${shQuote(`${a.journal}.images`)}`,
    `casd_undo_begin ${shQuote(a.journal)}`,
    `casd_verify_archive "$ARCHIVE" ${shQuote(a.sha256)}`,
    `casd_tdir "/etc/docker/certs.d/$REG" 755 root root`,
    `casd_tfile "/etc/docker/certs.d/$REG/ca.crt" 444 root root < ${shQuote(a.caPath)}`,
    `entries=$(casd_archive_entries "$ARCHIVE")`,
    `missing=0`,
    `while read -r id tag; do`,
    `  [ "$tag" != - ] || casd_fail "$ARCHIVE has an image without a tag ($id): cannot name it in the mirror"`,
    `  if [ "$(casd_image_id "$tag")" != "$id" ]; then missing=1; fi`,
    `done <<< "$entries"`,
    `if [ ! -d "$CASD_UNDO_ROOT" ]; then mkdir -p "$CASD_UNDO_ROOT"; chmod 700 "$CASD_UNDO_ROOT"; fi`,
    `if [ "$missing" = 1 ]; then`,
    `  casd_log "loading $ARCHIVE"`,
    `  docker load -i "$ARCHIVE" >&2`,
    `  printf '%s\\n' "$entries" | sed 's/^/loaded /' >> "$RECORD"`,
    `  casd_mark`,
    `fi`,
    `tmp=$(mktemp -d)`,
    `trap 'rm -rf "$tmp"' EXIT`,
    `printf '%s' "$CASD_PW" | docker --config "$tmp" login --username "$CASD_USER" --password-stdin "$REG" >/dev/null`,
    `pushed=0; present=0`,
    `while read -r id tag; do`,
    `  repo=\${tag%:*}; ref=\${tag##*:}`,
    `  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 30 --cacert ${shQuote(a.caPath)} -H @<(casd_auth_header) -I -H ${shQuote(`Accept: ${ACCEPT_ALL_MANIFESTS}`)} "https://$REG/v2/$repo/manifests/$ref") || casd_fail "$REG did not answer"`,
    `  case $code in`,
    `    200) present=$((present + 1)); continue ;;`,
    `    404) ;;`,
    `    *) casd_fail "$REG answered $code for the manifest of $tag" ;;`,
    `  esac`,
    `  docker tag "$id" "$REG/$tag"`,
    `  printf 'tagged %s %s\\n' "$id" "$REG/$tag" >> "$RECORD"`,
    `  docker --config "$tmp" push "$REG/$tag" >&2`,
    `  pushed=$((pushed + 1)); casd_mark`,
    `done <<< "$entries"`,
    `docker --config "$tmp" logout "$REG" >/dev/null 2>&1 || true`,
    `printf 'casd: harbor-images: %s pushed, %s already in %s\\n' "$pushed" "$present" "$REG"`,
  ].join("\n");
  return renderStepScript({ step: "harbor-images", body });
}

/**
 * Undoes the push step on the host: removes the mirror tags it made, the
 * images it loaded (when no container uses them), the uploaded archive and
 * the certs.d entry. What was pushed stays in the mirror (registry data).
 */
export function renderMirrorPushDeleteScript(
  a: Pick<MirrorPushScriptArgs, "journal" | "archivePath">,
): string {
  const body = [
    `RECORD="$CASD_UNDO_ROOT"/${shQuote(`${a.journal}.images`)}`,
    `if [ -f "$RECORD" ] && command -v docker >/dev/null 2>&1; then`,
    `  while read -r what id ref; do`,
    `    case $what in`,
    `      tagged) if [ "$(docker image inspect --format '{{.Id}}' "$ref" 2>/dev/null || true)" = "$id" ]; then docker image rm "$ref" >/dev/null && casd_mark; fi ;;`,
    `    esac`,
    `  done < <(tac "$RECORD")`,
    `  while read -r what id ref; do`,
    `    case $what in`,
    `      loaded)`,
    `        if [ -n "$(docker ps -aq --filter "ancestor=$id" 2>/dev/null)" ]; then casd_log "kept $ref: containers use it"`,
    `        elif [ "$(docker image inspect --format '{{.Id}}' "$ref" 2>/dev/null || true)" = "$id" ]; then docker image rm "$ref" >/dev/null && casd_mark; fi ;;`,
    `    esac`,
    `  done < "$RECORD"`,
    `fi`,
    `rm -f "$RECORD"`,
    `casd_undo_run ${shQuote(a.journal)}`,
    `casd_rm ${shQuote(a.archivePath)}`,
    `rmdir ${shQuote(dirname(a.archivePath))} 2>/dev/null || true`,
    `casd_log "images pushed to the mirror stay in its storage: registry data is never deleted by destroy"`,
  ].join("\n");
  return renderStepScript({ step: "harbor-images (delete)", body });
}
