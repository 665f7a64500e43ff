/**
 * The bash steps of Harbor's compose path, as pure renderers. Each script
 * uses the shared prelude (`infra/remote/script.ts`), is idempotent and
 * prints one `casd: <step>: changed|unchanged` line. Secrets (harbor.yml,
 * the admin password) only ever arrive on stdin.
 */
import { renderStepScript, shQuote } from "../../remote/script";

/** Where everything of the compose path lives on the registry host. */
export interface ComposePaths {
  /** `<installDir>/harbor`: root of this room's files. */
  base: string;
  /** Uploaded installer archives. */
  uploads: string;
  /** The uploaded archive of this version. */
  archive: string;
  /** `v<version>-<sha256[0:12]>`: one directory per installer archive. */
  installId: string;
  /** `<base>/<installId>`: the archive is extracted here. */
  installRoot: string;
  /** `<installRoot>/harbor`: the installer's own directory (install.sh, prepare, harbor.yml). */
  harborDir: string;
  /** Symlink naming the installation that runs (`current -> <installId>`). */
  current: string;
  /** Timestamped upgrade backups. */
  backups: string;
  /** The admin password Harbor has now (0600 root), for API rotation. */
  adminState: string;
}

/** Paths for one installer archive. */
export function composePaths(installDir: string, version: string, sha256: string): ComposePaths {
  const base = `${installDir.replace(/\/+$/, "")}/harbor`;
  const installId = `v${version}-${sha256.slice(0, 12)}`;
  const installRoot = `${base}/${installId}`;
  return {
    base,
    uploads: `${base}/uploads`,
    archive: `${base}/uploads/harbor-offline-installer-${installId}.tgz`,
    installId,
    installRoot,
    harborDir: `${installRoot}/harbor`,
    current: `${base}/current`,
    backups: `${base}/backups`,
    adminState: `${base}/admin-password`,
  };
}

/** Runs docker compose (v2 plugin) or docker-compose (v1), whichever the host has, as install.sh does. */
const COMPOSE_HELPERS = String.raw`casd_compose() {
  if docker compose version >/dev/null 2>&1; then docker compose "$@"; else docker-compose "$@"; fi
}
# casd_running DIR: every service of the compose project in DIR has a running container.
casd_running() {
  local want have
  want=$(cd "$1" && casd_compose config --services 2>/dev/null | sort)
  have=$(cd "$1" && casd_compose ps --services --filter status=running 2>/dev/null | sort)
  [ -n "$want" ] && [ "$want" = "$have" ]
}`;

const Q = shQuote;

/** Step 1: the room's directories. */
export function renderLayoutScript(p: ComposePaths): string {
  return renderStepScript({
    step: "harbor-layout",
    body: [
      `casd_dir ${Q(p.base)} 700 root root`,
      `casd_dir ${Q(p.uploads)} 700 root root`,
      `casd_dir ${Q(p.backups)} 700 root root`,
    ].join("\n"),
  });
}

/** Undo of step 1: removes the directories when empty (backups are kept). */
export function renderLayoutDelete(p: ComposePaths): string {
  return renderStepScript({
    step: "harbor-layout-delete",
    body:
      [p.uploads, p.backups, p.base]
        .map((d) => `if [ -d ${Q(d)} ] && rmdir ${Q(d)} 2>/dev/null; then casd_mark; fi`)
        .join("\n") +
      `\nif [ -d ${Q(p.backups)} ]; then casd_log "kept upgrade backups in ${p.backups}"; fi`,
  });
}

export interface DataArgs {
  dataVolume: string;
  purgeOnDestroy: boolean;
  adminState: string;
}

/** Step 2: the data volume exists (Harbor's prepare sets owners inside). */
export function renderDataScript(a: DataArgs): string {
  return renderStepScript({
    step: "harbor-data",
    body: `if [ ! -d ${Q(a.dataVolume)} ]; then mkdir -p ${Q(a.dataVolume)}; chmod 755 ${Q(a.dataVolume)}; casd_mark; fi`,
  });
}

/** Undo of step 2: keeps the data unless purgeDataOnDestroy. */
export function renderDataDelete(a: DataArgs): string {
  const body = a.purgeOnDestroy
    ? [
        `if [ -d ${Q(a.dataVolume)} ] && [ -n "$(ls -A ${Q(a.dataVolume)})" ]; then`,
        `  find ${Q(a.dataVolume)} -xdev -mindepth 1 -delete`,
        `  casd_log "purged Harbor data in ${a.dataVolume} (purgeDataOnDestroy)"`,
        "  casd_mark",
        "fi",
        `casd_rm ${Q(a.adminState)}`,
      ].join("\n")
    : `casd_log "kept Harbor data in ${a.dataVolume} (set harbor.purgeDataOnDestroy to remove it)"`;
  return renderStepScript({ step: "harbor-data-delete", body });
}

