/**
 * The lab harness's own test: real hosts (network namespaces, overlay rootfs,
 * sshd), the live mocks driving @pulumi/command resources over real SSH,
 * dockerd in a host, and a teardown that leaves nothing behind.
 *
 * Run: npx jest --selectProjects lab test/lab/harness.test.ts --runInBand
 * Needs root on Linux and the Debian packages of shared/LAB.md. Outside CI a
 * missing prerequisite skips this file with a message; with CI=true it fails.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import {
  captureRegistrationFailures,
  parseAptSources,
  cleanStale,
  createLab,
  createLiveMocks,
  ensureRootfs,
  isAlive,
  Lab,
  labPrerequisites,
  LiveMocks,
  mountPoints,
  netnsList,
  runSync,
  sshRun,
} from "./harness";

// The lab project's `testTimeout` in jest.config.js is not applied by jest 30 (only the global one is).
jest.setTimeout(600_000);

const PREFIX = "casdh";
const KILLED_PREFIX = "casdhk";
const missing = labPrerequisites();
const enabled = missing.length === 0 || process.env.CI === "true";
if (!enabled) console.warn(`test/lab/harness.test.ts skipped (not in CI): ${missing.join("; ")}`);
const describeLab = enabled ? describe : describe.skip;

/** Resolves an Output's value, or rejects with the registration error (the SDK's internal promise). */
function value<T>(o: pulumi.Output<T>): Promise<T> {
  return (o as unknown as { promise(): Promise<T> }).promise();
}

/** A PEM Output becomes an asset this way (an asset, not a resource: fine inside apply). */
const stringAsset = (text: string) => new pulumi.asset.StringAsset(text);

function linksWithPrefix(prefix: string): string[] {
  return runSync(["ip", "-o", "link", "show"])
    .stdout.split("\n")
    .filter((l) => l.includes(`${prefix}-`));
}

