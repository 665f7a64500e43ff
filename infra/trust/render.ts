/**
 * Pure renderers of the client trust: which files a node needs for each
 * runtime (paths, contents, modes), containerd's hosts.toml, k3s/RKE2's
 * registries.yaml, and the bash bodies that install, remove and verify them.
 *
 * Shared with the Helm room's node-trust DaemonSet: `trustFiles` gives the
 * exact files, `renderTrustInstallBody({ root: "/host" })` installs them
 * under a root prefix. Over SSH the root is `/`. The CA always arrives on
 * stdin (`trustStdin`), never in argv or in the script text.
 */
import { stringify as toToml } from "smol-toml";
import { stringify as toYaml } from "yaml";
import { isDnsName } from "../config-checks";
import type { Runtime } from "../config";
import { shQuote } from "../remote/script";

/** Mode of every file the trust writes: root-owned, read-only for all. */
export const TRUST_FILE_MODE = "0444";
/** Mode of every directory the trust creates. */
export const TRUST_DIR_MODE = "0755";
/** Where each node keeps the list of what the trust step wrote. */
export const TRUST_STATE_DIR = "/var/lib/casd-registry/trust";
/** containerd's hosts directory, which `config_path` must name. */
export const CONTAINERD_HOSTS_DIR = "/etc/containerd/certs.d";
/** The line that separates the current CA from the previous one on stdin. */
export const PREVIOUS_CA_SEPARATOR = "# casd-registry: previous CA";

export const OS_FAMILIES = ["debian", "rhel"] as const;
/** OS trust store layouts: Debian/Ubuntu (update-ca-certificates) and the RHEL family (update-ca-trust). */
export type OsFamily = (typeof OS_FAMILIES)[number];

/** What one node trusts, as plain values (validated by `validateTrustSpec`). */
export interface TrustSpec {
  /** The registry's DNS name (SAN of its certificate). */
  hostname: string;
  /** The registry's HTTPS port; 443 leaves the port out of directory names. */
  port: number;
  /** Runtimes to configure on the node. */
  runtimes: readonly Runtime[];
  /** Grant the push capability in containerd's hosts.toml. */
  push: boolean;
  /** Pin the hostname to this address in the node's /etc/hosts. */
  etcHostsAddress?: string;
  /** Restart a running containerd when config_path had to be set. */
  restartContainerd: boolean;
}

/** One file the trust puts on a node. */
export interface TrustFile {
  /** Path on the node (without any root prefix). */
  path: string;
  content: string;
  /** Octal mode, always `0444`. */
  mode: string;
  /** Which runtime the file serves. */
  runtime: Runtime;
}

/** `host` for port 443, `host:port` otherwise: the directory name every runtime looks up. */
export function registryAuthority(hostname: string, port: number): string {
  return port === 443 ? hostname : `${hostname}:${port}`;
}

/** The base name of the CA file in the OS store: no ':' (some tools split on it). */
export function osCaBaseName(hostname: string, port: number): string {
  return port === 443 ? `casd-registry-${hostname}` : `casd-registry-${hostname}-${port}`;
}

/** The OS store directory of a family. */
export function osAnchorDir(family: OsFamily): string {
  return family === "debian"
    ? "/usr/local/share/ca-certificates"
    : "/etc/pki/ca-trust/source/anchors";
}

/** The command that rebuilds the OS store of a family. */
export function osRefreshCommand(family: OsFamily): string[] {
  return family === "debian" ? ["update-ca-certificates"] : ["update-ca-trust", "extract"];
}

/** The node's record of what the trust step wrote for one registry. */
export function trustManifestPath(hostname: string, port: number): string {
  return `${TRUST_STATE_DIR}/${registryAuthority(hostname, port)}.manifest`;
}

/** Per-runtime CA file (holds the current CA, then the previous one during an overlap). */
export function runtimeCaPath(runtime: Exclude<Runtime, "os">, authority: string): string {
  switch (runtime) {
    case "docker":
      return `/etc/docker/certs.d/${authority}/ca.crt`;
    case "containerd":
      return `${CONTAINERD_HOSTS_DIR}/${authority}/ca.crt`;
    case "podman":
      return `/etc/containers/certs.d/${authority}/ca.crt`;
    case "k3s":
    case "rke2":
      return `/etc/rancher/${runtime}/certs.d/${authority}/ca.crt`;
  }
}

/** k3s/RKE2 registries.yaml path. */
export function registriesYamlPath(runtime: "k3s" | "rke2"): string {
  return `/etc/rancher/${runtime}/registries.yaml`;
}

/** containerd hosts.toml: the registry as server and one host with pull+resolve (+push) and the CA. */
export function renderHostsToml(args: {
  authority: string;
  caPath: string;
  push: boolean;
}): string {
  const url = `https://${args.authority}`;
  const capabilities = args.push ? ["pull", "resolve", "push"] : ["pull", "resolve"];
  return toToml({ server: url, host: { [url]: { capabilities, ca: args.caPath } } });
}

/** k3s/RKE2 registries.yaml: TLS of the registry verified with the CA file. */
export function renderRegistriesYaml(args: { authority: string; caPath: string }): string {
  return toYaml({ configs: { [args.authority]: { tls: { ca_file: args.caPath } } } });
}

/** containerd config versions and the table that holds the CRI registry's config_path. */
export type ContainerdConfigVersion = 1 | 2 | 3;