export interface ExtractArgs {
  paths: ComposePaths;
  version: string;
  /** Expected sha256 of the archive (64 hex). */
  sha256: string;
  /** Optional detached signature check: armored `.asc` text and the pinned key as a binary keyring (base64). */
  signature?: { ascArmored: string; keyringBase64: string };
}

/** Step 4: verify the uploaded archive, then extract it into its own directory. */
export function renderExtractScript(a: ExtractArgs): string {
  const p = a.paths;
  const lines = [
    `archive=${Q(p.archive)}`,
    `expected=${Q(a.sha256)}`,
    `root=${Q(p.installRoot)}`,
    `[ -f "$archive" ] || casd_fail "installer archive $archive is missing on the host (the upload step did not run or it was removed); run pulumi up again"`,
    `actual=$(sha256sum "$archive" | cut -d' ' -f1)`,
    `if [ "$actual" != "$expected" ]; then`,
    `  casd_fail "installer checksum mismatch: $archive has sha256 $actual but harbor.installerSha256 is $expected; nothing was extracted or changed. Fix: set harbor.installerSha256 to the bundle's published sha256, or replace the archive with the genuine one"`,
    "fi",
    `if [ "$(stat -c '%a %U %G' "$archive")" != "600 root root" ]; then chmod 600 "$archive"; chown root:root "$archive"; fi`,
  ];
  if (a.signature) {
    lines.push(
      "command -v gpgv >/dev/null || casd_fail \"gpgv is not installed on the registry host: it is needed to check the installer's signature (install gpgv from the host's OS media)\"",
      "sigdir=$(mktemp -d)",
      "trap 'rm -rf \"$sigdir\"' EXIT",
      `printf '%s' ${Q(Buffer.from(a.signature.ascArmored, "utf8").toString("base64"))} | base64 -d > "$sigdir/installer.asc"`,
      `printf '%s' ${Q(a.signature.keyringBase64)} | base64 -d > "$sigdir/pinned.gpg"`,
      'if ! gpgv --keyring "$sigdir/pinned.gpg" "$sigdir/installer.asc" "$archive" >"$sigdir/gpgv.log" 2>&1; then',
      '  cat "$sigdir/gpgv.log" >&2',
      '  casd_fail "installer signature does not verify with the pinned key (harbor.signingKeyPath); nothing was extracted or changed"',
      "fi",
    );
  }
  lines.push(
    `if [ -f "$root/.casd-extracted" ] && [ "$(cat "$root/.casd-extracted")" = "$expected" ] && [ -x "$root/harbor/install.sh" ]; then`,
    "  :",
    "else",
    '  rm -rf "$root.partial"',
    '  mkdir -p "$root.partial"',
    '  tar -xzf "$archive" -C "$root.partial" --no-same-owner',
    `  for f in install.sh prepare harbor.yml.tmpl ${Q(`harbor.v${a.version}.tar.gz`)}; do`,
    `    [ -e "$root.partial/harbor/$f" ] || { rm -rf "$root.partial"; casd_fail "$archive is not Harbor ${a.version}'s offline installer: harbor/$f is missing (check harbor.version and harbor.installerPath)"; }`,
    "  done",
    `  printf '%s\\n' "$expected" > "$root.partial/.casd-extracted"`,
    `  printf '%s\\n' ${Q(a.version)} > "$root.partial/.casd-version"`,
    '  chmod 700 "$root.partial"',
    '  rm -rf "$root"',
    '  mv "$root.partial" "$root"',
    "  casd_mark",
    "fi",
  );
  return renderStepScript({ step: "harbor-extract", body: lines.join("\n") });
}

/** Undo of step 4: removes the extracted directory and the upload (the data volume is not touched). */
export function renderExtractDelete(p: ComposePaths): string {
  return renderStepScript({
    step: "harbor-extract-delete",
    body: [
      `if [ -L ${Q(p.current)} ] && [ "$(readlink ${Q(p.current)})" = ${Q(p.installId)} ]; then rm -f ${Q(p.current)}; casd_mark; fi`,
      `if [ -d ${Q(p.installRoot)} ]; then rm -rf ${Q(p.installRoot)}; casd_mark; fi`,
      `casd_rm ${Q(p.archive)}`,
    ].join("\n"),
  });
}

