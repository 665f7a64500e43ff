/**
 * Pure renderers of every script the registry host room ships: readiness,
 * preflight, directories, the /etc/hosts entry, the TLS material and the OS
 * trust store, each with its delete. Values enter the scripts only through
 * `shQuote`; the bash follows infra/remote/script.ts (prelude helpers, one
 * result line, check then change, undo journal).
 */
import { embedFile, renderStepScript, shQuote } from "../remote/script";

/** File names inside the certificate directory. */
export const CERT_FILES = { fullChain: "fullchain.crt", key: "server.key", ca: "ca.crt" } as const;

/** Owner and mode of the directories this room creates (all root:root 0755). */
export const DIR_MODE = "755";

/** Where the certificate, key and CA live on the host. */
export function tlsPaths(certDir: string): { certPath: string; keyPath: string; caPath: string } {
  return {
    certPath: `${certDir}/${CERT_FILES.fullChain}`,
    keyPath: `${certDir}/${CERT_FILES.key}`,
    caPath: `${certDir}/${CERT_FILES.ca}`,
  };
}

/** The marker that ends the stack's /etc/hosts line; delete removes exactly the lines ending with it. */
export function etcHostsMarker(hostname: string): string {
  return `# casd-registry:${hostname}`;
}

/** File name of the CA in the OS trust store (same name on Debian and RHEL). */
export function trustAnchorName(hostname: string): string {
  return `casd-registry-${hostname}.crt`;
}

// ---------------------------------------------------------------- readiness

export interface ReadyScriptArgs {
  /** Whether later steps run through `sudo -n` (checked here, once). */
  sudo: boolean;
  /** Polls before giving up. */
  attempts: number;
  /** Seconds between polls. */
  intervalSeconds: number;
}

/**
 * Runs as the login user (never through sudo): waits, bounded, until boot
 * and cloud-init are done, then checks that the later steps can get root.
 * Read-only; the very first SSH dial is retried by the connection's
 * dialErrorLimit, not here.
 */
export function readyBody(a: ReadyScriptArgs): string {
  const total = a.attempts * a.intervalSeconds;
  const root = a.sudo
    ? [
        "if ! sudo -n true 2>/dev/null; then",
        `  casd_fail "user $(id -un) cannot run sudo without a password, which every later step needs. Fix: allow it (a line '$(id -un) ALL=(ALL) NOPASSWD: ALL' in /etc/sudoers.d/casd-registry), or log in as root and set registryHost.sudo false"`,
        "fi",
        'casd_log "sudo -n works for $(id -un)"',
      ]
    : [
        'if [ "$(id -u)" != 0 ]; then',
        '  casd_fail "logged in as $(id -un), not root, and registryHost.sudo is false. Fix: set registryHost.sudo true (with passwordless sudo for this user) or log in as root"',
        "fi",
      ];
  return [
    "waiting=''",
    "ok=0",
    `for attempt in $(seq 1 ${a.attempts}); do`,
    "  waiting=''",
    "  if [ -e /run/nologin ]; then",
    "    waiting='the system is still booting (/run/nologin exists)'",
    "  elif [ -d /var/lib/cloud/instance ] && command -v cloud-init >/dev/null 2>&1 && [ ! -e /var/lib/cloud/instance/boot-finished ]; then",
    "    waiting='cloud-init has not finished (/var/lib/cloud/instance/boot-finished is missing)'",
    "  fi",
    '  if [ -z "$waiting" ]; then ok=1; break; fi',
    `  casd_log "not ready (attempt $attempt of ${a.attempts}): $waiting"`,
    `  sleep ${a.intervalSeconds}`,
    "done",
    'if [ "$ok" != 1 ]; then',
    `  casd_fail "the host was not ready after ${a.attempts} attempts (${total} s): $waiting. Fix: check the host's boot (journalctl -b), or raise readyTimeoutSeconds"`,
    "fi",
    'casd_log "ready after $attempt attempt(s): $(uname -n), kernel $(uname -r)"',
    ...root,
  ].join("\n");
}

