/**
 * The host room's pure renderers and its config wiring, with exact expected
 * text. Behaviour on a real host is the lab's (test/lab/host.test.ts).
 */
import * as pulumi from "@pulumi/pulumi";
import * as s from "../../infra/host/scripts";
import { registryHostArgs } from "../../infra/host";
import { parseStackConfig } from "../../infra/config";
import { devStack } from "../support/stack";

describe("names and paths", () => {
  test.each([
    [
      "/etc/casd-registry/tls",
      {
        certPath: "/etc/casd-registry/tls/fullchain.crt",
        keyPath: "/etc/casd-registry/tls/server.key",
        caPath: "/etc/casd-registry/tls/ca.crt",
      },
    ],
    [
      "/srv/tls",
      {
        certPath: "/srv/tls/fullchain.crt",
        keyPath: "/srv/tls/server.key",
        caPath: "/srv/tls/ca.crt",
      },
    ],
  ])("tlsPaths(%s)", (dir, expected) => {
    expect(s.tlsPaths(dir)).toEqual(expected);
  });
  test("marker and trust anchor name carry the hostname", () => {
    expect(s.etcHostsMarker("reg.casd.local")).toBe("# casd-registry:reg.casd.local");
    expect(s.trustAnchorName("reg.casd.local")).toBe("casd-registry-reg.casd.local.crt");
  });
});

describe("dirs", () => {
  const a = { journal: "h-dirs", dataDir: "/data", certDir: "/etc/c/tls", installDir: "/opt/c" };
  test("create journals each directory, 0755 root:root", () => {
    expect(s.dirsBody(a)).toBe(
      [
        "casd_undo_begin 'h-dirs'",
        "casd_tdir '/data' 755 root root",
        "casd_tdir '/etc/c/tls' 755 root root",
        "casd_tdir '/opt/c' 755 root root",
      ].join("\n"),
    );
  });
  test("delete replays the journal, keeping the data directory, and says so", () => {
    expect(s.dirsDeleteBody(a)).toBe(
      [
        "casd_undo_run 'h-dirs' '/data'",
        "if [ -d '/data' ]; then casd_log 'kept /data: registry data is never deleted by destroy'; fi",
      ].join("\n"),
    );
  });
});

describe("tls", () => {
  test("key from stdin first, then the public files embedded, all journaled", () => {
    expect(
      s.tlsBody({ journal: "h-tls", certDir: "/etc/c/tls", fullChainPem: "F\n", caCertPem: "C\n" }),
    ).toBe(
      [
        "casd_undo_begin 'h-tls'",
        "[ -d '/etc/c/tls' ] || casd_fail '/etc/c/tls does not exist: the dirs step must run first'",
        "casd_tfile '/etc/c/tls/server.key' 400 root root",
        "printf '%s' 'Rgo=' | base64 -d | casd_tfile '/etc/c/tls/fullchain.crt' 444 root root",
        "printf '%s' 'Qwo=' | base64 -d | casd_tfile '/etc/c/tls/ca.crt' 444 root root",
      ].join("\n"),
    );
  });
  test("delete", () => {
    expect(s.tlsDeleteBody({ journal: "h-tls" })).toBe("casd_undo_run 'h-tls'");
  });
  test("the full script has one result line and reads nothing but stdin for the key", () => {
    const script = s.renderTlsScript({
      journal: "h-tls",
      certDir: "/etc/c/tls",
      fullChainPem: "F\n",
      caCertPem: "C\n",
    });
    expect(script.split("\n").filter((l) => l.includes("echo 'casd: tls:"))).toEqual([
      `if [ "$CASD_CHANGED" = 1 ]; then echo 'casd: tls: changed'; else echo 'casd: tls: unchanged'; fi`,
    ]);
  });
});

describe("ready", () => {
  test.each([
    [true, ["if ! sudo -n true 2>/dev/null; then", 'casd_log "sudo -n works for $(id -un)"']],
    [false, ['if [ "$(id -u)" != 0 ]; then']],
  ])("sudo=%s: bounded poll then the privilege check", (sudo, lines) => {
    const body = s.readyBody({ sudo, attempts: 3, intervalSeconds: 5 }).split("\n");
    expect(body.slice(0, 3)).toEqual(["waiting=''", "ok=0", "for attempt in $(seq 1 3); do"]);
    expect(body).toContain("  sleep 5");
    expect(body).toContain(
      '  casd_fail "the host was not ready after 3 attempts (15 s): $waiting. Fix: check the host\'s boot (journalctl -b), or raise readyTimeoutSeconds"',
    );
    for (const l of lines) expect(body).toContain(l);
  });
});