export interface ApplyArgs {
  paths: ComposePaths;
  version: string;
  /** `_version` the new harbor.yml carries (target of the migrate step). */
  schemaVersion: string;
  withTrivy: boolean;
  certPath: string;
  keyPath: string;
  dataVolume: string;
  /** Image with Harbor's `prepare ... migrate` command, `goharbor/prepare:v<version>`. */
  prepareImage: string;
  /** The server certificate's fingerprint: part of the script so that a rotation re-runs the step. */
  certFingerprint: string;
}

/**
 * Step 5: write harbor.yml (stdin, 0600 root), then install, reconfigure or
 * upgrade, only when something changed. Harbor's `install.sh` always runs
 * `compose down`, so it runs only on a first install and on an upgrade.
 */
export function renderApplyScript(a: ApplyArgs): string {
  const p = a.paths;
  const trivy = a.withTrivy ? " --with-trivy" : "";
  const body = [
    COMPOSE_HELPERS,
    `# server certificate fingerprint: ${a.certFingerprint}`,
    `base=${Q(p.base)}`,
    `id=${Q(p.installId)}`,
    `root=${Q(p.installRoot)}`,
    `dir=${Q(p.harborDir)}`,
    `current=${Q(p.current)}`,
    `data=${Q(a.dataVolume)}`,
    `version=${Q(a.version)}`,
    `log="$root/casd-apply.log"`,
    `[ -x "$dir/install.sh" ] || casd_fail "$dir/install.sh is missing: the extract step has not run for $id"`,
    `for f in ${Q(a.certPath)} ${Q(a.keyPath)}; do [ -r "$f" ] || casd_fail "$f is missing: the host room installs the server certificate and key before Harbor"; done`,
    `casd_file "$dir/harbor.yml" 600 root root`,
    `casd_run() { casd_log "$*"; if ! "$@" >>"$log" 2>&1; then tail -n 40 "$log" >&2; casd_fail "'$*' failed in $PWD (full output in $log)"; fi; }`,
    `stamp=$( { printf 'install=%s trivy=%s\\n' "$id" ${Q(String(a.withTrivy))}; grep -v '^harbor_admin_password:' "$dir/harbor.yml"; sha256sum < ${Q(a.certPath)}; sha256sum < ${Q(a.keyPath)}; } | sha256sum | cut -d' ' -f1)`,
    `cur=""`,
    `if [ -L "$current" ]; then cur=$(readlink "$current"); fi`,
    `switch_current() { ln -sfn "$id" "$current.new"; mv -Tf "$current.new" "$current"; }`,
    `if [ "$cur" = "$id" ]; then`,
    `  if [ -f "$root/.casd-applied" ] && [ "$(cat "$root/.casd-applied")" = "$stamp" ]; then`,
    `    if casd_running "$dir"; then`,
    `      casd_log "harbor $version: configuration unchanged and every service running; nothing restarted"`,
    "    else",
    `      cd "$dir"`,
    `      casd_run casd_compose up -d`,
    "      casd_mark",
    "    fi",
    "  else",
    `    cd "$dir"`,
    `    casd_log "harbor $version: harbor.yml or the certificate changed; reconfiguring (down, prepare, up)"`,
    `    casd_run casd_compose down`,
    `    casd_run ./prepare${trivy}`,
    `    casd_run casd_compose up -d`,
    `    printf '%s\\n' "$stamp" > "$root/.casd-applied"`,
    "    casd_mark",
    "  fi",
    `elif [ -z "$cur" ]; then`,
    `  cd "$dir"`,
    `  casd_log "harbor $version: first install"`,
    `  casd_run ./install.sh${trivy}`,
    `  printf '%s\\n' "$stamp" > "$root/.casd-applied"`,
    "  switch_current",
    "  casd_mark",
    "else",
    `  old_root="$base/$cur"`,
    `  old_version=$(cat "$old_root/.casd-version" 2>/dev/null || echo unknown)`,
    `  downgrade=0`,
    `  if [ "$old_version" != unknown ] && [ "$old_version" != "$version" ] && [ "$(printf '%s\\n%s\\n' "$old_version" "$version" | sort -V | tail -n 1)" = "$old_version" ]; then`,
    `    [ -f "$base/allow-downgrade" ] || casd_fail "harbor.version $version is older than the running $old_version: a downgrade needs the database backup of $old_version's upgrade restored first (docs/harbor-compose.md, Rollback), then touch $base/allow-downgrade"`,
    "    downgrade=1",
    "  fi",
    `  casd_log "harbor: upgrading $old_version ($cur) to $version ($id)"`,
    `  if [ -d "$old_root/harbor" ]; then cd "$old_root/harbor"; casd_run casd_compose down; fi`,
    `  backup="$base/backups/$(date -u +%Y%m%dT%H%M%SZ)-$cur-to-$id"`,
    `  mkdir -p "$backup"`,
    `  if [ -d "$old_root/harbor" ]; then tar -C "$old_root" --exclude='harbor/harbor.v*.tar.gz' -czf "$backup/install.tgz" harbor; fi`,
    `  if [ -d "$data/database" ]; then tar -C "$data" -czf "$backup/database.tgz" database; fi`,
    `  casd_log "backup of $cur and $data/database in $backup"`,
    `  cd "$dir"`,
    `  casd_run docker load -i "$dir/harbor.v$version.tar.gz"`,
    `  if [ "$downgrade" = 0 ] && [ -f "$old_root/harbor/harbor.yml" ]; then`,
    `    install -m 600 "$old_root/harbor/harbor.yml" "$backup/harbor.yml.previous"`,
    `    casd_run docker run --rm -v /:/hostfs ${Q(a.prepareImage)} migrate -i "$backup/harbor.yml.previous" -o "$backup/harbor.yml.migrated" -t ${Q(a.schemaVersion)}`,
    "  fi",
    `  casd_run ./install.sh${trivy}`,
    `  printf '%s\\n' "$stamp" > "$root/.casd-applied"`,
    "  switch_current",
    `  rm -f "$base/allow-downgrade"`,
    `  echo "casd: upgraded harbor $old_version to $version; backup: $backup"`,
    "  casd_mark",
    "fi",
  ].join("\n");
  return renderStepScript({ step: "harbor-apply", body });
}

