/**
 * Lab hosts: real Debian machines made of namespaces on this one.
 *
 * Network. Nothing is added to the root network namespace. A control
 * namespace `<prefix>-ctl` holds the bridge `<prefix>-br` with the subnet's
 * .1 address; each host has its own namespace `<prefix>-<name>` with `eth0`
 * (.10, .11, ... in declaration order), the peer of a veth `<prefix>-<i>` on
 * the bridge. No namespace has a default route, so lab traffic cannot leave
 * the lab. Two labs with different prefixes may use the same subnet.
 *
 * Reaching hosts from a test (root namespace): the control namespace plays
 * the operator's workstation. Run clients there with `lab.run(argv)` (it is
 * `ip netns exec <prefix>-ctl argv`, which also applies
 * `/etc/netns/<prefix>-ctl/hosts`, so host names and aliases resolve), give
 * live mocks `{ netns: lab.controlNs }`, and for in-process Node clients use
 * `lab.forward(host, port)`, a relay from 127.0.0.1:<port> into the lab.
 *
 * Filesystem and processes. Per host, in its namespace:
 * `unshare --mount --uts --pid --fork --kill-child --propagation private`
 * mounts an overlay (lower = cached rootfs, upper/work in the lab's work dir)
 * inside that private mount namespace, then `chroot`s into it and runs an
 * init that mounts proc and devpts (newinstance), for docker hosts also
 * sysfs, cgroup2 and a tmpfs /run, and execs `sshd -D -e` as PID 1. The
 * overlay is thus invisible to (and never left behind in) the root mount
 * namespace; tests read and write a host's files through `host.rootDir`
 * (`/proc/<pid 1>/root`, the host's own view, valid while it runs).
 *
 * sshd: own ed25519 host key generated at start, key-only root login,
 * `PasswordAuthentication no`, `UsePAM no`, `StrictModes no`, `ListenAddress`
 * = the host's address, no `AcceptEnv` (so SSH env requests are dropped).
 * The lab makes one ed25519 client key, authorized on every host.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { ensureRootfs } from "./rootfs";
import {
  isAlive,
  LAB_PATH,
  mustSucceed,
  procStartTime,
  run,
  RunResult,
  runSync,
  sleep,
} from "./proc";
import { cleanStale, labTmpBase, LabState, teardownSync, track } from "./teardown";

export interface HostSpec {
  /** Host name, `[a-z][a-z0-9]{0,14}`: its hostname and its name in every lab hosts file. */
  name: string;
  /** Prepare for a Docker engine (sysfs, cgroup2, tmpfs /run); start it with `lab.startDocker`. Default false. */
  docker?: boolean;
  /** More names for the host's address in the lab's hosts files (e.g. "reg.casd.local"). */
  aliases?: string[];
}

export interface LabOptions {
  /** Prefix of every namespace, link and work dir: `[a-z][a-z0-9]{1,9}`, unique among labs running at once. */
  prefix: string;
  hosts: HostSpec[];
  /** The lab's private /24. Default "10.231.0.0/24": .1 control namespace, hosts from .10. */
  subnet?: string;
  /** Rootfs directory used as every overlay's lower layer. Default: `ensureRootfs()`. */
  rootfs?: string;
  /** Seconds to wait for each host's sshd. Default 30. */
  readyTimeoutSeconds?: number;
  /** Progress lines. Default: none. */
  log?: (line: string) => void;
}

/** One running host. `port`, `user`, `address`, `hostKey` are what `command.remote` connections take. */
export interface LabHost {
  name: string;
  address: string;
  port: number;
  user: string;
  /** The host's public key, `ssh-ed25519 AAAA...` (the form of `connection.hostKey`). */
  hostKey: string;
  aliases: string[];
  docker: boolean;
  /** The host's network namespace. */
  netns: string;
  /** The host's root as it sees it (`/proc/<initPid>/root`); valid while the host runs. */
  rootDir: string;
  /** The overlay's upper dir: everything the host changed. */
  upperDir: string;
  /** PID (root namespace) of the host's PID 1 (sshd). */
  initPid: number;
  /** sshd's (and the init's) stderr. */
  logFile: string;
}