describeLab("lab harness", () => {
  let lab: Lab;
  let mocks: LiveMocks;
  const timings: Record<string, number> = {};

  /** Registers `body`'s resources under fresh live mocks. */
  async function program<T>(stack: string, body: () => T): Promise<T> {
    mocks = createLiveMocks({ netns: lab.controlNs });
    await pulumi.runtime.setMocks(mocks, "casd-registry", stack, false);
    return body();
  }

  /** A connection with the private key as a secret (it reaches the mocks wrapped, as in the program). */
  function connection(name: string) {
    const c = lab.connection(name);
    return { ...c, privateKey: pulumi.secret(c.privateKey) };
  }

  beforeAll(async () => {
    if (missing.length > 0)
      throw new Error(
        `lab prerequisites missing (CI=true makes this a failure): ${missing.join("; ")}`,
      );
    let t = Date.now();
    const rootfs = await ensureRootfs({ log: (l) => console.log(l) });
    timings.rootfsMs = Date.now() - t;
    timings.rootfsBuildSeconds = rootfs.buildSeconds;
    timings.rootfsMB = Math.round(rootfs.sizeBytes / 1e6);
    t = Date.now();
    lab = await createLab({
      prefix: PREFIX,
      rootfs: rootfs.dir,
      hosts: [{ name: "reg", docker: true, aliases: ["reg.casd.local"] }, { name: "cli" }],
    });
    timings.labUpMs = Date.now() - t;
  });

  afterAll(async () => {
    await lab?.destroy();
    console.log(`harness timings: ${JSON.stringify(timings)}`);
  });

  test("ssh with the pinned host key runs commands as root on the right host", async () => {
    const r = await lab.ssh("reg", "hostname; id -u");
    expect(r).toMatchObject({ code: 0, stdout: "reg\n0\n" });
    timings.sshRoundTripMs = r.ms;
    expect((await lab.ssh("cli", "hostname")).stdout).toBe("cli\n");
    expect(lab.host("reg")).toMatchObject({ address: "10.231.0.10", port: 22, user: "root" });
    expect(lab.host("reg").hostKey).toMatch(/^ssh-ed25519 AAAA[A-Za-z0-9+/]+=*$/);
    // Names resolve in the control namespace through /etc/netns/<ns>/hosts.
    const getent = await lab.run(["getent", "hosts", "reg.casd.local"]);
    expect(getent.stdout).toMatch(/^10\.231\.0\.10\s+reg reg\.casd\.local/);
  });

  test("a wrong pinned host key fails with 'Host key verification failed' (rc 255)", async () => {
    const wrong = { ...lab.connection("reg"), hostKey: lab.host("cli").hostKey };
    const r = await sshRun(wrong, "echo must-not-run", { netns: lab.controlNs });
    expect(r.code).toBe(255);
    expect(r.stderr).toContain("Host key verification failed");
    expect(r.stdout).toBe("");
  });

  test("exec enters a host without SSH; rootDir and upperDir show its files", async () => {
    const cli = lab.host("cli");
    const r = await lab.exec(
      cli,
      "echo from-exec > /root/marker; hostname; ps -o pid= -p 1; cat /proc/1/comm",
    );
    expect(r).toMatchObject({ code: 0, stdout: "cli\n      1\nsshd\n" });
    expect(fs.readFileSync(path.join(cli.rootDir, "root/marker"), "utf8")).toBe("from-exec\n");
    expect(fs.readFileSync(path.join(cli.upperDir, "root/marker"), "utf8")).toBe("from-exec\n");
    // Hosts see each other by name; nothing else is routable.
    expect((await lab.exec(cli, "getent hosts reg | cut -d' ' -f1")).stdout).toBe("10.231.0.10\n");
    expect((await lab.exec(cli, "ip route")).stdout).toBe(
      "10.231.0.0/24 dev eth0 proto kernel scope link src 10.231.0.11 \n",
    );
  });

  test("live mocks run a remote Command over SSH and return its real stdout", async () => {
    const cmd = await program("remote", () => {
      return new command.remote.Command("hello", {
        connection: connection("reg"),
        create:
          'echo "hello from $(hostname)"; cat; echo "FOO=${FOO:-unset}"; touch /root/hello-created',
        delete: "rm -f /root/hello-created",
        stdin: "piped in\n",
        environment: { FOO: "bar" },
      });
    });
    // One trailing newline trimmed (as the provider does); environment is not delivered (no AcceptEnv).
    expect(await value(cmd.stdout)).toBe("hello from reg\npiped in\nFOO=unset");
    expect(await value(cmd.stderr)).toBe("");
    expect(mocks.resources.map((r) => `${r.type} ${r.name}`)).toEqual([
      "command:remote:Command hello",
    ]);
    expect(mocks.operations).toHaveLength(1);
    expect(mocks.operations[0]).toMatchObject({
      resource: "hello",
      op: "create",
      target: "10.231.0.10:22",
      exitCode: 0,
      ok: true,
    });
    expect(mocks.operations[0].sha256).toMatch(/^[0-9a-f]{64}$/);
    // The connection stays secret in the outputs; the SDK saw it wrapped.
    expect(await pulumi.isSecret(cmd.connection)).toBe(true);
    const created = path.join(lab.host("reg").rootDir, "root/hello-created");
    expect(fs.existsSync(created)).toBe(true);
    const del = await mocks.runDelete("hello");
    expect(del).toMatchObject({ op: "delete", exitCode: 0 });
    expect(fs.existsSync(created)).toBe(false);
    expect(await mocks.runUpdate("hello")).toMatchObject({ op: "update", exitCode: 0 });
    expect(fs.existsSync(created)).toBe(true);
  });

  test("a failing script fails the registration with its exit code and stderr", async () => {
    const { failures } = await captureRegistrationFailures(async () => {
      const cmd = await program("failing", () => {
        return new command.remote.Command("doomed", {
          connection: connection("reg"),
          create: "echo partial; echo 'disk on fire' >&2; exit 3",
        });
      });
      await expect(value(cmd.stdout)).rejects.toThrow(
        /Process exited with status 3[\s\S]*disk on fire/,
      );
      await mocks.settled();
    });
    expect(failures).toEqual([
      expect.stringMatching(
        /^failed to register new resource doomed \[command:remote:Command\]: Process exited with status 3/,
      ),
    ]);
    expect(mocks.resources.map((r) => `${r.name} ${r.status}`)).toEqual(["doomed failed"]);
    expect(await mocks.deleteAll()).toEqual([]); // a failed create is not in state: no delete
    expect(mocks.operations).toEqual([
      expect.objectContaining({
        resource: "doomed",
        exitCode: 3,
        ok: false,
        stdout: "partial\n",
        stderr: "disk on fire\n",
      }),
    ]);
  });

  test("a connection without hostKey is refused before any SSH", async () => {
    const { failures } = await captureRegistrationFailures(async () => {
      await program("nohostkey", () => {
        const { host, port, user, privateKey } = connection("reg"); // no hostKey
        return new command.remote.Command("unpinned", {
          connection: { host, port, user, privateKey },
          create: "true",
        });
      });
      await mocks.settled();
    });
    expect(failures).toEqual([
      expect.stringMatching(/unpinned.*connection\.hostKey is not set: refusing/),
    ]);
    expect(mocks.operations).toHaveLength(0);
  });

  test("CopyToRemote copies a StringAsset, a FileAsset and a directory FileArchive over SFTP", async () => {
    const local = fs.mkdtempSync(path.join(os.tmpdir(), "casdh-copy-"));
    fs.writeFileSync(path.join(local, "payload.txt"), "file payload\n", { mode: 0o755 });
    fs.mkdirSync(path.join(local, "bundle/sub"), { recursive: true });
    fs.writeFileSync(path.join(local, "bundle/sub/inner.txt"), "inner\n");
    const check = await program("copy", () => {
      const conn = connection("cli");
      const copies = [
        new command.remote.CopyToRemote("ca", {
          connection: conn,
          source: new pulumi.asset.StringAsset("-----BEGIN CERTIFICATE-----\nx\n"),
          remotePath: "/etc/casd/new/dir/ca.crt",
        }),
        new command.remote.CopyToRemote("payload", {
          connection: conn,
          source: new pulumi.asset.FileAsset(path.join(local, "payload.txt")),
          remotePath: "/tmp",
        }),
        new command.remote.CopyToRemote("bundle", {
          connection: conn,
          source: new pulumi.asset.FileArchive(path.join(local, "bundle")),
          remotePath: "/opt/casd",
        }),
      ];
      return new command.remote.Command(
        "stat",
        {
          connection: conn,
          create:
            "stat -c '%a %n' /etc/casd/new/dir/ca.crt /tmp/payload.txt /opt/casd/bundle/sub/inner.txt",
        },
        { dependsOn: copies },
      );
    });
    // New files get 0644 whatever the local mode (the provider's sftp Create).
    expect(await value(check.stdout)).toBe(
      "644 /etc/casd/new/dir/ca.crt\n644 /tmp/payload.txt\n644 /opt/casd/bundle/sub/inner.txt",
    );
    const root = lab.host("cli").rootDir;
    expect(fs.readFileSync(path.join(root, "etc/casd/new/dir/ca.crt"), "utf8")).toBe(
      "-----BEGIN CERTIFICATE-----\nx\n",
    );
    expect(fs.readFileSync(path.join(root, "tmp/payload.txt"), "utf8")).toBe("file payload\n");
    expect(fs.readFileSync(path.join(root, "opt/casd/bundle/sub/inner.txt"), "utf8")).toBe(
      "inner\n",
    );
    expect(
      mocks.operations.map((o) => `${o.op} ${o.resource} ${o.remotePath ?? ""}`).sort(),
    ).toEqual([
      "copy bundle /opt/casd",
      "copy ca /etc/casd/new/dir/ca.crt",
      "copy payload /tmp",
      "create stat ",
    ]);
    fs.rmSync(local, { recursive: true });
  });

  test("tls resources become real X.509 that a host's openssl reads", async () => {
    const { key, check } = await program("tls", () => {
      const key = new tls.PrivateKey("ca-key", { algorithm: "ECDSA", ecdsaCurve: "P256" });
      const ca = new tls.SelfSignedCert("ca", {
        privateKeyPem: key.privateKeyPem,
        isCaCertificate: true,
        validityPeriodHours: 24,
        allowedUses: ["cert_signing"],
        subject: { commonName: "casd lab CA" },
      });
      const conn = connection("cli");
      const copy = new command.remote.CopyToRemote("ca-crt", {
        connection: conn,
        source: ca.certPem.apply(stringAsset),
        remotePath: "/root/ca.crt",
      });
      const check = new command.remote.Command(
        "ca-check",
        {
          connection: conn,
          create: "openssl x509 -in /root/ca.crt -noout -subject -ext basicConstraints",
        },
        { dependsOn: [copy] },
      );
      return { key, check };
    });
    expect(await value(check.stdout)).toBe(
      "subject=CN = casd lab CA\nX509v3 Basic Constraints: critical\n    CA:TRUE",
    );
    expect(await pulumi.isSecret(key.privateKeyPem)).toBe(true);
    expect(mocks.resources.map((r) => r.type)).toEqual([
      "tls:index/privateKey:PrivateKey",
      "tls:index/selfSignedCert:SelfSignedCert",
      "command:remote:CopyToRemote",
      "command:remote:Command",
    ]);
  });

  test("a proxy (bastion) connection pins both host keys", async () => {
    const viaCli = (bastionKey: string) => ({
      ...connection("reg"),
      proxy: { ...lab.connection("cli"), hostKey: bastionKey },
    });
    const { value: ok, failures } = await captureRegistrationFailures(async () => {
      const [good] = await program("proxy", () => [
        new command.remote.Command("via-bastion", {
          connection: viaCli(lab.host("cli").hostKey),
          create: "hostname",
        }),
        new command.remote.Command("via-wrong-bastion", {
          connection: viaCli(lab.host("reg").hostKey),
          create: "hostname",
        }),
      ]);
      await mocks.settled();
      return good;
    });
    expect(await value(ok.stdout)).toBe("reg");
    expect(failures).toEqual([
      expect.stringMatching(
        /via-wrong-bastion[\s\S]*status 255[\s\S]*Host key verification failed/,
      ),
    ]);
    expect(
      mocks.operations.find((o) => o.resource === "via-wrong-bastion")?.durationMs,
    ).toBeLessThan(5000); // not retried
  });

  test("a local Command runs in the control namespace with stdin and environment", async () => {
    const cmd = await program("local", () => {
      return new command.local.Command("operator", {
        create: "echo \"$GREETING\"; cat; ip -4 -o addr show dev casdh-br | awk '{print $4}'",
        stdin: "from stdin",
        environment: { GREETING: "hi" },
      });
    });
    expect(await value(cmd.stdout)).toBe("hi\nfrom stdin10.231.0.1/24");
    expect(mocks.operations[0]).toMatchObject({ target: "local", op: "create", ok: true });
  });

  test("dockerd starts in the docker host and docker info answers", async () => {
    const t = Date.now();
    await lab.startDocker("reg");
    timings.dockerReadyMs = Date.now() - t;
    const info = await lab.ssh("reg", "docker info --format '{{.Driver}} {{.CgroupVersion}}'");
    expect(info).toMatchObject({ code: 0, stdout: "vfs 2\n" });
    // An image from local parts runs (no registry needed).
    const runIt = await lab.ssh(
      "reg",
      "set -e; mkdir -p /tmp/bb/bin; cp /bin/busybox /tmp/bb/bin/; tar -C /tmp/bb -c . | docker import - lab/bb:1 >/dev/null; docker run --rm --network none lab/bb:1 /bin/busybox echo container-ok",
    );
    expect(runIt.stderr).toBe("");
    expect(runIt.stdout).toBe("container-ok\n");
    await lab.startDocker("reg"); // idempotent
  });

  test("forward relays a root-namespace TCP port to a host port", async () => {
    const fwd = await lab.forward("cli", 22);
    const banner = await new Promise<string>((resolve, reject) => {
      const c = net.connect(fwd.port, "127.0.0.1");
      c.once("data", (d) => {
        resolve(d.toString());
        c.destroy();
      });
      c.once("error", reject);
    });
    expect(banner).toMatch(/^SSH-2\.0-OpenSSH/);
    fwd.close();
  });

  test("teardown leaves no namespace, mount, link, process or work dir with the prefix", async () => {
    const pids = lab.hosts.map((h) => h.initPid);
    const t = Date.now();
    await lab.destroy();
    timings.teardownMs = Date.now() - t;
    expect(netnsList().filter((n) => n.startsWith(`${PREFIX}-`))).toEqual([]);
    expect(
      fs
        .readFileSync("/proc/mounts", "utf8")
        .split("\n")
        .filter((l) => l.includes(`${PREFIX}-`)),
    ).toEqual([]);
    expect(linksWithPrefix(PREFIX)).toEqual([]);
    expect(pids.filter((p) => isAlive(p))).toEqual([]);
    expect(fs.existsSync(lab.workDir)).toBe(false);
    expect(fs.existsSync(`/etc/netns/${PREFIX}-ctl`)).toBe(false);
    await lab.destroy(); // idempotent
  });

  test("cleanStale removes what a killed run left, and refuses a live one", async () => {
    const rootfs = await ensureRootfs();
    const code = `require("./test/lab/harness/hosts").createLab({ prefix: "${KILLED_PREFIX}", rootfs: ${JSON.stringify(rootfs.dir)}, hosts: [{ name: "a", docker: true }] })
      .then((l) => { console.log("up " + l.host("a").initPid); setInterval(() => {}, 1000); }, (e) => { console.error(e); process.exit(1); });`;
    const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", "-e", code], {
      cwd: path.resolve(__dirname, "../.."),
      stdio: ["ignore", "pipe", "inherit"],
    });
    const initPid = await new Promise<number>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => {
        const m = /up (\d+)/.exec(d.toString());
        if (m) resolve(Number(m[1]));
      });
      child.once("exit", (c) => reject(new Error(`lab child exited early (${c})`)));
    });
    expect(() => cleanStale(KILLED_PREFIX)).toThrow(/in use by live pid/);
    child.kill("SIGKILL"); // no exit handler runs: the host, namespaces and work dir stay
    await new Promise((r) => child.once("exit", r));
    expect(netnsList()).toEqual(
      expect.arrayContaining([`${KILLED_PREFIX}-ctl`, `${KILLED_PREFIX}-a`]),
    );
    expect(isAlive(initPid)).toBe(true);

    cleanStale(KILLED_PREFIX);
    expect(netnsList().filter((n) => n.startsWith(`${KILLED_PREFIX}-`))).toEqual([]);
    expect(mountPoints().filter((m) => m.includes(`${KILLED_PREFIX}-`))).toEqual([]);
    expect(linksWithPrefix(KILLED_PREFIX)).toEqual([]);
    expect(isAlive(initPid)).toBe(false);
    expect(
      fs
        .readdirSync(path.join(os.tmpdir(), "casd-lab"))
        .filter((d) => d.startsWith(`${KILLED_PREFIX}-`)),
    ).toEqual([]);
  });
});

describe("parseAptSources (the rootfs mirror comes from the machine's apt sources)", () => {
  const deb822 = [
    "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n" +
      "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n",
  ];
  test.each([
    ["a deb822 stanza serving bookworm/main", deb822, "", "http://mirror.example/debian"],
    ["a disabled stanza is skipped", ["Enabled: no\n" + deb822[0]], "", undefined],
    [
      "deb-src only is skipped",
      ["Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\nComponents: main\n"],
      "",
      undefined,
    ],
    [
      "a one-line sources.list",
      [],
      "# comment\ndeb [arch=amd64] http://list.example/debian bookworm main contrib\n",
      "http://list.example/debian",
    ],
    ["another suite does not count", [], "deb http://list.example/debian trixie main\n", undefined],
    ["a cdrom source does not count", [], "deb cdrom:[Debian]/ bookworm main\n", undefined],
  ])("%s", (_what, sources, list, expected) => {
    expect(parseAptSources(sources, list)).toBe(expected);
  });
});