describe("etc-hosts", () => {
  test("the line written and the exact marker removed on delete", () => {
    const c = s.etcHostsBody({ hostname: "reg.x.lan", address: "10.0.0.1" }).split("\n");
    expect(c).toContain(
      `  printf '%s\\n' '10.0.0.1 reg.x.lan # casd-registry:reg.x.lan' >> "$new"`,
    );
    expect(c).toContain(
      `awk -v m='# casd-registry:reg.x.lan' 'substr($0, length($0) - length(m) + 1) != m' /etc/hosts > "$new"`,
    );
    expect(c).toContain("  *mdns*) ;;");
    const d = s.etcHostsDeleteBody({ hostname: "reg.x.lan", address: "10.0.0.1" }).split("\n");
    expect(d.slice(-5)).toEqual([
      "if [ ! -f /etc/hosts ]; then casd_log '/etc/hosts is gone: nothing to undo'; else",
      "  new=$(mktemp /etc/.casd.hosts.XXXXXX)",
      `  awk -v m='# casd-registry:reg.x.lan' 'substr($0, length($0) - length(m) + 1) != m' /etc/hosts > "$new"`,
      '  hosts_install "$new"',
      "fi",
    ]);
  });
  test("a .local name warns about mDNS", () => {
    expect(
      s.etcHostsBody({ hostname: "reg.casd.local", address: "10.0.0.1" }).split("\n"),
    ).toContain(
      "  *mdns*) casd_warn 'nsswitch sends .local names to mDNS: reg.casd.local resolves from /etc/hosts (files) only, DNS is never asked' ;;",
    );
  });
});

describe("preflight", () => {
  const base: s.PreflightScriptArgs = {
    hostname: "reg.casd.local",
    address: "10.50.6.62",
    dataDir: "/data",
    minFreeGiB: 40,
    ports: [80, 443],
    requireDocker: true,
    registryContainers: ["harbor", "casd"],
    architectures: ["x86_64", "aarch64"],
    etcHosts: true,
    maxClockSkewSeconds: 120,
  };
  test("renders the configured limits into the checks", () => {
    const l = s.preflightBody(base).split("\n");
    expect(l).toContain("need_kib=$((40 * 1048576))");
    expect(l).toContain("ports='80 443'");
    expect(l).toContain("  'x86_64' | 'aarch64') ;;");
    expect(l).toContain('    if [ "$abs" -gt 120 ]; then');
    expect(l).toContain("read -r operator_epoch || true");
    expect(l.some((x) => x.includes("awk -v own='harbor casd'"))).toBe(true);
    expect(l.slice(-4)).toEqual([
      'if [ "$problems" -gt 0 ]; then',
      '  casd_fail "preflight found $problems problem(s) on $(uname -n); nothing was changed:$report"',
      "fi",
      'casd_log "preflight passed"',
    ]);
  });
  test("without docker, clock or etcHosts, those checks are absent and resolution only warns", () => {
    const body = s.preflightBody({
      ...base,
      requireDocker: false,
      maxClockSkewSeconds: undefined,
      etcHosts: false,
    });
    expect(body).not.toContain("docker version");
    expect(body).not.toContain("operator_epoch");
    expect(body).not.toContain("conflict=");
    expect(body).toContain(
      `  casd_warn "reg.casd.local does not resolve on the registry host. Fix: add it to DNS, or set registryHost.etcHosts true"`,
    );
  });
});

describe("registryHostArgs (the composition root's wiring)", () => {
  const pki = { caCertPem: "CA", fullChainPem: "CHAIN", serverKeyPem: "KEY" };
  function cfg(over: Record<string, unknown>) {
    const d = devStack();
    const values = { ...d.config, ...over };
    return parseStackConfig({
      values,
      secrets: d.secrets as never,
      encryptedKeys: new Set(Object.keys(d.secrets)),
    });
  }
  test("compose with the http redirect: ports 80 and 443, docker required, every host field passed", () => {
    const c = cfg({});
    const a = registryHostArgs(c, pki);
    expect({ ...a, privateKey: undefined }).toEqual({
      address: "10.50.6.62",
      port: 22,
      user: "root",
      hostKey: c.registryHost.hostKey,
      privateKey: undefined,
      bastion: undefined,
      bastionPrivateKey: undefined,
      dialErrorLimit: 10,
      perDialTimeout: 15,
      sudo: false,
      hostname: "reg.casd.local",
      dataDir: "/data",
      certDir: "/etc/casd-registry/tls",
      installDir: "/opt/casd-registry",
      minFreeGiB: 40,
      etcHosts: true,
      maxClockSkewSeconds: 120,
      requireDocker: true,
      ports: [80, 443],
      registryContainers: ["harbor"],
      caCertPem: "CA",
      fullChainPem: "CHAIN",
      serverKeyPem: "KEY",
    });
    expect(pulumi.Output.isInstance(a.privateKey)).toBe(true);
  });
  // The wiring reads only these fields, so they are varied on a parsed config directly.
  test.each([
    ["helm", {}, false, false, [], ["harbor"]],
    ["helm", {}, true, true, [5443], ["casd-mirror"]],
    ["distribution", {}, false, true, [5000], ["casd-registry"]],
    ["distribution", {}, true, true, [5000, 5443], ["casd-registry", "casd-mirror"]],
    ["compose", { http: "off" }, false, true, [443], ["harbor"]],
    ["compose", { http: "redirect", httpPort: 443 }, false, true, [443], ["harbor"]],
  ] as const)(
    "deploy %s %j, mirror %s: requireDocker %s, ports %j, own containers %j",
    (deploy, harbor, mirror, docker, ports, own) => {
      const c = cfg({});
      const distribution = {
        ...c.distribution,
        mirror: { ...c.distribution.mirror, enabled: mirror, port: 5443 },
      };
      const a = registryHostArgs(
        { ...c, deploy, harbor: { ...c.harbor, ...harbor }, distribution },
        pki,
      );
      expect(a.requireDocker).toBe(docker);
      expect(a.ports).toEqual(ports);
      expect(a.registryContainers).toEqual(own);
    },
  );
});