/** The plugin id of CRI's registry settings per config version. */
export function containerdRegistryPlugin(version: ContainerdConfigVersion): string {
  return version === 1
    ? "cri"
    : version === 2
      ? "io.containerd.grpc.v1.cri"
      : "io.containerd.cri.v1.images";
}

/** The TOML table that sets config_path (header line and key), for appending to config.toml. */
export function renderContainerdConfigPath(
  version: ContainerdConfigVersion,
  withVersion = false,
): string {
  const table = {
    plugins: {
      [containerdRegistryPlugin(version)]: { registry: { config_path: CONTAINERD_HOSTS_DIR } },
    },
  };
  return toToml(withVersion ? { version, ...table } : table);
}

/** The one key line inserted under an existing registry table. */
export function renderConfigPathLine(): string {
  return toToml({ config_path: CONTAINERD_HOSTS_DIR }).trimEnd();
}

/** Normalizes a PEM text: LF line ends, trimmed, one final newline. */
export function normalizePem(pem: string): string {
  return `${pem.replace(/\r\n?/g, "\n").trim()}\n`;
}

/** What the install script reads on stdin: the current CA (PEM, may be a chain), then optionally the previous CA after a separator line. */
export function trustStdin(caCertPem: string, previousCaCertPem?: string): string {
  const current = normalizePem(caCertPem);
  return previousCaCertPem
    ? `${current}${PREVIOUS_CA_SEPARATOR}\n${normalizePem(previousCaCertPem)}`
    : current;
}

type Source =
  { kind: "bundle" } | { kind: "current" } | { kind: "previous" } | { kind: "text"; text: string };
interface PlannedFile {
  path: string;
  runtime: Runtime;
  source: Source;
  /** Part of the OS store (refresh after a change). */
  os: boolean;
}

/** The files of the spec in a fixed order; the OS store entries only for the given family. */
function plan(spec: TrustSpec, family: OsFamily | undefined, withPrevious: boolean): PlannedFile[] {
  const auth = registryAuthority(spec.hostname, spec.port);
  const out: PlannedFile[] = [];
  for (const r of spec.runtimes) {
    if (r === "os") {
      if (!family) continue;
      const base = `${osAnchorDir(family)}/${osCaBaseName(spec.hostname, spec.port)}`;
      out.push({ path: `${base}.crt`, runtime: r, source: { kind: "current" }, os: true });
      if (withPrevious)
        out.push({
          path: `${base}-previous.crt`,
          runtime: r,
          source: { kind: "previous" },
          os: true,
        });
      continue;
    }
    const ca = runtimeCaPath(r, auth);
    out.push({ path: ca, runtime: r, source: { kind: "bundle" }, os: false });
    if (r === "containerd") {
      const text = renderHostsToml({ authority: auth, caPath: ca, push: spec.push });
      out.push({
        path: `${CONTAINERD_HOSTS_DIR}/${auth}/hosts.toml`,
        runtime: r,
        source: { kind: "text", text },
        os: false,
      });
    }
    if (r === "k3s" || r === "rke2") {
      const text = renderRegistriesYaml({ authority: auth, caPath: ca });
      out.push({
        path: registriesYamlPath(r),
        runtime: r,
        source: { kind: "text", text },
        os: false,
      });
    }
  }
  return out;
}

/**
 * Every file the trust writes on a node, with its exact content. `osFamily`
 * decides the OS store layout (the SSH path detects it on the node).
 */
export function trustFiles(
  spec: TrustSpec,
  pems: { caCertPem: string; previousCaCertPem?: string; osFamily?: OsFamily },
): TrustFile[] {
  const current = normalizePem(pems.caCertPem);
  const previous = pems.previousCaCertPem ? normalizePem(pems.previousCaCertPem) : "";
  return plan(spec, pems.osFamily, previous !== "").map((f) => ({
    path: f.path,
    mode: TRUST_FILE_MODE,
    runtime: f.runtime,
    content:
      f.source.kind === "bundle"
        ? current + previous
        : f.source.kind === "current"
          ? current
          : f.source.kind === "previous"
            ? previous
            : f.source.text,
  }));
}

/** Problems of a spec, each naming the field, the value and the fix; empty when valid. */
export function validateTrustSpec(spec: TrustSpec): string[] {
  const errors: string[] = [];
  if (!isDnsName(spec.hostname) || !spec.hostname.includes(".")) {
    errors.push(
      `hostname ${JSON.stringify(spec.hostname)} is not a fully qualified DNS name; use the registry's name, e.g. reg.casd.local`,
    );
  }
  if (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535) {
    errors.push(
      `port ${JSON.stringify(spec.port)} is not a TCP port; use 1 to 65535 (443 for the default)`,
    );
  }
  if (spec.runtimes.length === 0)
    errors.push(
      "runtimes is empty: the node would trust nothing; list docker, containerd, podman, os, k3s or rke2",
    );
  if (new Set(spec.runtimes).size !== spec.runtimes.length)
    errors.push(`runtimes ${JSON.stringify(spec.runtimes)} lists a runtime twice; list each once`);
  if (spec.etcHostsAddress !== undefined && !/^[0-9a-fA-F.:]+$/.test(spec.etcHostsAddress)) {
    errors.push(
      `etcHostsAddress ${JSON.stringify(spec.etcHostsAddress)} is not an IP address; set the registry's address or leave it unset`,
    );
  }
  return errors;
}