/** Undo of step 5: `compose down` when this installation is the running one; data and harbor.yml stay. */
export function renderApplyDelete(p: ComposePaths): string {
  return renderStepScript({
    step: "harbor-apply-delete",
    body: [
      COMPOSE_HELPERS,
      `if [ -L ${Q(p.current)} ] && [ "$(readlink ${Q(p.current)})" = ${Q(p.installId)} ] && [ -f ${Q(`${p.harborDir}/docker-compose.yml`)} ]; then`,
      `  cd ${Q(p.harborDir)}`,
      "  casd_compose down",
      "  casd_mark",
      "fi",
    ].join("\n"),
  });
}

export interface HealthArgs {
  hostname: string;
  httpsPort: number;
  caCertPem: string;
  timeoutSeconds: number;
}

/** `https://<hostname>[:port]` as clients see it. */
export function harborEndpoint(hostname: string, httpsPort: number): string {
  return httpsPort === 443 ? `https://${hostname}` : `https://${hostname}:${httpsPort}`;
}

const CA_FILE_HELPER = (caCertPem: string) =>
  [
    "work=$(mktemp -d)",
    "trap 'rm -rf \"$work\"' EXIT",
    `printf '%s' ${Q(Buffer.from(caCertPem, "utf8").toString("base64"))} | base64 -d > "$work/ca.crt"`,
  ].join("\n");

/**
 * Step 6: wait, bounded and with backoff, until /api/v2.0/health says
 * healthy, with the stack's CA and the real hostname (resolved to the host's
 * loopback so the check does not depend on DNS; never -k).
 */