export function renderReadyScript(a: ReadyScriptArgs): string {
  return renderStepScript({ step: "ready", body: readyBody(a) });
}

// ---------------------------------------------------------------- preflight

export interface PreflightScriptArgs {
  /** The registry's DNS name. */
  hostname: string;
  /** The address the name should resolve to on the host (the host's own). */
  address: string;
  /** Registry data directory; its volume needs `minFreeGiB` free. */
  dataDir: string;
  minFreeGiB: number;
  /** TCP ports the registry will listen on. */
  ports: number[];
  /** Docker engine and compose are required (compose and distribution paths). */
  requireDocker: boolean;
  /** Container names or compose projects that are the registry itself (may hold the ports). */
  registryContainers: string[];
  /** Accepted `uname -m` values. */
  architectures: string[];
  /** The stack will pin the name in /etc/hosts. */
  etcHosts: boolean;
  /**
   * Largest tolerated clock difference to the operator's machine, seconds;
   * the operator's epoch arrives on stdin. Undefined: no clock check (and the
   * script reads no stdin).
   */
  maxClockSkewSeconds?: number;
}

/** Supported systems, as printed in the preflight's fix text. */
export const SUPPORTED_OS =
  "Debian 11 or later, Ubuntu 20.04 or later, or RHEL 8 or later (or Rocky, AlmaLinux, CentOS Stream, Oracle Linux)";

/**
 * Read-only checks; prints each fact on stderr and fails once, listing
 * every problem with its fix. Changes nothing on the host.
 */