/** A relay from 127.0.0.1:`port` (root namespace) to a host's TCP port. */
export interface Forward {
  port: number;
  close(): void;
}

export interface ExecOptions {
  stdin?: string | Buffer;
  timeoutMs?: number;
}

const PREFIX_RE = /^[a-z][a-z0-9]{1,9}$/;
const NAME_RE = /^[a-z][a-z0-9]{0,14}$/;
const HOST_ENV = {
  PATH: LAB_PATH,
  HOME: "/root",
  USER: "root",
  LOGNAME: "root",
  SHELL: "/bin/bash",
  LANG: "C.UTF-8",
  TERM: "dumb",
};

/** Reasons this machine cannot run the lab (empty when it can): not Linux, not root, missing commands. */
export function labPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.platform !== "linux") return [`the lab needs Linux (this is ${process.platform})`];
  if (process.getuid?.() !== 0) missing.push("the lab needs root (network namespaces, mounts)");
  const commands = "ip unshare nsenter setpriv chroot mount debootstrap ssh sftp ssh-keygen";
  for (const cmd of commands.split(" ")) {
    if (runSync(["sh", "-c", `command -v ${cmd}`], { env: { PATH: LAB_PATH } }).code !== 0)
      missing.push(`command ${cmd} not found`);
  }
  return missing;
}

/** Brings up a lab: cleans what an earlier run left under the prefix, then network, hosts, sshd. */
export async function createLab(opts: LabOptions): Promise<Lab> {
  const base = validate(opts);
  cleanStale(opts.prefix);
  const lowerDir = opts.rootfs ?? (await ensureRootfs({ log: opts.log })).dir;
  fs.mkdirSync(labTmpBase(), { recursive: true });
  const state: LabState = {
    prefix: opts.prefix,
    workDir: fs.mkdtempSync(path.join(labTmpBase(), `${opts.prefix}-`)),
    namespaces: [],
    links: [],
    pids: [],
    closers: [],
    destroyed: false,
  };
  fs.writeFileSync(
    path.join(state.workDir, "owner"),
    `${process.pid} ${procStartTime(process.pid)}`,
  );
  track(state);
  try {
    const lab = new Lab(state, opts, base, lowerDir);
    await lab.start(opts.readyTimeoutSeconds ?? 30);
    return lab;
  } catch (e) {
    try {
      teardownSync(state);
    } catch (t) {
      (e as Error).message += `\n(teardown after the failure: ${(t as Error).message})`;
    }
    throw e;
  }
}

function validate(opts: LabOptions): string {
  const errors: string[] = [];
  if (!PREFIX_RE.test(opts.prefix)) errors.push(`prefix "${opts.prefix}" must match ${PREFIX_RE}`);
  const subnet = opts.subnet ?? "10.231.0.0/24";
  const m =
    /^(10\.\d{1,3}\.\d{1,3}|172\.(1[6-9]|2\d|3[01])\.\d{1,3}|192\.168\.\d{1,3})\.0\/24$/.exec(
      subnet,
    );
  if (!m) errors.push(`subnet "${subnet}" must be a private /24 such as 10.231.0.0/24`);
  if (opts.hosts.length === 0 || opts.hosts.length > 200)
    errors.push(`hosts: give 1 to 200 hosts (got ${opts.hosts.length})`);
  const seen = new Set<string>();
  for (const h of opts.hosts) {
    if (!NAME_RE.test(h.name) || h.name === "ctl" || h.name === "control")
      errors.push(`host name "${h.name}" must match ${NAME_RE} and not be ctl/control`);
    if (seen.has(h.name)) errors.push(`host name "${h.name}" is used twice`);
    seen.add(h.name);
    for (const a of h.aliases ?? [])
      if (!/^[a-z0-9][a-z0-9.-]*$/.test(a))
        errors.push(`alias "${a}" of host ${h.name} is not a host name`);
  }
  if (opts.rootfs !== undefined && /[,:]/.test(opts.rootfs))
    errors.push(`rootfs path "${opts.rootfs}" must not contain "," or ":" (overlay options)`);
  if (errors.length > 0) throw new Error(`createLab: invalid options:\n- ${errors.join("\n- ")}`);
  return m![1];
}

