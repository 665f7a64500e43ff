/**
 * The registry host room on real lab hosts (network namespaces running sshd
 * over the cached Debian rootfs, Docker inside), driven by live mocks: every
 * `command:remote:Command` runs its real create script over SSH with the
 * pinned host key; `tls:*` are real X.509.
 *
 * The program: the stack config (the dev stack with the lab host's address,
 * host key and client key) parsed by infra/config.ts, the PKI room as
 * infra/index.ts wires it, and RegistryHost wired by `registryHostArgs`
 * (infra/index.ts does not compose the host room yet). Each run imports the
 * modules afresh under new live mocks, as a new `pulumi up` would; the TLS
 * resources keep their values across runs (as state would), so a re-run
 * sees the same certificates.
 *
 * Run: npx jest test/lab/host.test.ts --selectProjects lab --runInBand
 * Needs root on Linux and the packages of shared/LAB.md. Outside CI a
 * missing prerequisite skips this file with a message; with CI=true it fails.
 */
import type * as pulumiType from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  createLab,
  ensureRootfs,
  Lab,
  labPrerequisites,
  statefulTls,
  type LiveMocks,
  type Operation,
} from "./harness";
import { devStack, TEST_SECRETS } from "../support/stack";

jest.setTimeout(600_000);

const PREFIX = "casdho";
const HOSTNAME = "reg.casd.local";
const CERT_DIR = "/etc/casd-registry/tls";
const ANCHOR = `/usr/local/share/ca-certificates/casd-registry-${HOSTNAME}.crt`;
const BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
const STEPS = ["ready", "preflight", "dirs", "etc-hosts", "tls", "ca-trust"];
const NAME = "registry-host";

const missing = labPrerequisites();
const enabled = missing.length === 0 || process.env.CI === "true";
if (!enabled) console.warn(`test/lab/host.test.ts skipped (not in CI): ${missing.join("; ")}`);
const describeLab = enabled ? describe : describe.skip;

// ---------------------------------------------------------------- the program under live mocks

/** TLS "state" shared by every run: a re-run sees the same certificates. */
const TLS_STATE = statefulTls();

interface Run {
  mocks: LiveMocks;
  failures: string[];
  ms: number;
  pem?: { ca: string; fullChain: string; key: string };
}

/** Resolves an Output, or rejects with its registration error. */
function value<T>(o: pulumiType.Output<T>): Promise<T> {
  return (o as unknown as { promise(): Promise<T> }).promise();
}