export function preflightBody(a: PreflightScriptArgs): string {
  const name = shQuote(a.hostname);
  const addr = shQuote(a.address);
  const data = shQuote(a.dataDir);
  const marker = shQuote(etcHostsMarker(a.hostname));
  const L: string[] = [
    "problems=0",
    "report=''",
    "casd_problem() {",
    "  problems=$((problems + 1))",
    '  report="$report',
    '  - $*"',
    "}",
    'os_field() { awk -F= -v k="$1" \'$1 == k { v = $2; gsub(/^"|"$/, "", v); print v }\' /etc/os-release 2>/dev/null || true; }',
    "",
    "# Operating system and version",
    "os_id=$(os_field ID)",
    "os_like=$(os_field ID_LIKE)",
    "os_ver=$(os_field VERSION_ID)",
    "os_major=$(printf '%s' \"$os_ver\" | cut -d. -f1)",
    'casd_log "os: $(os_field PRETTY_NAME) (ID=$os_id VERSION_ID=$os_ver ID_LIKE=$os_like)"',
    "os_family=''",
    "os_min=0",
    'case "$os_id" in',
    "  debian) os_family=debian; os_min=11 ;;",
    "  ubuntu) os_family=debian; os_min=20 ;;",
    "  rhel | centos | rocky | almalinux | ol) os_family=rhel; os_min=8 ;;",
    "  *) case \" $os_like \" in *' rhel '*) os_family=rhel; os_min=8 ;; esac ;;",
    "esac",
    'if [ -z "$os_family" ]; then',
    `  casd_problem "operating system '$os_id' ($os_like) is not supported. Fix: use ${SUPPORTED_OS}"`,
    "else",
    '  case "$os_major" in',
    `    '' | *[!0-9]*) casd_problem "cannot tell the version of $os_id (VERSION_ID='$os_ver'). Fix: use a released version: ${SUPPORTED_OS}" ;;`,
    `    *) if [ "$os_major" -lt "$os_min" ]; then casd_problem "$os_id $os_ver is too old (at least $os_min). Fix: upgrade the host to ${SUPPORTED_OS}"; fi ;;`,
    "  esac",
    "fi",
    "",
    "# Architecture",
    "arch=$(uname -m)",
    'casd_log "architecture: $arch"',
    'case "$arch" in',
    `  ${a.architectures.map(shQuote).join(" | ")}) ;;`,
    `  *) casd_problem "architecture $arch is not supported (supported: ${a.architectures.join(", ")}). Fix: use a ${a.architectures.join(" or ")} host: the offline images are built for those" ;;`,
    "esac",
    "",
    "# Free space on the data volume",
    `probe=${data}`,
    'while [ ! -e "$probe" ]; do probe=$(dirname "$probe"); done',
    "avail_kib=$(df -Pk \"$probe\" | awk 'NR == 2 { print $4 }')",
    "volume=$(df -Pk \"$probe\" | awk 'NR == 2 { print $6 }')",
    `need_kib=$((${a.minFreeGiB} * 1048576))`,
    `casd_log "data volume: ${a.dataDir} on $volume, $((avail_kib / 1048576)) GiB ($avail_kib KiB) free, ${a.minFreeGiB} GiB required"`,
    'if [ "$avail_kib" -lt "$need_kib" ]; then',
    `  if [ -d ${data} ] && [ -n "$(find ${data} -mindepth 1 -maxdepth 1 -print -quit)" ]; then`,
    `    casd_warn "only $((avail_kib / 1048576)) GiB free on $volume (${a.minFreeGiB} GiB required), but ${a.dataDir} already holds registry data: not blocking; plan more space"`,
    "  else",
    `    casd_problem "the data volume $volume (for ${a.dataDir}) has $((avail_kib / 1048576)) GiB ($avail_kib KiB) free, less than the ${a.minFreeGiB} GiB required. Fix: free space or mount a larger volume at ${a.dataDir}, or lower registryHost.minFreeGiB"`,
    "  fi",
    "fi",
    "",
    "# Ports",
    "port_holders() {",
    "  local hex inodes ino pids",
    "  hex=$(printf '%04X' \"$1\")",
    '  inodes=$(awk -v ph="$hex" \'FNR > 1 && $4 == "0A" { n = split($2, a, ":"); if (a[n] == ph) print $10 }\' /proc/net/tcp /proc/net/tcp6 2>/dev/null | sort -u)',
    "  for ino in $inodes; do",
    '    pids=$(find /proc/[0-9]*/fd -maxdepth 1 -lname "socket:\\[$ino\\]" 2>/dev/null | cut -d/ -f3 | sort -u)',
    '    if [ -z "$pids" ]; then printf \'%s \' "socket-$ino"; fi',
    '    for pid in $pids; do printf \'%s(%s) \' "$(cat "/proc/$pid/comm" 2>/dev/null || echo "?")" "$pid"; done',
    "  done",
    "}",
    "own_container() {",
    "  command -v docker >/dev/null 2>&1 || return 0",
    `  timeout 20 docker ps --filter "publish=$1" --format '{{.Names}} {{.Label "com.docker.compose.project"}}' 2>/dev/null | awk -v own=${shQuote(a.registryContainers.join(" "))} 'BEGIN { n = split(own, o, " ") } { for (i = 1; i <= n; i++) if ($1 == o[i] || $2 == o[i]) { print $1; exit } }' || true`,
    "}",
    `ports='${a.ports.join(" ")}'`,
    "for port in $ports; do",
    '  holders=$(port_holders "$port")',
    '  if [ -z "$holders" ]; then',
    '    casd_log "port $port: free"',
    "  else",
    '    own=$(own_container "$port")',
    '    if [ -n "$own" ]; then',
    '      casd_log "port $port: held by the registry itself (container $own)"',
    "    else",
    '      casd_problem "port $port is in use by $holders. Fix: stop or move that service (ss -ltnp shows it), or give the registry another port"',
    "    fi",
    "  fi",
    "done",
  ];
  if (a.requireDocker) {
    L.push(
      "",
      "# Docker engine and compose",
      "if command -v docker >/dev/null 2>&1; then",
      "  docker_client=$(timeout 20 docker version --format '{{.Client.Version}}' 2>/dev/null || true)",
      "  docker_engine=$(timeout 20 docker version --format '{{.Server.Version}}' 2>/dev/null || true)",
      '  if [ -n "$docker_engine" ]; then',
      '    casd_log "docker engine: $docker_engine (client $docker_client)"',
      "  else",
      '    casd_problem "the docker command is installed (client $docker_client) but the Docker engine does not answer. Fix: start it (systemctl enable --now docker) and check docker info"',
      "  fi",
      "else",
      '  casd_problem "the Docker engine is not installed (no docker command). Fix: install Docker (docker-ce or docker.io) from the offline bundle and start it"',
      "fi",
      "compose=$(timeout 20 docker compose version --short 2>/dev/null || true)",
      'if [ -n "$compose" ]; then',
      '  casd_log "docker compose plugin: $compose"',
      "elif command -v docker-compose >/dev/null 2>&1; then",
      "  compose=$(timeout 20 docker-compose version --short 2>/dev/null | sed 's/^v//' || true)",
      '  if casd_ver_ge "$compose" 1.18.0; then',
      '    casd_log "docker-compose (v1): $compose"',
      "  else",
      '    casd_problem "docker-compose $compose is older than 1.18.0. Fix: install the compose plugin (docker-compose-plugin) or docker-compose 1.18 or later"',
      "  fi",
      "else",
      '  casd_problem "Docker Compose is not installed (neither the docker compose plugin nor docker-compose). Fix: install docker-compose-plugin (or docker-compose 1.18 or later) from the offline bundle"',
      "fi",
    );
  }
  if (a.maxClockSkewSeconds !== undefined) {
    const max = a.maxClockSkewSeconds;
    L.push(
      "",
      "# Clock skew against the machine running pulumi up (its epoch arrives on stdin)",
      "operator_epoch=''",
      "read -r operator_epoch || true",
      "host_epoch=$(date -u +%s)",
      'case "$operator_epoch" in',
      "  '' | *[!0-9]*) casd_warn \"no reference time arrived on stdin: clock skew not checked\" ;;",
      "  *)",
      "    skew=$((host_epoch - operator_epoch))",
      "    abs=$skew",
      '    if [ "$abs" -lt 0 ]; then abs=$((-abs)); fi',
      '    casd_log "clock: host $(date -u +%Y-%m-%dT%H:%M:%SZ), $skew s against the machine running pulumi up (tolerated: ' +
        max +
        ' s)"',
      `    if [ "$abs" -gt ${max} ]; then`,
      '      if [ "$skew" -gt 0 ]; then dir=ahead; else dir=behind; fi',
      `      casd_problem "the host clock is $abs s $dir of the machine running pulumi up (at most ${max} s tolerated); TLS certificates would look not yet valid or expired. Fix: synchronize both clocks (chrony or systemd-timesyncd against the site's NTP server), or raise registryHost.maxClockSkewSeconds"`,
      "    fi ;;",
      "esac",
    );
  }
  L.push(
    "",
    "# How the registry name resolves",
    `resolved=$(getent hosts ${name} | awk '{ print $1 }' | sort -u | tr '\\n' ' ' || true)`,
    "shown=$resolved",
    "[ -n \"$shown\" ] || shown='nothing (no DNS or /etc/hosts entry yet)'",
    `casd_log "name: ${a.hostname} resolves to: $shown"`,
    "hosts_line=$(awk '$1 == \"hosts:\"' /etc/nsswitch.conf 2>/dev/null || true)",
    'casd_log "nsswitch: $hosts_line"',
  );
  if (a.hostname.endsWith(".local")) {
    L.push(
      'case "$hosts_line" in',
      "  *mdns*)",
      a.etcHosts
        ? `    casd_warn "nsswitch sends .local names to mDNS ($hosts_line): DNS is never asked for ${a.hostname}; the /etc/hosts entry this stack writes is what resolves it" ;;`
        : `    casd_warn "nsswitch sends .local names to mDNS ($hosts_line): DNS is never asked for ${a.hostname}. Fix: set registryHost.etcHosts true, or remove mdns from the hosts line of /etc/nsswitch.conf" ;;`,
      "esac",
    );
  }
  if (a.etcHosts) {
    L.push(
      `conflict=$(awk -v n=${name} -v a=${addr} -v m=${marker} 'substr($0, length($0) - length(m) + 1) != m { sub(/#.*/, ""); for (i = 2; i <= NF; i++) if ($i == n && $1 != a) { print "line " NR ": " $0; exit } }' /etc/hosts 2>/dev/null || true)`,
      'if [ -n "$conflict" ]; then',
      `  casd_problem "/etc/hosts already maps ${a.hostname} elsewhere ($conflict) and would win over this stack's entry. Fix: remove that line, or set registryHost.etcHosts false"`,
      "fi",
    );
  } else {
    L.push(
      'if [ -z "$resolved" ]; then',
      `  casd_warn "${a.hostname} does not resolve on the registry host. Fix: add it to DNS, or set registryHost.etcHosts true"`,
      `elif ! printf '%s' " $resolved" | grep -qF " ${a.address} "; then`,
      `  casd_warn "${a.hostname} resolves to $resolved on the registry host, not to ${a.address}"`,
      "fi",
    );
  }
  L.push(
    "",
    'if [ "$problems" -gt 0 ]; then',
    '  casd_fail "preflight found $problems problem(s) on $(uname -n); nothing was changed:$report"',
    "fi",
    'casd_log "preflight passed"',
  );
  return L.join("\n");
}