export class Lab {
  readonly prefix: string;
  readonly subnet: string;
  /** The control namespace (bridge, operator's workstation). */
  readonly controlNs: string;
  readonly controlAddress: string;
  readonly workDir: string;
  readonly hosts: LabHost[] = [];
  /** The lab's client key, authorized for root on every host. */
  readonly clientKey: { privateKey: string; publicKey: string; path: string };
  /** known_hosts with every host's key under its address, name and aliases. */
  readonly knownHostsFile: string;

  constructor(
    private readonly state: LabState,
    private readonly opts: LabOptions,
    private readonly base: string,
    private readonly lowerDir: string,
  ) {
    this.prefix = opts.prefix;
    this.subnet = `${base}.0/24`;
    this.controlNs = `${opts.prefix}-ctl`;
    this.controlAddress = `${base}.1`;
    this.workDir = state.workDir;
    const keyPath = path.join(this.workDir, "client_ed25519");
    mustSucceed(
      runSync([
        "ssh-keygen",
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        `casd-lab-${opts.prefix}`,
        "-f",
        keyPath,
      ]),
      "ssh-keygen (client key)",
    );
    this.clientKey = {
      privateKey: fs.readFileSync(keyPath, "utf8"),
      publicKey: fs.readFileSync(`${keyPath}.pub`, "utf8").trim(),
      path: keyPath,
    };
    this.knownHostsFile = path.join(this.workDir, "known_hosts");
  }