/** One `pulumi up` of the lab program against `host`, with registryHost overrides. */
async function up(
  lab: Lab,
  hostName: string,
  overrides: Record<string, unknown> = {},
  hostKey?: string,
): Promise<Run> {
  const h = lab.host(hostName);
  const stack = devStack();
  const config: Record<string, unknown> = {
    ...stack.config,
    registryHost: {
      address: h.address,
      port: h.port,
      user: h.user,
      hostKey: hostKey ?? h.hostKey,
      dataDir: "/data",
      certDir: CERT_DIR,
      installDir: "/opt/casd-registry",
      minFreeGiB: 1,
      etcHosts: true,
      ...overrides,
    },
  };
  const secrets = { ...TEST_SECRETS, sshPrivateKey: lab.clientKey.privateKey };
  let result: Run | undefined;
  await jest.isolateModulesAsync(async () => {
    const pulumi: typeof pulumiType = await import("@pulumi/pulumi");
    const harness = await import("./harness");
    const all: Record<string, string> = {};
    for (const [k, v] of Object.entries(config))
      all[`casd-registry:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
    for (const [k, v] of Object.entries(secrets)) all[`casd-registry:${k}`] = v;
    pulumi.runtime.setAllConfig(
      all,
      Object.keys(secrets).map((k) => `casd-registry:${k}`),
    );
    const mocks = harness.createLiveMocks({ netns: lab.controlNs, tls: TLS_STATE });
    await pulumi.runtime.setMocks(mocks, "casd-registry", "lab", false);
    const started = Date.now();
    const { value: pem, failures } = await harness.captureRegistrationFailures(async () => {
      const { loadStackConfig } = await import("../../infra/config");
      const { RegistryPki, registryPkiArgs } = await import("../../infra/pki");
      const { RegistryHost, registryHostArgs } = await import("../../infra/host");
      const cfg = loadStackConfig();
      // The PKI room, wired as infra/index.ts wires it.
      const pki = new RegistryPki("registry", registryPkiArgs(cfg));
      const host = new RegistryHost(NAME, registryHostArgs(cfg, pki));
      await mocks.settled(300);
      try {
        await value(host.ready);
        return {
          ca: await value(pki.caCertPem),
          fullChain: await value(pki.fullChainPem),
          key: await value(pki.serverKeyPem),
        };
      } catch {
        return undefined;
      }
    });
    result = { mocks, failures, ms: Date.now() - started, pem };
  });
  return result!;
}

/** The result line each step printed on stdout. */
function results(r: Run): Record<string, string> {
  const out: Record<string, string> = {};
  for (const op of r.mocks.operations)
    if (op.op === "create") out[op.resource.slice(NAME.length + 1)] = op.stdout.trim();
  return out;
}

function opsOn(r: Run, lab: Lab, host: string): Operation[] {
  const h = lab.host(host);
  return r.mocks.operations.filter((o) => o.target === `${h.address}:${h.port}`);
}

// ---------------------------------------------------------------- host state

const ROOTS = ["/etc", "/opt", "/usr/local", "/data", "/var/lib/casd-registry-undo"];

/**
 * Every path under ROOTS as the host sees it: type, mode, owner, content
 * hash or link target; with `times`, also inode and mtime of files (so a
 * rewrite with equal content counts as a change).
 */
function snapshot(lab: Lab, host: string, times: boolean): Record<string, string> {
  const root = lab.host(host).rootDir;
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    const abs = path.join(root, rel);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(abs);
    } catch {
      return;
    }
    const own = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
    if (st.isSymbolicLink()) out[rel] = `link ${fs.readlinkSync(abs)}`;
    else if (st.isFile()) {
      const sum = createHash("sha256").update(fs.readFileSync(abs)).digest("hex");
      out[rel] = `file ${own} ${sum}${times ? ` ino=${st.ino} mtime=${st.mtimeMs}` : ""}`;
    } else if (st.isDirectory()) {
      out[rel] = `dir ${own}`;
      for (const e of fs.readdirSync(abs).sort()) walk(path.join(rel, e));
    } else out[rel] = `other ${own}`;
  };
  for (const r of ROOTS) walk(r);
  return out;
}

async function sh(lab: Lab, host: string, cmd: string): Promise<string> {
  const r = await lab.exec(host, cmd);
  if (r.code !== 0) throw new Error(`${cmd} on ${host}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

// ---------------------------------------------------------------- tests

describeLab("registry host room on lab hosts", () => {
  let lab: Lab;
  let baseline: Record<string, string>;
  let second: Run | undefined;
  const bench: Record<string, unknown> = {};

  beforeAll(async () => {
    if (missing.length > 0)
      throw new Error(
        `lab prerequisites missing (CI=true makes this a failure): ${missing.join("; ")}`,
      );
    const t = Date.now();
    const rootfs = await ensureRootfs({ log: (l) => console.log(l) });
    lab = await createLab({
      prefix: PREFIX,
      rootfs: rootfs.dir,
      hosts: [{ name: "reg", docker: true }, { name: "kill", docker: true }, { name: "bare" }],
    });
    await Promise.all([lab.startDocker("reg"), lab.startDocker("kill")]);
    // "bare" has no Docker at all.
    await sh(
      lab,
      "bare",
      "rm -f /usr/bin/docker /usr/bin/docker-compose /usr/sbin/dockerd && ! command -v docker",
    );
    bench.labUpMs = Date.now() - t;
    baseline = snapshot(lab, "reg", false);
  });

  afterAll(async () => {
    await lab?.destroy();
    console.log(`host room lab benchmark: ${JSON.stringify(bench, null, 1)}`);
  });

  test("a wrong host key is refused with a clear error, and nothing changes on the host", async () => {
    const before = snapshot(lab, "reg", true);
    const r = await up(lab, "reg", {}, lab.host("bare").hostKey);
    expect(r.failures.length).toBeGreaterThanOrEqual(1);
    expect(r.failures[0]).toContain(`${NAME}-ready`);
    expect(r.failures[0]).toContain("Host key verification failed");
    const ops = opsOn(r, lab, "reg");
    expect(ops.map((o) => `${o.resource} ${o.op} ${o.exitCode}`)).toEqual([
      `${NAME}-ready create 255`,
    ]);
    expect(snapshot(lab, "reg", true)).toEqual(before);
  });

  test("a data-volume threshold above the free space fails preflight clearly, before any change", async () => {
    const before = snapshot(lab, "reg", true);
    const r = await up(lab, "reg", { minFreeGiB: 1048576 });
    expect(r.failures.length).toBeGreaterThanOrEqual(1);
    const msg = r.failures[0];
    expect(msg).toContain(`${NAME}-preflight`);
    expect(msg).toContain("casd: error: preflight found 1 problem(s) on reg; nothing was changed:");
    expect(msg).toMatch(
      /- the data volume \/ \(for \/data\) has \d+ GiB \(\d+ KiB\) free, less than the 1048576 GiB required\. Fix: free space or mount a larger volume at \/data, or lower registryHost\.minFreeGiB/,
    );
    expect(opsOn(r, lab, "reg").map((o) => `${o.resource} ${o.exitCode}`)).toEqual([
      `${NAME}-ready 0`,
      `${NAME}-preflight 1`,
    ]);
    expect(snapshot(lab, "reg", true)).toEqual(before);
  });

  test("a host without Docker fails preflight naming what is missing", async () => {
    const before = snapshot(lab, "bare", true);
    const r = await up(lab, "bare");
    const msg = r.failures[0] ?? "";
    expect(msg).toContain(
      "casd: error: preflight found 2 problem(s) on bare; nothing was changed:",
    );
    expect(msg).toContain(
      "  - the Docker engine is not installed (no docker command). Fix: install Docker (docker-ce or docker.io) from the offline bundle and start it",
    );
    expect(msg).toContain(
      "  - Docker Compose is not installed (neither the docker compose plugin nor docker-compose). Fix: install docker-compose-plugin (or docker-compose 1.18 or later) from the offline bundle",
    );
    expect(opsOn(r, lab, "bare").map((o) => `${o.resource} ${o.exitCode}`)).toEqual([
      `${NAME}-ready 0`,
      `${NAME}-preflight 1`,
    ]);
    expect(snapshot(lab, "bare", true)).toEqual(before);
  });

  test("a port held by another service fails preflight naming the holder, before any change", async () => {
    const pid = (
      await sh(
        lab,
        "reg",
        "mkdir -p /tmp/www; setsid busybox httpd -f -p 443 -h /tmp/www >/dev/null 2>&1 < /dev/null & echo $!",
      )
    ).trim();
    try {
      await sh(
        lab,
        "reg",
        "for i in $(seq 50); do cat /proc/net/tcp /proc/net/tcp6 | grep -q ':01BB [0-9A-F:]* 0A ' && exit 0; sleep 0.1; done; ps -ef >&2; exit 1",
      );
      const before = snapshot(lab, "reg", true);
      const r = await up(lab, "reg");
      const msg = r.failures[0] ?? "";
      expect(msg).toContain(
        "casd: error: preflight found 1 problem(s) on reg; nothing was changed:",
      );
      expect(msg).toContain(
        `  - port 443 is in use by busybox(${pid}) . Fix: stop or move that service (ss -ltnp shows it), or give the registry another port`,
      );
      expect(msg).toContain("casd: port 80: free");
      expect(snapshot(lab, "reg", true)).toEqual(before);
    } finally {
      await lab.exec("reg", `kill ${pid}; rm -rf /tmp/www`);
    }
  });

  test("first run provisions the host: files, owners, modes, contents, /etc/hosts, OS trust", async () => {
    const r = await up(lab, "reg");
    expect(r.failures).toEqual([]);
    bench.firstRunMs = r.ms;
    bench.firstRunOpsPerHost = { reg: opsOn(r, lab, "reg").length };
    bench.firstRunStepMs = Object.fromEntries(
      opsOn(r, lab, "reg").map((o) => [o.resource, o.durationMs]),
    );
    expect(results(r)).toEqual({
      ready: "casd: ready: unchanged",
      preflight: "casd: preflight: unchanged",
      dirs: "casd: dirs: changed",
      "etc-hosts": "casd: etc-hosts: changed",
      tls: "casd: tls: changed",
      "ca-trust": "casd: ca-trust: changed",
    });
    const pre = r.mocks.operations.find((o) => o.resource === `${NAME}-preflight`)!;
    expect(pre.stderr).toMatch(
      /^casd: os: Debian GNU\/Linux 12 \(bookworm\) \(ID=debian VERSION_ID=12 ID_LIKE=\)$/m,
    );
    expect(pre.stderr).toMatch(
      /^casd: docker engine: \d+\.\d+\.\d+\S* \(client \d+\.\d+\.\d+\S*\)$/m,
    );
    expect(pre.stderr).toMatch(/^casd: docker-compose \(v1\): 1\.\d+\.\d+$/m);
    expect(pre.stderr).toMatch(
      /^casd: clock: host \S+Z, -?[0-9] s against the machine running pulumi up \(tolerated: 120 s\)$/m,
    );
    expect(pre.stderr).toContain("casd: port 80: free\ncasd: port 443: free\n");
    expect(pre.stderr).toContain("casd: preflight passed");

    // Owners and modes.
    expect(
      await sh(
        lab,
        "reg",
        `stat -c '%n %a %U:%G %F' /data ${CERT_DIR} /etc/casd-registry /opt/casd-registry ${CERT_DIR}/fullchain.crt ${CERT_DIR}/server.key ${CERT_DIR}/ca.crt ${ANCHOR} /var/lib/casd-registry-undo`,
      ),
    ).toBe(
      [
        "/data 755 root:root directory",
        `${CERT_DIR} 755 root:root directory`,
        "/etc/casd-registry 755 root:root directory",
        "/opt/casd-registry 755 root:root directory",
        `${CERT_DIR}/fullchain.crt 444 root:root regular file`,
        `${CERT_DIR}/server.key 400 root:root regular file`,
        `${CERT_DIR}/ca.crt 444 root:root regular file`,
        `${ANCHOR} 644 root:root regular file`,
        "/var/lib/casd-registry-undo 700 root:root directory",
        "",
      ].join("\n"),
    );
    // Contents are exactly the PKI room's outputs.
    const root = lab.host("reg").rootDir;
    const read = (p: string): string => fs.readFileSync(path.join(root, p), "utf8");
    expect(r.pem).toBeDefined();
    expect(read(`${CERT_DIR}/fullchain.crt`)).toBe(r.pem!.fullChain);
    expect(read(`${CERT_DIR}/server.key`)).toBe(r.pem!.key);
    expect(read(`${CERT_DIR}/ca.crt`)).toBe(r.pem!.ca);
    expect(read(ANCHOR)).toBe(r.pem!.ca);
    expect(fs.readdirSync(path.join(root, CERT_DIR)).sort()).toEqual([
      "ca.crt",
      "fullchain.crt",
      "server.key",
    ]);
    // /etc/hosts: exactly one marked line, and the name resolves on the host.
    const hostsLines = read("/etc/hosts")
      .split("\n")
      .filter((l) => l.includes(HOSTNAME));
    expect(hostsLines).toEqual([
      `${lab.host("reg").address} ${HOSTNAME} # casd-registry:${HOSTNAME}`,
    ]);
    expect((await sh(lab, "reg", `getent hosts ${HOSTNAME}`)).split(/\s+/)).toEqual([
      lab.host("reg").address,
      HOSTNAME,
      "",
    ]);
    // The OS store trusts the CA: the served chain verifies with the system bundle alone.
    expect(await sh(lab, "reg", `openssl verify -CAfile ${BUNDLE} ${CERT_DIR}/fullchain.crt`)).toBe(
      `${CERT_DIR}/fullchain.crt: OK\n`,
    );
    // The key never appears in any step's output, and only the tls step saw it (on stdin).
    for (const op of r.mocks.operations) {
      expect(op.stdout + op.stderr).not.toContain(r.pem!.key.split("\n")[1]);
    }
  });

  test("a second run reports unchanged for every step and changes no file", async () => {
    const before = snapshot(lab, "reg", true);
    const r = await up(lab, "reg");
    expect(r.failures).toEqual([]);
    second = r;
    bench.reRunMs = r.ms;
    bench.reRunOpsPerHost = { reg: opsOn(r, lab, "reg").length };
    expect(results(r)).toEqual(Object.fromEntries(STEPS.map((s) => [s, `casd: ${s}: unchanged`])));
    expect(snapshot(lab, "reg", true)).toEqual(before);
  });

  test("an SSH session killed mid-step, then a re-run, converges", async () => {
    // A one-shot hook on the "kill" host holds update-ca-certificates, so the
    // ca-trust step is caught after it wrote the anchor and before the store
    // was refreshed; the test then kills the step's processes and its sshd session.
    await sh(
      lab,
      "kill",
      [
        "cat > /usr/local/sbin/update-ca-certificates <<'EOF'",
        "#!/bin/sh",
        'if [ -e /run/casd-lab-hook.armed ]; then rm -f /run/casd-lab-hook.armed; echo "$$" > /run/casd-lab-hook.pid; exec sleep 600; fi',
        'exec /usr/sbin/update-ca-certificates "$@"',
        "EOF",
        "chmod 755 /usr/local/sbin/update-ca-certificates",
        "rm -f /run/casd-lab-hook.pid; touch /run/casd-lab-hook.armed",
      ].join("\n"),
    );
    const running = up(lab, "kill");
    let pid = "";
    for (let i = 0; i < 300 && !pid; i++) {
      pid = (
        await lab.exec("kill", "cat /run/casd-lab-hook.pid 2>/dev/null || true")
      ).stdout.trim();
      if (!pid) await new Promise((res) => setTimeout(res, 200));
    }
    expect(pid).toMatch(/^\d+$/);
    // The hook (now sleep), its parent (the step's bash), up to and including the sshd session.
    const killed = await sh(
      lab,
      "kill",
      [
        `p=${pid}; chain=$p`,
        "while :; do",
        "  p=$(awk '{ print $4 }' /proc/$p/stat)",
        '  [ "$p" -gt 1 ] || break',
        '  chain="$chain $p"',
        '  [ "$(cat /proc/$p/comm)" = sshd ] && break',
        "done",
        "for q in $chain; do printf '%s ' \"$(cat /proc/$q/comm)\"; done",
        "kill -9 $chain",
      ].join("\n"),
    );
    expect(killed).toBe("sleep bash sshd ");
    const r1 = await running;
    expect(r1.failures.length).toBeGreaterThanOrEqual(1);
    expect(r1.failures.join("\n")).toContain(`${NAME}-ca-trust`);
    // Mid-step state: the anchor is there, the store does not trust it yet.
    expect(await sh(lab, "kill", `test -f ${ANCHOR} && echo present`)).toBe("present\n");
    expect(
      (await lab.exec("kill", `openssl verify -CAfile ${BUNDLE} ${CERT_DIR}/fullchain.crt`)).code,
    ).not.toBe(0);

    const r2 = await up(lab, "kill");
    expect(r2.failures).toEqual([]);
    expect(results(r2)["ca-trust"]).toBe("casd: ca-trust: changed");
    expect(
      await sh(lab, "kill", `openssl verify -CAfile ${BUNDLE} ${CERT_DIR}/fullchain.crt`),
    ).toBe(`${CERT_DIR}/fullchain.crt: OK\n`);
    expect(
      await sh(lab, "kill", `find /etc /usr/local/share/ca-certificates -name '.casd.*' | wc -l`),
    ).toBe("0\n");
    const r3 = await up(lab, "kill");
    expect(r3.failures).toEqual([]);
    expect(results(r3)).toEqual(Object.fromEntries(STEPS.map((s) => [s, `casd: ${s}: unchanged`])));
  });

  test("the captured delete scripts return the host to its prior state (data aside)", async () => {
    expect(second).toBeDefined();
    const ops = await second!.mocks.deleteAll();
    bench.deleteOps = ops.length;
    expect(
      ops.map((o) => `${o.resource.slice(NAME.length + 1)}: ${o.stdout.trim()}`).sort(),
    ).toEqual(
      [
        "ca-trust: casd: ca-trust (delete): changed",
        "dirs: casd: dirs (delete): changed",
        "etc-hosts: casd: etc-hosts (delete): changed",
        "tls: casd: tls (delete): changed",
      ].sort(),
    );
    // tls is undone before the directories that hold it.
    const order = ops.map((o) => o.resource);
    expect(order.indexOf(`${NAME}-tls`)).toBeLessThan(order.indexOf(`${NAME}-dirs`));
    const dirs = ops.find((o) => o.resource === `${NAME}-dirs`)!;
    expect(dirs.stderr).toContain("casd: kept /data: registry data is never deleted by destroy");
    expect(snapshot(lab, "reg", false)).toEqual({ ...baseline, "/data": "dir 755 0:0" });
    expect(await sh(lab, "reg", `grep -c casd-registry /etc/hosts || true`)).toBe("0\n");
    // Deletes are tolerant: running them again on the cleaned host changes nothing and succeeds.
    const again = await second!.mocks.deleteAll();
    expect(again.map((o) => o.stdout.trim()).sort()).toEqual(
      ["ca-trust", "dirs", "etc-hosts", "tls"].map((s) => `casd: ${s} (delete): unchanged`).sort(),
    );
    expect(snapshot(lab, "reg", false)).toEqual({ ...baseline, "/data": "dir 755 0:0" });
  });
});