export function renderPreflightScript(a: PreflightScriptArgs): string {
  return renderStepScript({ step: "preflight", body: preflightBody(a) });
}

// ---------------------------------------------------------------- directories

export interface DirsScriptArgs {
  /** Undo journal id (unique per component and step). */
  journal: string;
  dataDir: string;
  certDir: string;
  installDir: string;
}

export function dirsBody(a: DirsScriptArgs): string {
  return [
    `casd_undo_begin ${shQuote(a.journal)}`,
    ...[a.dataDir, a.certDir, a.installDir].map(
      (d) => `casd_tdir ${shQuote(d)} ${DIR_MODE} root root`,
    ),
  ].join("\n");
}

/** Undoes the directories step; the data directory is never removed. */
export function dirsDeleteBody(a: DirsScriptArgs): string {
  return [
    `casd_undo_run ${shQuote(a.journal)} ${shQuote(a.dataDir)}`,
    `if [ -d ${shQuote(a.dataDir)} ]; then casd_log ${shQuote(`kept ${a.dataDir}: registry data is never deleted by destroy`)}; fi`,
  ].join("\n");
}

export function renderDirsScript(a: DirsScriptArgs): string {
  return renderStepScript({ step: "dirs", body: dirsBody(a) });
}

export function renderDirsDeleteScript(a: DirsScriptArgs): string {
  return renderStepScript({ step: "dirs (delete)", body: dirsDeleteBody(a) });
}