export function renderHealthScript(a: HealthArgs): string {
  const url = `${harborEndpoint(a.hostname, a.httpsPort)}/api/v2.0/health`;
  const body = [
    CA_FILE_HELPER(a.caCertPem),
    `url=${Q(url)}`,
    `deadline=$((SECONDS + ${a.timeoutSeconds}))`,
    "delay=1",
    'last="no answer yet"',
    "while :; do",
    `  if out=$(curl -sS --max-time 10 --cacert "$work/ca.crt" --resolve ${Q(`${a.hostname}:${a.httpsPort}:127.0.0.1`)} "$url" 2>&1); then`,
    `    case "$out" in`,
    `      '{"status":"healthy"'*) echo "casd: harbor healthy at $url"; break ;;`,
    "    esac",
    `    last=$(printf '%s' "$out" | grep -o '"name":"[^"]*","status":"[^"]*"' | sed -e 's/"name":"\\([^"]*\\)","status":"\\([^"]*\\)"/\\1=\\2/' | grep -v '=healthy$' | paste -sd ' ' - || true)`,
    `    [ -n "$last" ] || last="answer: $(printf '%s' "$out" | head -c 300)"`,
    "  else",
    `    last="no healthy answer: $(printf '%s' "$out" | tail -n 1)"`,
    "  fi",
    `  if [ "$SECONDS" -ge "$deadline" ]; then`,
    `    casd_fail "harbor is not healthy after ${a.timeoutSeconds}s at $url; unhealthy: $last (docker ps -a and Harbor's logs on the host tell more)"`,
    "  fi",
    '  sleep "$delay"',
    "  delay=$((delay * 2))",
    '  if [ "$delay" -gt 15 ]; then delay=15; fi',
    "  # never sleep past the deadline: the last attempt happens at it",
    '  if [ "$delay" -gt $((deadline - SECONDS)) ]; then delay=$((deadline - SECONDS)); fi',
    '  if [ "$delay" -lt 1 ]; then delay=1; fi',
    "done",
  ].join("\n");
  return renderStepScript({ step: "harbor-health", body });
}

export interface AdminPasswordArgs {
  hostname: string;
  httpsPort: number;
  caCertPem: string;
  /** File holding the password Harbor has now (0600 root). */
  statePath: string;
}

/**
 * Step 7: make Harbor's admin password the configured one (stdin). harbor.yml
 * only sets it at the first start; later rotations go through the API
 * (`PUT /api/v2.0/users/<id>/password`), authenticated with the recorded one.
 */
export function renderAdminPasswordScript(a: AdminPasswordArgs): string {
  const api = `${harborEndpoint(a.hostname, a.httpsPort)}/api/v2.0`;
  const body = [
    CA_FILE_HELPER(a.caCertPem),
    `state=${Q(a.statePath)}`,
    `api=${Q(api)}`,
    "new=$(cat)",
    '[ -n "$new" ] || casd_fail "no admin password on stdin"',
    "# curl reads credentials from a 0600 config file, never from argv.",
    'curl_cfg() { local u=$1; u=${u//\\\\/\\\\\\\\}; u=${u//\\"/\\\\\\"}; printf \'user = "admin:%s"\\n\' "$u" > "$work/curl.cfg"; }',
    'json_str() { local s=$1; s=${s//\\\\/\\\\\\\\}; s=${s//\\"/\\\\\\"}; printf \'"%s"\' "$s"; }',
    `call() { curl -sS --max-time 20 --cacert "$work/ca.crt" --resolve ${Q(`${a.hostname}:${a.httpsPort}:127.0.0.1`)} -K "$work/curl.cfg" -o "$work/body" -w '%{http_code}' "$@"; }`,
    `login() { curl_cfg "$1"; [ "$(call "$api/users/current")" = 200 ]; }`,
    `if [ -f "$state" ] && [ "$(cat "$state")" = "$new" ]; then`,
    `  casd_log "admin password already applied"`,
    "else",
    "  old=$new",
    '  if [ -f "$state" ]; then old=$(cat "$state"); fi',
    '  if [ "$old" != "$new" ] && login "$old"; then',
    `    uid=$(grep -o '"user_id":[0-9]*' "$work/body" | head -n 1 | cut -d: -f2)`,
    '    [ -n "$uid" ] || casd_fail "could not read the admin user id from $api/users/current"',
    `    printf '{"old_password":%s,"new_password":%s}' "$(json_str "$old")" "$(json_str "$new")" > "$work/req.json"`,
    `    code=$(call -X PUT -H 'Content-Type: application/json' --data-binary @"$work/req.json" "$api/users/$uid/password")`,
    `    [ "$code" = 200 ] || casd_fail "Harbor refused the admin password change (HTTP $code): $(head -c 300 "$work/body")"`,
    '    casd_log "admin password rotated through the API"',
    "  fi",
    '  login "$new" || casd_fail "Harbor rejects the configured admin password and the recorded one did not work either: reset it as docs/harbor-compose.md (Admin password) says"',
    '  printf \'%s\' "$new" | casd_file "$state" 600 root root',
    "  casd_mark",
    "fi",
  ].join("\n");
  return renderStepScript({ step: "harbor-admin-password", body });
}