  /** The host named `name`; throws when there is none. */
  host(name: string): LabHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h)
      throw new Error(
        `lab ${this.prefix} has no host "${name}" (hosts: ${this.hosts.map((x) => x.name).join(", ")})`,
      );
    return h;
  }

  /** A `command.remote` connection for `host` with the lab's client key and the pinned host key. */
  connection(host: LabHost | string): {
    host: string;
    port: number;
    user: string;
    privateKey: string;
    hostKey: string;
  } {
    const h = typeof host === "string" ? this.host(host) : host;
    return {
      host: h.address,
      port: h.port,
      user: h.user,
      privateKey: this.clientKey.privateKey,
      hostKey: h.hostKey,
    };
  }

  /** Runs `argv` in the control namespace (reaches every host by address, name or alias). */
  run(
    argv: readonly string[],
    opts: ExecOptions & { env?: NodeJS.ProcessEnv } = {},
  ): Promise<RunResult> {
    return run(["ip", "netns", "exec", this.controlNs, ...argv], opts);
  }

  /** `ssh` argv (before the remote command) from the control namespace, host key checked against the lab's known_hosts. */
  sshArgv(host: LabHost | string, knownHostsFile = this.knownHostsFile): string[] {
    const h = typeof host === "string" ? this.host(host) : host;
    return ["ip", "netns", "exec", this.controlNs, "ssh", "-F", "/dev/null",
      "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${knownHostsFile}`,
      "-o", "GlobalKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
      "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", "-i", this.clientKey.path, "-p", String(h.port), `${h.user}@${h.address}`, "--"]; // prettier-ignore
  }

  /** Runs `cmd` (root's shell, bash) on `host` over real SSH with the pinned host key. Never throws on a non-zero exit. */
  ssh(host: LabHost | string, cmd: string, stdin?: string | Buffer): Promise<RunResult> {
    return run([...this.sshArgv(host), cmd], { stdin, timeoutMs: 120_000 });
  }

  /**
   * Runs `cmd` with bash inside `host` without SSH: `nsenter` into the host's
   * mount, UTS, network and PID namespaces and its root (so it sees /proc,
   * the tmpfs /run and the Docker socket as sshd sessions do). Never throws on a non-zero exit.
   */
  exec(host: LabHost | string, cmd: string, opts: ExecOptions = {}): Promise<RunResult> {
    const h = typeof host === "string" ? this.host(host) : host;
    const argv = [
      "nsenter",
      "--target",
      String(h.initPid),
      "--mount",
      "--uts",
      "--net",
      "--pid",
      "--root",
      "--wd",
      "/bin/bash",
      "-c",
      cmd,
    ];
    return run(argv, { env: HOST_ENV, stdin: opts.stdin, timeoutMs: opts.timeoutMs ?? 120_000 });
  }

  /**
   * Starts dockerd inside a docker host (flags of shared/LAB.md: vfs, no
   * iptables, no bridge) and waits until `docker info` answers. Idempotent.
   */
  async startDocker(host: LabHost | string, timeoutSeconds = 90): Promise<void> {
    const h = typeof host === "string" ? this.host(host) : host;
    if (!h.docker) throw new Error(`host ${h.name} was not created with docker: true`);
    const started = await this.exec(
      h,
      `docker info >/dev/null 2>&1 && exit 0
mkdir -p /var/log /var/lib/docker
setsid dockerd --iptables=false --ip-masq=false --bridge=none --storage-driver=vfs -H unix:///run/docker.sock --pidfile /run/docker.pid >/var/log/dockerd.log 2>&1 </dev/null &`,
    );
    mustSucceed(started, `starting dockerd on ${h.name}`);
    const deadline = Date.now() + timeoutSeconds * 1000;
    for (;;) {
      const r = await this.exec(h, "docker info --format '{{.ServerVersion}}'", {
        timeoutMs: 15_000,
      });
      if (r.code === 0) return;
      if (Date.now() > deadline) {
        const logTail = await this.exec(h, "tail -n 30 /var/log/dockerd.log");
        throw new Error(
          `dockerd on ${h.name} not ready after ${timeoutSeconds} s: ${r.stderr.trim()}\n${logTail.stdout}`,
        );
      }
      await sleep(250);
    }
  }

  /** Relays 127.0.0.1:<returned port> in the root namespace to `host`:`port` (for in-process Node clients). */
  async forward(host: LabHost | string, port: number): Promise<Forward> {
    const h = typeof host === "string" ? this.host(host) : host;
    const sock = path.join(this.workDir, `fwd-${h.name}-${port}-${this.state.closers.length}.sock`);
    // The in-namespace half: a unix socket (reachable from every network namespace) to host:port.
    const relay = `const net=require("net");const [s,h,p]=process.argv.slice(1);net.createServer(c=>{const u=net.connect(+p,h);c.pipe(u).pipe(c);c.on("error",()=>u.destroy());u.on("error",()=>c.destroy());}).listen(s,()=>process.stdout.write("ready\\n"));`;
    const child = spawn(
      "ip",
      [
        "netns",
        "exec",
        this.controlNs,
        process.execPath,
        "-e",
        relay,
        sock,
        h.address,
        String(port),
      ],
      { stdio: ["ignore", "pipe", "inherit"], detached: true },
    );
    this.state.pids.push({ pid: child.pid!, start: procStartTime(child.pid!) });
    child.unref();
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once("data", () => resolve());
      child.once("exit", (code) =>
        reject(new Error(`forward relay to ${h.name}:${port} exited (${code})`)),
      );
    });
    child.stdout!.destroy(); // the relay writes nothing more; an open pipe would hold the event loop
    const server = net.createServer((c) => {
      const u = net.connect(sock);
      c.pipe(u).pipe(c);
      c.on("error", () => u.destroy());
      u.on("error", () => c.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    server.unref();
    const close = () => {
      server.close();
      if (isAlive(child.pid!)) process.kill(child.pid!, "SIGKILL");
    };
    this.state.closers.push(close);
    return { port: (server.address() as net.AddressInfo).port, close };
  }

  /** Tears the lab down (kills hosts, removes namespaces, links, mounts, work dir). Idempotent; throws listing leftovers. */
  async destroy(): Promise<void> {
    if (!this.state.destroyed) teardownSync(this.state);
  }

  /** Network, host filesystems and sshd for every host (in parallel); called once by createLab. */
  async start(readySeconds: number): Promise<void> {
    this.setupNetwork();
    const hostsFile = this.hostsFile();
    fs.mkdirSync(`/etc/netns/${this.controlNs}`, { recursive: true });
    fs.writeFileSync(`/etc/netns/${this.controlNs}/hosts`, hostsFile);
    await Promise.all(
      this.opts.hosts.map((spec, i) => this.startHost(spec, i, hostsFile, readySeconds)),
    );
    this.hosts.sort(
      (a, b) =>
        this.opts.hosts.findIndex((s) => s.name === a.name) -
        this.opts.hosts.findIndex((s) => s.name === b.name),
    );
    const kh = this.hosts
      .map((h) => `${[h.address, h.name, ...h.aliases].join(",")} ${h.hostKey}`)
      .join("\n");
    fs.writeFileSync(this.knownHostsFile, kh + "\n");
    await Promise.all(this.hosts.map((h) => this.waitSsh(h, readySeconds)));
  }

  private address(i: number): string {
    return `${this.base}.${10 + i}`;
  }

  private setupNetwork(): void {
    const ip = (...args: string[]) => mustSucceed(runSync(["ip", ...args]), `ip ${args.join(" ")}`);
    const ctl = this.controlNs;
    const bridge = `${this.prefix}-br`;
    ip("netns", "add", ctl);
    this.state.namespaces.push(ctl);
    ip("-n", ctl, "link", "set", "lo", "up");
    ip("-n", ctl, "link", "add", bridge, "type", "bridge");
    this.state.links.push({ ns: ctl, name: bridge });
    ip("-n", ctl, "addr", "add", `${this.controlAddress}/24`, "dev", bridge);
    ip("-n", ctl, "link", "set", bridge, "up");
    this.opts.hosts.forEach((spec, i) => {
      const ns = `${this.prefix}-${spec.name}`;
      const veth = `${this.prefix}-${i}`;
      ip("netns", "add", ns);
      this.state.namespaces.push(ns);
      ip("-n", ns, "link", "set", "lo", "up");
      // Both ends are created inside lab namespaces: the root namespace never sees them.
      ip("-n", ctl, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns);
      this.state.links.push({ ns: ctl, name: veth });
      ip("-n", ctl, "link", "set", veth, "master", bridge, "up");
      ip("-n", ns, "addr", "add", `${this.address(i)}/24`, "dev", "eth0");
      ip("-n", ns, "link", "set", "eth0", "up");
    });
  }

  private hostsFile(): string {
    const lines = [
      "127.0.0.1 localhost",
      "::1 localhost ip6-localhost ip6-loopback",
      `${this.controlAddress} control`,
    ];
    this.opts.hosts.forEach((h, i) =>
      lines.push([this.address(i), h.name, ...(h.aliases ?? [])].join(" ")),
    );
    return lines.join("\n") + "\n";
  }

  private async startHost(
    spec: HostSpec,
    i: number,
    hostsFile: string,
    readySeconds: number,
  ): Promise<void> {
    const dir = path.join(this.workDir, spec.name);
    const [upper, work, merged] = ["upper", "work", "merged"].map((d) => path.join(dir, d));
    for (const d of [upper, work, merged]) fs.mkdirSync(d, { recursive: true });
    const address = this.address(i);
    // Files the host starts with, written into the upper layer before the overlay is mounted.
    const put = (rel: string, content: string, mode: number) => {
      fs.writeFileSync(path.join(upper, rel), content, { mode });
      fs.chmodSync(path.join(upper, rel), mode);
    };
    for (const [d, mode] of [
      ["etc", 0o755],
      ["etc/ssh", 0o755],
      ["root", 0o700],
      ["root/.ssh", 0o700],
      ["run", 0o755],
      ["run/sshd", 0o755],
    ] as const) {
      fs.mkdirSync(path.join(upper, d), { mode });
      fs.chmodSync(path.join(upper, d), mode);
    }
    put("etc/hosts", hostsFile, 0o644);
    put("etc/hostname", `${spec.name}\n`, 0o644);
    put("root/.ssh/authorized_keys", this.clientKey.publicKey + "\n", 0o600);
    put("etc/ssh/sshd_config", sshdConfig(spec.name, address), 0o644);
    const hostKeyFile = path.join(upper, "etc/ssh/ssh_host_ed25519_key");
    mustSucceed(
      await run([
        "ssh-keygen",
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        `root@${spec.name}`,
        "-f",
        hostKeyFile,
      ]),
      `ssh-keygen (host key of ${spec.name})`,
    );
    const hostKey = fs
      .readFileSync(`${hostKeyFile}.pub`, "utf8")
      .trim()
      .split(/\s+/)
      .slice(0, 2)
      .join(" ");

    const init = [
      "set -e",
      "mount -t proc proc /proc",
      "mkdir -p /dev/pts",
      "mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts",
      "rm -f /dev/ptmx && ln -s pts/ptmx /dev/ptmx",
      ...(spec.docker
        ? [
            "mount -t sysfs sys /sys",
            "mount -t cgroup2 none /sys/fs/cgroup",
            "mount -t tmpfs -o mode=0755 tmpfs /run",
            "mkdir -p /run/sshd",
          ]
        : []),
      `hostname ${spec.name}`,
      "exec /usr/sbin/sshd -D -e",
    ].join("\n");
    const outer = `mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4" && exec chroot "$4" /bin/sh -c "$5"`;
    const logFile = path.join(dir, "sshd.log");
    const logFd = fs.openSync(logFile, "a");
    const ns = `${this.prefix}-${spec.name}`;
    const child = spawn(
      "ip",
      [
        "netns",
        "exec",
        ns,
        "unshare",
        "--mount",
        "--uts",
        "--pid",
        "--fork",
        "--kill-child",
        "--propagation",
        "private",
        "/bin/sh",
        "-c",
        outer,
        "casd-init",
        this.lowerDir,
        upper,
        work,
        merged,
        init,
      ],
      { stdio: ["ignore", logFd, logFd], detached: true, env: HOST_ENV },
    );
    fs.closeSync(logFd);
    child.unref();
    const unsharePid = child.pid!;
    this.state.pids.push({ pid: unsharePid, start: procStartTime(unsharePid) });
    const initPid = await childOf(unsharePid, readySeconds * 1000);
    if (initPid === undefined)
      throw new Error(`host ${spec.name} did not start: ${readLog(logFile)}`);
    this.state.pids.unshift({ pid: initPid, start: procStartTime(initPid) }); // PID 1s are killed first
    fs.writeFileSync(path.join(dir, "pids"), `${unsharePid} ${initPid}\n`);
    this.hosts.push({
      name: spec.name,
      address,
      port: 22,
      user: "root",
      hostKey,
      aliases: spec.aliases ?? [],
      docker: spec.docker ?? false,
      netns: ns,
      rootDir: `/proc/${initPid}/root`,
      upperDir: upper,
      initPid,
      logFile,
    });
  }

  private async waitSsh(h: LabHost, readySeconds: number): Promise<void> {
    const deadline = Date.now() + readySeconds * 1000;
    for (;;) {
      const r = await this.ssh(h, "true");
      if (r.code === 0) return;
      if (!isAlive(h.initPid) || Date.now() > deadline) {
        throw new Error(
          `sshd on ${h.name} (${h.address}) not ready: ${r.stderr.trim()}\nlog: ${readLog(h.logFile)}`,
        );
      }
      await sleep(100);
    }
  }
}

function sshdConfig(name: string, address: string): string {
  return `# casd lab host ${name}: key-only root login, no PAM, no AcceptEnv
Port 22
ListenAddress ${address}
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
X11Forwarding no
Subsystem sftp /usr/lib/openssh/sftp-server
`;
}

/** The first child of `pid` (the PID 1 that `unshare --fork` makes), polled until `timeoutMs`. */
async function childOf(pid: number, timeoutMs: number): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
      if (kids) return Number(kids.split(" ")[0]);
    } catch {
      return undefined; // unshare is gone
    }
    await sleep(10);
  }
  return undefined;
}

function readLog(file: string): string {
  try {
    return fs.readFileSync(file, "utf8").slice(-2000);
  } catch {
    return "(no log)";
  }
}