// ---------------------------------------------------------------- /etc/hosts

export interface EtcHostsScriptArgs {
  hostname: string;
  address: string;
}

/** Bash that rewrites /etc/hosts from $new (keeping its mode and owner); in place when it is a mount point. */
const HOSTS_INSTALL = [
  "hosts_install() {",
  "  local new=$1",
  '  if cmp -s "$new" /etc/hosts; then rm -f "$new"; return 0; fi',
  '  chmod --reference=/etc/hosts "$new"; chown --reference=/etc/hosts "$new"',
  '  if ! mv -f "$new" /etc/hosts 2>/dev/null; then',
  '    cat "$new" > /etc/hosts; rm -f "$new"',
  '    casd_log "/etc/hosts is a mount point: rewritten in place"',
  "  fi",
  "  if command -v restorecon >/dev/null 2>&1; then restorecon /etc/hosts 2>/dev/null || true; fi",
  "  casd_mark",
  "}",
  "for stale in /etc/.casd.hosts.??????; do",
  '  if [ -f "$stale" ]; then rm -f "$stale"; casd_mark; fi',
  "done",
].join("\n");

/** Strips the stack's marked lines from /etc/hosts into $new. */
function withoutMarked(marker: string): string {
  return `awk -v m=${shQuote(marker)} 'substr($0, length($0) - length(m) + 1) != m' /etc/hosts > "$new"`;
}