/** The config.toml the trust writes when a node running containerd 1.x has none (marker line first, then TOML). */
export function renderCreatedContainerdConfig(): string {
  return `${CONTAINERD_MARKER} (created)\n${renderContainerdConfigPath(2, true)}`;
}

/** The comment that marks every line the trust adds to containerd's config.toml. */
export const CONTAINERD_MARKER = "# casd-registry: config_path added";

/** The registry table header of each containerd config version, as compared after removing blanks and quotes. */
export function containerdTableKey(version: ContainerdConfigVersion): string {
  return renderContainerdConfigPath(version)
    .split("\n")[0]
    .replace(/[\s"']/g, "");
}

/** Bash helpers shared by the install and remove bodies (after the PRELUDE of remote/script.ts). */
const TRUST_LIB = String.raw`casd_note() { printf 'casd: note: %s\n' "$*"; }
casd_in_root() { if [ -z "$CASD_ROOT" ]; then "$@"; else chroot "$CASD_ROOT" "$@"; fi; }
# casd_os_refresh FAMILY [fresh]: rebuild the OS trust store; after a removal Debian needs --fresh
# (otherwise the links to the removed file stay in /etc/ssl/certs).
casd_os_refresh() {
  local fresh=''
  if [ "${"$"}{2:-}" = fresh ]; then fresh=--fresh; fi
  case "$1" in
    debian) casd_in_root update-ca-certificates $fresh >/dev/null 2>&1 || casd_fail "node $CASD_NODE: update-ca-certificates $fresh failed" ;;
    rhel) casd_in_root update-ca-trust extract >/dev/null 2>&1 || casd_fail "node $CASD_NODE: update-ca-trust extract failed" ;;
    *) casd_fail "node $CASD_NODE: unknown OS trust store family '$1'" ;;
  esac
  casd_note "OS trust store refreshed ($1)"
}
# casd_old KEY: values recorded under KEY in the previous manifest.
casd_old() { awk -v k="$1" '$1 == k { sub(/^[^ ]+ /, ""); print }' "$CASD_WORK/old"; }
# casd_is_under DIR FILE: true when a line of FILE is DIR or lies below it.
casd_is_under() { awk -v d="$1" '$0 == d || index($0, d "/") == 1 { f = 1 } END { exit !f }' "$2"; }
# casd_mkdirs DIR: create the missing ancestors of DIR (0755 root), recorded for removal.
casd_mkdirs() {
  local acc='' part
  local IFS=/
  for part in $1; do
    if [ -z "$part" ]; then continue; fi
    acc="$acc/$part"
    if [ -d "$CASD_ROOT$acc" ]; then continue; fi
    # Another step on the same node may create it at the same moment: only
    # the one whose mkdir succeeded records it for removal.
    if mkdir "$CASD_ROOT$acc" 2>/dev/null; then
      chmod 0755 "$CASD_ROOT$acc"; chown root:root "$CASD_ROOT$acc"
      printf '%s\n' "$acc" >> "$CASD_WORK/dirs"; casd_mark
    elif [ ! -d "$CASD_ROOT$acc" ]; then
      casd_fail "cannot create directory $acc"
    fi
  done
}
# casd_rmdirs < dirs: remove the listed directories that are empty, deepest first; prints those kept.
casd_rmdirs() {
  local d
  awk 'NF { print length($0), $0 }' | sort -rn | cut -d' ' -f2- | uniq | while IFS= read -r d; do
    if [ -n "$CASD_KEEP" ] && casd_is_under "$d" "$CASD_KEEP"; then printf '%s\n' "$d"; continue; fi
    if [ -d "$CASD_ROOT$d" ] && ! rmdir "$CASD_ROOT$d" 2>/dev/null; then printf '%s\n' "$d"; fi
  done
}
# casd_write_inplace FILE < content: rewrite keeping the inode (/etc/hosts may be a bind mount).
casd_write_inplace() {
  local tmp
  tmp=$(mktemp)
  cat > "$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 0; fi
  cat "$tmp" > "$1"; rm -f "$tmp"; casd_mark
}
casd_pin_line() { printf '%s %s %s\n' "$CASD_PIN_ADDR" "$CASD_HOST" "$CASD_PIN_TAG"; }
# casd_hosts_without FILE: the file without this registry's pin line.
casd_hosts_without() {
  awk -v s=" $CASD_HOST $CASD_PIN_TAG" '{ n = length($0) - length(s) } n >= 0 && substr($0, n + 1) == s { next } { print }' "$1"
}
# casd_hosts_conflict FILE: lines (not ours) that already map the hostname.
casd_hosts_conflict() {
  casd_hosts_without "$1" | awk -v h="$CASD_HOST" '{ sub(/#.*/, ""); for (i = 2; i <= NF; i++) if ($i == h) { print; break } }'
}
casd_containerd_bin() {
  local p
  for p in "$(command -v containerd || true)" "$CASD_ROOT/usr/bin/containerd" "$CASD_ROOT/usr/local/bin/containerd"; do
    if [ -n "$p" ] && [ -x "$p" ]; then printf '%s' "$p"; return 0; fi
  done
  return 1
}
casd_containerd_running() { grep -qsx containerd /proc/[0-9]*/comm; }
# casd_restart_containerd WHAT: restart a running containerd only when configured; otherwise say it is needed.
casd_restart_containerd() {
  if ! casd_containerd_running; then casd_note "containerd is not running: $1; it applies at containerd's next start"; return 0; fi
  if [ "$CASD_RESTART_CONTAINERD" = 1 ] && [ -z "$CASD_ROOT" ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl restart containerd || casd_fail "node $CASD_NODE: systemctl restart containerd failed"
    casd_note "containerd restarted: $1"
  else
    casd_note "containerd restart needed: $1"
  fi
}
# casd_ct_cfgpath < config dump: the config_path of CRI's registry table (quotes removed).
casd_ct_cfgpath() {
  awk -v q="'" '
    function norm(s) { gsub("[[:space:]\"" q "]", "", s); return s }
    /^[[:space:]]*\[/ { h = norm($0); s = (h == "[plugins.io.containerd.grpc.v1.cri.registry]" || h == "[plugins.io.containerd.cri.v1.images.registry]" || h == "[plugins.cri.registry]"); next }
    s && /^[[:space:]]*config_path[[:space:]]*=/ { v = $0; sub(/^[^=]*=/, "", v); print norm(v); exit }'
}
# casd_ct_undo MODE: remove what a trust step added to config.toml (MODE from the manifest).
casd_ct_undo() {
  local tmp
  if [ ! -f "$CASD_CT_CFG" ]; then return 0; fi
  if [ "$1" = created ]; then
    printf '%s' "$CASD_CT_CREATED_B64" | base64 -d > "$CASD_WORK/created.toml"
    if cmp -s "$CASD_WORK/created.toml" "$CASD_CT_CFG"; then
      rm -f "$CASD_CT_CFG"; casd_mark
      casd_restart_containerd "/etc/containerd/config.toml (written by casd-registry) was removed"
    else
      casd_note "/etc/containerd/config.toml was created by casd-registry but changed since: left in place"
    fi
    return 0
  fi
  tmp=$(mktemp "$(dirname "$CASD_CT_CFG")/.casd.XXXXXX")
  awk -v marker="$CASD_CT_MARKER" -v empty='config_path = ""' '
    { t = $0; sub(/^[[:space:]]+/, "", t) }
    skip > 0 { skip--; if (rep) { print ind empty; rep = 0 } next }
    index(t, marker) == 1 { match($0, /^[[:space:]]*/); ind = substr($0, 1, RLENGTH); rep = (t ~ /\(replaced\)$/); skip = (t ~ /\(appended\)$/) ? 2 : 1; next }
    { print }' "$CASD_CT_CFG" > "$tmp"
  if cmp -s "$tmp" "$CASD_CT_CFG"; then rm -f "$tmp"; return 0; fi
  chmod --reference="$CASD_CT_CFG" "$tmp"; chown --reference="$CASD_CT_CFG" "$tmp"
  mv -f "$tmp" "$CASD_CT_CFG"; casd_mark
  casd_restart_containerd "config_path was removed from /etc/containerd/config.toml"
}
`;

/** Install-only helpers: containerd's config_path, prepared in the checks and applied with the changes. */
const INSTALL_LIB = String.raw`# casd_ct_edit CFG OUT TABLEKEY TABLE_B64: writes the candidate config to OUT; prints how config_path was set.
casd_ct_edit() {
  local mode
  : > "$2"
  mode=$(awk -v q="'" -v target="$3" -v marker="$CASD_CT_MARKER" -v keyline="$CASD_CT_KEYLINE" -v out="$2" '
    function norm(s) { gsub("[[:space:]\"" q "]", "", s); return s }
    NR == FNR {
      if ($0 ~ /^[[:space:]]*\[/) { intab = (norm($0) == target); if (intab && !h) h = FNR }
      else if (intab && !c && $0 ~ /^[[:space:]]*config_path[[:space:]]*=/) c = FNR
      next
    }
    c && FNR == c { match($0, /^[[:space:]]*/); ind = substr($0, 1, RLENGTH); print ind marker " (replaced)" > out; print ind keyline > out; next }
    { print > out }
    !c && h && FNR == h { print marker " (inserted)" > out; print keyline > out }
    END { print (c ? "replaced" : h ? "inserted" : "appended") }' "$1" "$1")
  if [ "$mode" = appended ]; then
    { printf '%s (appended)\n' "$CASD_CT_MARKER"; printf '%s' "$4" | base64 -d; } >> "$2"
  fi
  printf '%s' "$mode"
}
# casd_ct_prepare: when CRI's config_path is empty, prepare and check a candidate config.toml (no change yet).
casd_ct_prepare() {
  local bin src dump cur ver check
  if ! bin=$(casd_containerd_bin); then
    casd_note "containerd is not installed: hosts.toml written, /etc/containerd/config.toml left alone"; return 0
  fi
  if [ -f "$CASD_CT_CFG" ] && grep -qF -- "$CASD_CT_MARKER" "$CASD_CT_CFG"; then return 0; fi
  if [ -f "$CASD_CT_CFG" ]; then src=$CASD_CT_CFG; else src="$CASD_WORK/empty.toml"; : > "$src"; fi
  dump=$("$bin" --config "$src" config dump 2>&1) || casd_fail "node $CASD_NODE: containerd cannot read $CASD_CT_CFG: $(printf '%s' "$dump" | tail -n 1); nothing was changed"
  cur=$(printf '%s\n' "$dump" | casd_ct_cfgpath)
  if [ -n "$cur" ]; then
    case ":$cur:" in
      *":$CASD_CT_HOSTS_DIR:"*) ;;
      *) casd_note "containerd config_path is $cur (not set by casd-registry, left alone): CRI does not read $CASD_CT_HOSTS_DIR; add it to config_path yourself" ;;
    esac
    return 0
  fi
  if printf '%s\n' "$dump" | grep -q 'registry\.mirrors\.'; then
    casd_note "containerd config.toml sets registry.mirrors, which containerd refuses together with config_path: config_path not set; move the mirrors to hosts.toml files"; return 0
  fi
  CASD_CT_CANDIDATE="$CASD_WORK/config.toml"
  if [ ! -f "$CASD_CT_CFG" ]; then
    printf '%s' "$CASD_CT_CREATED_B64" | base64 -d > "$CASD_CT_CANDIDATE"; CASD_CT_NEW_MODE=created
  else
    ver=$(awk '/^[[:space:]]*\[/ { exit } /^[[:space:]]*version[[:space:]]*=/ { gsub(/[^0-9]/, ""); print; exit }' "$CASD_CT_CFG")
    casd_ct_table "${"$"}{ver:-1}"
    CASD_CT_NEW_MODE=$(casd_ct_edit "$CASD_CT_CFG" "$CASD_CT_CANDIDATE" "$casd_ct_key" "$casd_ct_table_b64")
  fi
  check=$("$bin" --config "$CASD_CT_CANDIDATE" config dump 2>/dev/null | casd_ct_cfgpath || true)
  if [ "$check" != "$CASD_CT_HOSTS_DIR" ]; then
    casd_fail "node $CASD_NODE: could not set config_path in $CASD_CT_CFG (containerd reads '$check' from the edited copy); set config_path = \"$CASD_CT_HOSTS_DIR\" in CRI's registry table yourself; nothing was changed"
  fi
}
# casd_ct_apply: install the prepared candidate config.toml.
casd_ct_apply() {
  local tmp
  casd_mkdirs "$(dirname "${"$"}{CASD_CT_CFG#"$CASD_ROOT"}")"
  tmp=$(mktemp "$(dirname "$CASD_CT_CFG")/.casd.XXXXXX")
  cat "$CASD_CT_CANDIDATE" > "$tmp"
  if [ -f "$CASD_CT_CFG" ]; then chmod --reference="$CASD_CT_CFG" "$tmp"; chown --reference="$CASD_CT_CFG" "$tmp"; else chmod 0644 "$tmp"; chown root:root "$tmp"; fi
  mv -f "$tmp" "$CASD_CT_CFG"; casd_mark
  casd_restart_containerd "config_path = $CASD_CT_HOSTS_DIR was set in /etc/containerd/config.toml"
}
`;

export interface InstallBodyOptions {
  /** Root prefix the files are written under: `/` over SSH, e.g. `/host` in a DaemonSet. */
  root: string;
  /** Node name, for messages. */
  node: string;
  /**
   * Identifies this configuration of the node (name, spec, CA). The install
   * records it in the manifest; a remove body only removes files when the
   * manifest still records its own generation.
   */
  generation: string;
}

function header(spec: TrustSpec, o: InstallBodyOptions): string {
  const root = o.root.replace(/\/+$/, "");
  const auth = registryAuthority(spec.hostname, spec.port);
  const b64 = (t: string) => shQuote(Buffer.from(t, "utf8").toString("base64"));
  return [
    `CASD_ROOT=${shQuote(root)}`,
    `CASD_NODE=${shQuote(o.node)}`,
    `CASD_HOST=${shQuote(spec.hostname)}`,
    `CASD_AUTH=${shQuote(auth)}`,
    `CASD_GEN=${shQuote(o.generation)}`,
    `CASD_MANIFEST="$CASD_ROOT"${shQuote(trustManifestPath(spec.hostname, spec.port))}`,
    `CASD_RESTART_CONTAINERD=${spec.restartContainerd ? 1 : 0}`,
    `CASD_PIN_ADDR=${shQuote(spec.etcHostsAddress ?? "")}`,
    `CASD_PIN_TAG=${shQuote(`# casd-registry ${auth}`)}`,
    `CASD_CT_CFG="$CASD_ROOT/etc/containerd/config.toml"`,
    `CASD_CT_MARKER=${shQuote(CONTAINERD_MARKER)}`,
    `CASD_CT_CREATED_B64=${b64(renderCreatedContainerdConfig())}`,
    `CASD_KEEP=''`,
    `CASD_WORK=$(mktemp -d)`,
    `trap 'rm -rf "$CASD_WORK"' EXIT`,
    `: > "$CASD_WORK/old"`,
    `: > "$CASD_WORK/dirs"`,
  ].join("\n");
}

/** Variables and the version table only the install body uses. */
function installHeader(): string {
  const b64 = (t: string) => shQuote(Buffer.from(t, "utf8").toString("base64"));
  return [
    `CASD_CT_HOSTS_DIR=${shQuote(CONTAINERD_HOSTS_DIR)}`,
    `CASD_CT_KEYLINE=${shQuote(renderConfigPathLine())}`,
    `# casd_ct_table VERSION: the registry table of a containerd config version.`,
    `casd_ct_table() {`,
    `  case "$1" in`,
    ...([1, 2, 3] as const).map(
      (v) =>
        `    ${v}) casd_ct_key=${shQuote(containerdTableKey(v))}; casd_ct_table_b64=${b64(renderContainerdConfigPath(v))} ;;`,
    ),
    `    *) casd_fail "node $CASD_NODE: $CASD_CT_CFG has config version $1, which this stack does not know; nothing was changed" ;;`,
    `  esac`,
    `}`,
  ].join("\n");
}

function wantLine(f: PlannedFile, textVar: string): string {
  const src = f.source.kind === "text" ? textVar : `"$CASD_WORK/${f.source.kind}.pem"`;
  const line = `casd_want ${shQuote(f.path)} ${src} ${f.os ? "os" : "rt"}`;
  return f.source.kind === "previous"
    ? `if [ -s "$CASD_WORK/previous.pem" ]; then ${line}; fi`
    : line;
}

const READ_CA = String.raw`# --- 1. the CA from stdin: current, then the previous one after the separator line ---
cat > "$CASD_WORK/in"
awk -v cur="$CASD_WORK/current.pem" -v prev="$CASD_WORK/previous.pem" -v sep="$CASD_PREV_SEP" '$0 == sep { p = 1; next } { print > (p ? prev : cur) }' "$CASD_WORK/in"
touch "$CASD_WORK/current.pem" "$CASD_WORK/previous.pem"
cat "$CASD_WORK/current.pem" "$CASD_WORK/previous.pem" > "$CASD_WORK/bundle.pem"
for casd_part in current previous; do
  casd_pem="$CASD_WORK/$casd_part.pem"
  if [ "$casd_part" = previous ] && [ ! -s "$casd_pem" ]; then continue; fi
  grep -q -- '-----BEGIN CERTIFICATE-----' "$casd_pem" || casd_fail "node $CASD_NODE: the $casd_part CA on stdin is not a PEM certificate; nothing was changed"
  if command -v openssl >/dev/null 2>&1 && ! openssl x509 -noout -in "$casd_pem" 2>/dev/null; then
    casd_fail "node $CASD_NODE: the $casd_part CA on stdin does not parse as X.509; nothing was changed"
  fi
done
: > "$CASD_WORK/want"
# casd_want PATH SOURCE KIND: a file this generation wants (KIND os = part of the OS trust store).
casd_want() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$CASD_WORK/want"; }
`;

const CHECKS = String.raw`# --- 3. the previous generation's record, and checks that must pass before anything changes ---
if [ -f "$CASD_MANIFEST" ]; then cp "$CASD_MANIFEST" "$CASD_WORK/old"; fi
casd_wanted() { cut -f1 "$CASD_WORK/want" | grep -qxF -- "$1"; }
if [ -n "$CASD_PIN_ADDR" ]; then
  [ -f "$CASD_ROOT/etc/hosts" ] || casd_fail "node $CASD_NODE: $CASD_ROOT/etc/hosts does not exist; nothing was changed"
  casd_conflict=$(casd_hosts_conflict "$CASD_ROOT/etc/hosts" | head -n 1)
  if [ -n "$casd_conflict" ]; then
    casd_fail "node $CASD_NODE: /etc/hosts already maps $CASD_HOST ($casd_conflict); remove that line or unset etcHostsAddress; nothing was changed"
  fi
fi
`;

const CHANGES = String.raw`# --- 4. changes: drop what the previous generation wrote and this one does not want ---
CASD_OS_DIRTY=0
CASD_OS_FRESH=''
casd_old_family=$(casd_old os-family)
casd_old dir >> "$CASD_WORK/dirs"
while IFS=' ' read -r casd_kind casd_path; do
  case "$casd_kind" in file|osfile) ;; *) continue ;; esac
  if casd_wanted "$casd_path"; then continue; fi
  if [ -e "$CASD_ROOT$casd_path" ]; then
    rm -f "$CASD_ROOT$casd_path"; casd_mark
    if [ "$casd_kind" = osfile ]; then CASD_OS_DIRTY=1; CASD_OS_FRESH=fresh; fi
  fi
done < "$CASD_WORK/old"
# write the wanted files: root-owned, 0444, atomic, unchanged when equal
casd_mkdirs "$(dirname "${"$"}{CASD_MANIFEST#"$CASD_ROOT"}")"
while IFS=$'\t' read -r casd_path casd_src casd_kind; do
  casd_mkdirs "$(dirname "$casd_path")"
  casd_before=$CASD_CHANGED
  CASD_CHANGED=0
  casd_file "$CASD_ROOT$casd_path" 0444 root root < "$casd_src"
  if [ "$CASD_CHANGED" = 1 ] && [ "$casd_kind" = os ]; then CASD_OS_DIRTY=1; fi
  if [ "$casd_before" = 1 ]; then CASD_CHANGED=1; fi
done < "$CASD_WORK/want"
if [ "$CASD_OS_DIRTY" = 1 ]; then
  if [ -n "$CASD_OS_FAMILY" ]; then casd_os_refresh "$CASD_OS_FAMILY" "$CASD_OS_FRESH"; fi
  if [ -n "$casd_old_family" ] && [ "$casd_old_family" != "$CASD_OS_FAMILY" ]; then casd_os_refresh "$casd_old_family" fresh; fi
fi
# /etc/hosts: this generation's pin, or none
if [ -n "$CASD_PIN_ADDR" ]; then
  { casd_hosts_without "$CASD_ROOT/etc/hosts"; casd_pin_line; } > "$CASD_WORK/hosts"
  casd_write_inplace "$CASD_ROOT/etc/hosts" < "$CASD_WORK/hosts"
elif [ -n "$(casd_old hosts-pin)" ] && [ -f "$CASD_ROOT/etc/hosts" ]; then
  casd_hosts_without "$CASD_ROOT/etc/hosts" > "$CASD_WORK/hosts"
  casd_write_inplace "$CASD_ROOT/etc/hosts" < "$CASD_WORK/hosts"
fi
# containerd's config_path: set it when prepared, keep the one set before, or take it back when containerd left the runtimes
casd_ct_mode=$(casd_old containerd-config)
if [ -n "$CASD_CT_NEW_MODE" ]; then
  casd_ct_apply; casd_ct_mode=$CASD_CT_NEW_MODE
elif [ "$CASD_HAS_CONTAINERD" = 0 ] && [ -n "$casd_ct_mode" ]; then
  casd_ct_undo "$casd_ct_mode"; casd_ct_mode=''
fi
# directories that no longer hold a wanted file go, when empty
{ cut -f1 "$CASD_WORK/want"; printf '%s\n' "${"$"}{CASD_MANIFEST#"$CASD_ROOT"}"; } > "$CASD_WORK/keep"
CASD_KEEP="$CASD_WORK/keep"
casd_rmdirs < "$CASD_WORK/dirs" > "$CASD_WORK/keptdirs"
# --- 5. the record of this generation ---
{
  printf '# casd-registry trust of %s on node %s: written by the install step, read by its delete; do not edit\n' "$CASD_AUTH" "$CASD_NODE"
  printf 'generation %s\n' "$CASD_GEN"
  if [ -n "$CASD_OS_FAMILY" ]; then printf 'os-family %s\n' "$CASD_OS_FAMILY"; fi
  while IFS=$'\t' read -r casd_path casd_src casd_kind; do
    if [ "$casd_kind" = os ]; then printf 'osfile %s\n' "$casd_path"; else printf 'file %s\n' "$casd_path"; fi
  done < "$CASD_WORK/want"
  sort "$CASD_WORK/keptdirs" | sed 's/^/dir /'
  if [ -n "$CASD_PIN_ADDR" ]; then printf 'hosts-pin %s\n' "$CASD_PIN_ADDR"; fi
  if [ -n "$casd_ct_mode" ]; then printf 'containerd-config %s\n' "$casd_ct_mode"; fi
} > "$CASD_WORK/manifest"
casd_file "$CASD_MANIFEST" 0644 root root < "$CASD_WORK/manifest"
`;

/**
 * The install/rotate body. Reads the CA on stdin; checks everything first
 * (the CA, the OS family, /etc/hosts, k3s/RKE2 files, containerd's config);
 * then removes what the previous generation wrote and this one no longer
 * wants (the old CA files of a rotation), writes the files (0444 root),
 * refreshes the OS store when it changed, pins /etc/hosts, sets containerd's
 * config_path when absent, and records all of it in the node's manifest.
 * Files land under `root`; the contents name the node's own paths.
 */
export function renderTrustInstallBody(spec: TrustSpec, o: InstallBodyOptions): string {
  const auth = registryAuthority(spec.hostname, spec.port);
  const nonOs = plan(spec, undefined, true);
  const k3sLike = spec.runtimes.filter((r): r is "k3s" | "rke2" => r === "k3s" || r === "rke2");
  const hasContainerd = spec.runtimes.includes("containerd");
  const lines: string[] = [
    header(spec, o),
    `CASD_PREV_SEP=${shQuote(PREVIOUS_CA_SEPARATOR)}`,
    `CASD_HAS_CONTAINERD=${hasContainerd ? 1 : 0}`,
    `CASD_OS_FAMILY=''`,
    `CASD_CT_NEW_MODE=''`,
    `CASD_CT_CANDIDATE=''`,
    installHeader(),
    TRUST_LIB,
    INSTALL_LIB,
    READ_CA,
  ];

  lines.push("# --- 2. the files of this generation ---");
  nonOs.forEach((f, i) => {
    if (f.source.kind === "text")
      lines.push(
        `printf '%s' ${shQuote(Buffer.from(f.source.text, "utf8").toString("base64"))} | base64 -d > "$CASD_WORK/f${i}"`,
      );
    lines.push(wantLine(f, `"$CASD_WORK/f${i}"`));
  });
  if (spec.runtimes.includes("os")) {
    lines.push(
      `if [ -e "$CASD_ROOT/usr/sbin/update-ca-certificates" ] && [ -d "$CASD_ROOT/usr/local/share/ca-certificates" ]; then CASD_OS_FAMILY=debian`,
      `elif [ -e "$CASD_ROOT/usr/bin/update-ca-trust" ] && [ -d "$CASD_ROOT/etc/pki/ca-trust/source/anchors" ]; then CASD_OS_FAMILY=rhel`,
      `else casd_fail "node $CASD_NODE: runtime os needs update-ca-certificates (Debian/Ubuntu: package ca-certificates) or update-ca-trust (RHEL family); neither is installed; nothing was changed"; fi`,
      `case "$CASD_OS_FAMILY" in`,
      ...OS_FAMILIES.map(
        (fam) =>
          `  ${fam})\n${plan({ ...spec, runtimes: ["os"] }, fam, true)
            .map((f) => `    ${wantLine(f, "")}`)
            .join("\n")}\n    ;;`,
      ),
      `esac`,
    );
  }
  lines.push(CHECKS);
  for (const r of k3sLike) {
    const p = registriesYamlPath(r);
    lines.push(
      `if [ -e "$CASD_ROOT"${shQuote(p)} ] && ! casd_old file | grep -qxF -- ${shQuote(p)}; then`,
      `  casd_fail ${shQuote(`node ${o.node}: ${p} exists and was not written by casd-registry; add configs."${auth}".tls.ca_file: ${runtimeCaPath(r, auth)} to it yourself and remove ${r} from the node's runtimes; nothing was changed`)}`,
      `fi`,
    );
  }
  if (hasContainerd) lines.push(`casd_ct_prepare`);
  lines.push(CHANGES);
  return lines.join("\n");
}

const REMOVE = String.raw`if [ ! -f "$CASD_MANIFEST" ]; then
  casd_note "no trust recorded for $CASD_AUTH on node $CASD_NODE: nothing to remove"
elif [ "$(awk '$1 == "generation" { print $2 }' "$CASD_MANIFEST")" != "$CASD_GEN" ]; then
  casd_note "the trust of $CASD_AUTH on node $CASD_NODE belongs to another generation now: nothing removed"
else
  cp "$CASD_MANIFEST" "$CASD_WORK/old"
  CASD_OS_DIRTY=0
  while IFS=' ' read -r casd_kind casd_path; do
    case "$casd_kind" in
      file) casd_rm "$CASD_ROOT$casd_path" ;;
      osfile) if [ -e "$CASD_ROOT$casd_path" ]; then rm -f "$CASD_ROOT$casd_path"; casd_mark; CASD_OS_DIRTY=1; fi ;;
      hosts-pin)
        if [ -f "$CASD_ROOT/etc/hosts" ]; then
          casd_hosts_without "$CASD_ROOT/etc/hosts" > "$CASD_WORK/hosts"
          casd_write_inplace "$CASD_ROOT/etc/hosts" < "$CASD_WORK/hosts"
        fi ;;
      containerd-config) casd_ct_undo "$casd_path" ;;
      *) ;;
    esac
  done < "$CASD_WORK/old"
  if [ "$CASD_OS_DIRTY" = 1 ]; then casd_os_refresh "$(casd_old os-family)" fresh; fi
  casd_rm "$CASD_MANIFEST"
  casd_old dir | casd_rmdirs > /dev/null
fi
`;

/**
 * The remove body: only when the node's manifest still records this
 * generation (a newer owner's files are never touched), removes the recorded
 * files, the /etc/hosts pin, the config_path it added, the manifest, and the
 * directories it created (when empty); refreshes the OS store when one of
 * its files went away.
 */
export function renderTrustRemoveBody(spec: TrustSpec, o: InstallBodyOptions): string {
  return [header(spec, o), TRUST_LIB, REMOVE].join("\n");
}

const VERIFY = String.raw`CASD_EMPTY=$(mktemp -d)
trap 'rmdir "$CASD_EMPTY"' EXIT
# casd_verify FILE|os: TLS to the registry, for its hostname, with only that trust (os = the OS store).
casd_verify() {
  local trust=$1 out='' rc=0 try
  if [ "$trust" != os ] && [ ! -f "$trust" ]; then casd_fail "node $CASD_NODE: $trust is missing: the trust is not installed"; fi
  for try in 1 2 3; do
    rc=0
    if command -v curl >/dev/null 2>&1; then
      if [ "$trust" = os ]; then
        out=$(curl -sS -o /dev/null --max-time 20 "$CASD_URL" 2>&1) || rc=$?
      else
        out=$(curl -sS -o /dev/null --max-time 20 --capath "$CASD_EMPTY" --cacert "$trust" "$CASD_URL" 2>&1) || rc=$?
      fi
    elif command -v openssl >/dev/null 2>&1; then
      if [ "$trust" = os ]; then set --; else set -- -CAfile "$trust" -CApath "$CASD_EMPTY"; fi
      out=$(openssl s_client -connect "$CASD_HOST:$CASD_PORT" -servername "$CASD_HOST" -verify_hostname "$CASD_HOST" -verify_return_error "$@" < /dev/null 2>&1) || rc=$?
      out=$(printf '%s\n' "$out" | grep -iE 'verify error|errno|error' | head -n 1 || true)
    else
      casd_fail "node $CASD_NODE: neither curl nor openssl is installed: cannot verify the registry's certificate"
    fi
    case "$rc" in 6|7|28|35) if [ "$try" -lt 3 ]; then sleep 2; fi ;; *) break ;; esac
  done
  if [ "$rc" != 0 ]; then
    casd_fail "node $CASD_NODE: TLS verification of $CASD_URL with $trust failed (rc $rc): $(printf '%s' "$out" | head -n 1)"
  fi
  printf 'casd: verify %s: ok with %s\n' "$CASD_URL" "$trust"
}
`;

/**
 * The verification body: from the node, TLS to `https://<host[:port]>/v2/`
 * (the node resolves the name itself) must verify with each installed CA
 * file alone, and with the OS store when `os` is configured. curl, or
 * openssl when curl is missing. A failure names the node and the TLS error.
 */
export function renderTrustVerifyBody(spec: TrustSpec, o: { node: string }): string {
  const auth = registryAuthority(spec.hostname, spec.port);
  const checks = spec.runtimes.map((r) =>
    r === "os" ? "casd_verify os" : `casd_verify ${shQuote(runtimeCaPath(r, auth))}`,
  );
  return [
    `CASD_NODE=${shQuote(o.node)}`,
    `CASD_HOST=${shQuote(spec.hostname)}`,
    `CASD_PORT=${shQuote(String(spec.port))}`,
    `CASD_URL=${shQuote(`https://${auth}/v2/`)}`,
    VERIFY,
    ...checks,
  ].join("\n");
}