export function etcHostsBody(a: EtcHostsScriptArgs): string {
  const marker = etcHostsMarker(a.hostname);
  const line = `${a.address} ${a.hostname} ${marker}`;
  return [
    HOSTS_INSTALL,
    "[ -f /etc/hosts ] || casd_fail '/etc/hosts does not exist. Fix: restore it (it should at least map localhost)'",
    `conflict=$(awk -v n=${shQuote(a.hostname)} -v a=${shQuote(a.address)} -v m=${shQuote(marker)} 'substr($0, length($0) - length(m) + 1) != m { sub(/#.*/, ""); for (i = 2; i <= NF; i++) if ($i == n && $1 != a) { print "line " NR ": " $0; exit } }' /etc/hosts)`,
    `[ -z "$conflict" ] || casd_fail "/etc/hosts already maps ${a.hostname} elsewhere ($conflict). Fix: remove that line, or set registryHost.etcHosts false"`,
    `own=$(awk -v n=${shQuote(a.hostname)} -v a=${shQuote(a.address)} -v m=${shQuote(marker)} 'substr($0, length($0) - length(m) + 1) != m { sub(/#.*/, ""); for (i = 2; i <= NF; i++) if ($i == n && $1 == a) { print NR; exit } }' /etc/hosts)`,
    "new=$(mktemp /etc/.casd.hosts.XXXXXX)",
    withoutMarked(marker),
    'if [ -n "$own" ]; then',
    `  casd_log ${shQuote(`/etc/hosts already maps ${a.hostname} to ${a.address} (line `)}"$own"'): no entry added'`,
    "else",
    `  printf '%s\\n' ${shQuote(line)} >> "$new"`,
    "fi",
    'hosts_install "$new"',
    'case "$(awk \'$1 == "hosts:"\' /etc/nsswitch.conf 2>/dev/null || true)" in',
    a.hostname.endsWith(".local")
      ? `  *mdns*) casd_warn ${shQuote(`nsswitch sends .local names to mDNS: ${a.hostname} resolves from /etc/hosts (files) only, DNS is never asked`)} ;;`
      : "  *mdns*) ;;",
    "esac",
  ].join("\n");
}

export function etcHostsDeleteBody(a: EtcHostsScriptArgs): string {
  return [
    HOSTS_INSTALL,
    "if [ ! -f /etc/hosts ]; then casd_log '/etc/hosts is gone: nothing to undo'; else",
    "  new=$(mktemp /etc/.casd.hosts.XXXXXX)",
    `  ${withoutMarked(etcHostsMarker(a.hostname))}`,
    '  hosts_install "$new"',
    "fi",
  ].join("\n");
}

export function renderEtcHostsScript(a: EtcHostsScriptArgs): string {
  return renderStepScript({ step: "etc-hosts", body: etcHostsBody(a) });
}

export function renderEtcHostsDeleteScript(a: EtcHostsScriptArgs): string {
  return renderStepScript({ step: "etc-hosts (delete)", body: etcHostsDeleteBody(a) });
}

// ---------------------------------------------------------------- TLS material

export interface TlsScriptArgs {
  journal: string;
  certDir: string;
  /** Server certificate then chain (public). */
  fullChainPem: string;
  /** The CA certificate (public). */
  caCertPem: string;
}

/** The key arrives on stdin (never argv); the public files are embedded. */
export function tlsBody(a: TlsScriptArgs): string {
  const p = tlsPaths(a.certDir);
  return [
    `casd_undo_begin ${shQuote(a.journal)}`,
    `[ -d ${shQuote(a.certDir)} ] || casd_fail ${shQuote(`${a.certDir} does not exist: the dirs step must run first`)}`,
    `casd_tfile ${shQuote(p.keyPath)} 400 root root`,
    embedFile(p.certPath, a.fullChainPem, "444", "root", "root", true),
    embedFile(p.caPath, a.caCertPem, "444", "root", "root", true),
  ].join("\n");
}

export function tlsDeleteBody(a: Pick<TlsScriptArgs, "journal">): string {
  return `casd_undo_run ${shQuote(a.journal)}`;
}

export function renderTlsScript(a: TlsScriptArgs): string {
  return renderStepScript({ step: "tls", body: tlsBody(a) });
}

export function renderTlsDeleteScript(a: Pick<TlsScriptArgs, "journal">): string {
  return renderStepScript({ step: "tls (delete)", body: tlsDeleteBody(a) });
}

// ---------------------------------------------------------------- OS trust store

export interface TrustScriptArgs {
  journal: string;
  hostname: string;
  caCertPem: string;
}

/** Detects the trust store: Debian family (update-ca-certificates) or RHEL family (update-ca-trust). */
function trustDetect(hostname: string, strict: boolean): string {
  const file = trustAnchorName(hostname);
  return [
    "family=''; anchor=''; bundle=''",
    "if command -v update-ca-certificates >/dev/null 2>&1 && [ -d /usr/local/share/ca-certificates ]; then",
    `  family=debian; anchor=${shQuote(`/usr/local/share/ca-certificates/${file}`)}; bundle=/etc/ssl/certs/ca-certificates.crt`,
    "elif command -v update-ca-trust >/dev/null 2>&1; then",
    `  family=rhel; anchor=${shQuote(`/etc/pki/ca-trust/source/anchors/${file}`)}; bundle=/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem`,
    "fi",
    strict
      ? "[ -n \"$family\" ] || casd_fail 'no OS trust store tool found (update-ca-certificates or update-ca-trust). Fix: install the ca-certificates package from the offline bundle'"
      : 'if [ -n "$family" ]; then casd_log "trust store: $family ($anchor, $bundle)"; else casd_log \'no OS trust store tool found: only the journal is replayed\'; fi',
    "# refresh_trust add|remove: rebuild the store (after a removal Debian needs --fresh to drop the anchor's links).",
    "refresh_trust() {",
    '  if [ "$family" = rhel ]; then update-ca-trust extract >&2',
    '  elif [ "$1" = remove ]; then update-ca-certificates --fresh >&2',
    "  else update-ca-certificates >&2; fi",
    "}",
    "# in_bundle BODY FILE: whether the PEM body (base64, newlines removed) is in FILE.",
    'in_bundle() { [ -f "$2" ] && awk -v b="$1" \'{ s = s $0 } END { exit index(s, b) == 0 }\' "$2"; }',
  ].join("\n");
}

/**
 * Installs the CA into the host's own trust store; refreshes the store when
 * the anchor changed or the bundle lacks it (a run killed between the two
 * converges on the next run).
 */
export function trustBody(a: TrustScriptArgs): string {
  const body = a.caCertPem
    .split(/\r?\n/)
    .filter((l) => l !== "" && !l.startsWith("-----"))
    .join("");
  return [
    trustDetect(a.hostname, true),
    `casd_undo_begin ${shQuote(a.journal)}`,
    `printf '%s' ${shQuote(Buffer.from(a.caCertPem, "utf8").toString("base64"))} | base64 -d | casd_tfile "$anchor" 644 root root`,
    `ca_body=${shQuote(body)}`,
    'if [ "$CASD_CHANGED" = 1 ] || ! in_bundle "$ca_body" "$bundle"; then',
    "  refresh_trust add",
    "  casd_mark",
    "fi",
    'in_bundle "$ca_body" "$bundle" || casd_fail "the CA is not in $bundle after the refresh. Fix: run update-ca-certificates (Debian) or update-ca-trust extract (RHEL) by hand and read its errors"',
    'casd_log "CA trusted by the OS store ($family): $anchor"',
  ].join("\n");
}

export function trustDeleteBody(a: Pick<TrustScriptArgs, "journal" | "hostname">): string {
  return [
    trustDetect(a.hostname, false),
    `casd_undo_run ${shQuote(a.journal)}`,
    'if [ "$CASD_CHANGED" = 1 ] && [ -n "$family" ]; then refresh_trust remove; fi',
  ].join("\n");
}

export function renderTrustScript(a: TrustScriptArgs): string {
  return renderStepScript({ step: "ca-trust", body: trustBody(a) });
}

export function renderTrustDeleteScript(a: Pick<TrustScriptArgs, "journal" | "hostname">): string {
  return renderStepScript({ step: "ca-trust (delete)", body: trustDeleteBody(a) });
}
