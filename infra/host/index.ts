/**
 * RegistryHost: the machine that runs the registry (compose and distribution
 * paths). One `command.remote.Command` per logical step, in this order:
 *
 *   ready -> preflight -> dirs -> tls
 *                      -> etc-hosts (when etcHosts)
 *                      -> ca-trust
 *
 * `ready` polls (bounded) until the host is booted and root is reachable;
 * `preflight` is read-only and fails listing every problem at once; the
 * other steps change the host, journal what they change, and their delete
 * undoes exactly that (the data directory is never removed).
 *
 * Every step's `triggers` is the sha256 of what it ships (its create and
 * delete scripts; for `tls` also the key's hash, kept secret). The one
 * deliberate exception to "nothing re-runs when nothing changed": with
 * `preflightEveryRun` (default true) the operator's clock travels to the
 * preflight on stdin, so the preflight re-runs on every `pulumi up` and
 * re-checks the clock skew, the ports, Docker and the free space before
 * anything else; it is read-only and reports `unchanged`.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { registryHostConnectionArgs, sshConnection, type SshTarget } from "../remote/connection";
import { remoteInvocation, sha256Hex } from "../remote/script";
import { isDnsName, isIp } from "../config-checks";
import type { StackConfig } from "../config";
import * as scripts from "./scripts";

export { CERT_FILES, tlsPaths, etcHostsMarker, trustAnchorName } from "./scripts";

export interface RegistryHostArgs {
  /** Address of the registry host (SSH target, and the /etc/hosts address unless `etcHostsAddress`). */
  address: pulumi.Input<string>;
  /** SSH port (default 22). */
  port?: pulumi.Input<number>;
  /** SSH login user (default root). */
  user?: pulumi.Input<string>;
  /** The host's public key line, pinned on every connection; required. */
  hostKey: pulumi.Input<string>;
  /** SSH private key (secret). */
  privateKey: pulumi.Input<string>;
  /** Optional jump host with its own pinned key. */
  bastion?: SshTarget;
  /** Private key for the jump host (secret; default `privateKey`). */
  bastionPrivateKey?: pulumi.Input<string>;
  /** Failed SSH dials tolerated before a step fails (default 10): covers a host still booting. */
  dialErrorLimit?: pulumi.Input<number>;
  /** Seconds per SSH dial (default 15). */
  perDialTimeout?: pulumi.Input<number>;
  /** Run steps through `sudo -n` (plain; default: when `user` is set and is not root). */
  sudo?: boolean;
  /** The registry's DNS name (plain). */
  hostname: string;
  /** Registry data directory, created 0755 root:root, never deleted (plain; default /data). */
  dataDir?: string;
  /** Certificate directory, 0755 root:root (plain; default /etc/casd-registry/tls). */
  certDir?: string;
  /** Install directory, 0755 root:root (plain; default /opt/casd-registry). */
  installDir?: string;
  /** Free space the data volume needs at first install, GiB (plain; default 40). */
  minFreeGiB?: number;
  /** Pin `hostname` in the host's /etc/hosts (plain; default true). */
  etcHosts?: boolean;
  /** The address written to /etc/hosts and expected by the name check (default `address`). */
  etcHostsAddress?: pulumi.Input<string>;
  /** Largest clock difference to the machine running `pulumi up`, seconds (plain; default 120). */
  maxClockSkewSeconds?: number;
  /** Re-run the read-only preflight (and its clock check) on every `up` (plain; default true). */
  preflightEveryRun?: boolean;
  /** Docker engine and compose must be present: true for compose and distribution (plain; default true). */
  requireDocker?: boolean;
  /** TCP ports that must be free or held by the registry itself (plain; default [80, 443]). */
  ports?: number[];
  /** Container names or compose projects that are the registry itself (plain; default ["harbor"]). */
  registryContainers?: string[];
  /** Accepted architectures, as `uname -m` prints them (plain; default ["x86_64"]: Harbor's offline images). */
  architectures?: string[];
  /** How long the readiness poll waits for boot and cloud-init, seconds (plain; default 300). */
  readyTimeoutSeconds?: number;
  /** The CA certificate (PEM): written to the certificate directory and the OS trust store. */
  caCertPem: pulumi.Input<string>;
  /** Server certificate followed by its chain (PEM), installed 0444. */
  fullChainPem: pulumi.Input<string>;
  /** The server's private key (PEM, secret), installed 0400 through stdin. */
  serverKeyPem: pulumi.Input<string>;
}

/** Seconds between readiness polls. */
export const READY_INTERVAL_SECONDS = 5;

interface Plain {
  sudo: boolean;
  hostname: string;
  dataDir: string;
  certDir: string;
  installDir: string;
  minFreeGiB: number;
  etcHosts: boolean;
  maxClockSkewSeconds: number;
  preflightEveryRun: boolean;
  requireDocker: boolean;
  ports: number[];
  registryContainers: string[];
  architectures: string[];
  readyTimeoutSeconds: number;
}

const PATH_RE = /^\/[A-Za-z0-9._/-]*$/;

/** Applies defaults and validates the plain arguments; every problem is reported at once. */
export function resolveHostArgs(name: string, args: RegistryHostArgs): Plain {
  const userIsPlain = typeof args.user === "string" || args.user === undefined;
  const p: Plain = {
    sudo: args.sudo ?? (userIsPlain ? (args.user ?? "root") !== "root" : false),
    hostname: args.hostname,
    dataDir: args.dataDir ?? "/data",
    certDir: args.certDir ?? "/etc/casd-registry/tls",
    installDir: args.installDir ?? "/opt/casd-registry",
    minFreeGiB: args.minFreeGiB ?? 40,
    etcHosts: args.etcHosts ?? true,
    maxClockSkewSeconds: args.maxClockSkewSeconds ?? 120,
    preflightEveryRun: args.preflightEveryRun ?? true,
    requireDocker: args.requireDocker ?? true,
    ports: args.ports ?? [80, 443],
    registryContainers: args.registryContainers ?? ["harbor"],
    architectures: args.architectures ?? ["x86_64"],
    readyTimeoutSeconds: args.readyTimeoutSeconds ?? 300,
  };
  const errors: { propertyPath: string; reason: string }[] = [];
  const bad = (propertyPath: string, value: unknown, reason: string): void => {
    errors.push({ propertyPath, reason: `${JSON.stringify(value)} ${reason}` });
  };
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name)) {
    bad(
      "name",
      name,
      "must be letters, digits, '.', '_' or '-' (it names the host's undo journals)",
    );
  }
  if (!isDnsName(p.hostname ?? "") || !p.hostname.includes(".") || isIp(p.hostname)) {
    bad(
      "hostname",
      p.hostname,
      "is not a fully qualified DNS name; use a name such as reg.casd.local",
    );
  }
  for (const key of ["dataDir", "certDir", "installDir"] as const) {
    const v = p[key];
    if (
      !PATH_RE.test(v) ||
      v === "/" ||
      v.endsWith("/") ||
      v.split("/").includes("..") ||
      v.includes("//")
    ) {
      bad(
        key,
        v,
        "must be an absolute path of letters, digits, '.', '_', '-' and '/' without a trailing '/' (not / itself)",
      );
    }
  }
  const dirs = [p.dataDir, p.certDir, p.installDir];
  const names = ["dataDir", "certDir", "installDir"];
  for (let i = 0; i < dirs.length; i++) {
    for (let j = i + 1; j < dirs.length; j++) {
      if (dirs[i] === dirs[j])
        bad(names[j], dirs[j], `is the same directory as ${names[i]}; give each its own`);
      else if (dirs[j].startsWith(`${dirs[i]}/`))
        bad(names[j], dirs[j], `is inside ${names[i]} (${dirs[i]}); keep them apart`);
      else if (dirs[i].startsWith(`${dirs[j]}/`))
        bad(names[i], dirs[i], `is inside ${names[j]} (${dirs[j]}); keep them apart`);
    }
  }
  const intIn = (key: string, v: number, min: number, max: number, unit: string): void => {
    if (!Number.isInteger(v) || v < min || v > max)
      bad(key, v, `must be a whole number from ${min} to ${max}${unit ? ` ${unit}` : ""}`);
  };
  intIn("minFreeGiB", p.minFreeGiB, 0, 1048576, "GiB");
  intIn("maxClockSkewSeconds", p.maxClockSkewSeconds, 1, 3600, "seconds");
  intIn("readyTimeoutSeconds", p.readyTimeoutSeconds, READY_INTERVAL_SECONDS, 3600, "seconds");
  if (p.ports.length === 0)
    bad("ports", p.ports, "is empty; list the registry's ports (e.g. [80, 443])");
  p.ports.forEach((port, i) => intIn(`ports[${i}]`, port, 1, 65535, ""));
  if (new Set(p.ports).size !== p.ports.length) bad("ports", p.ports, "lists a port twice");
  p.registryContainers.forEach((c, i) => {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(c))
      bad(`registryContainers[${i}]`, c, "is not a container or compose project name");
  });
  if (p.architectures.length === 0)
    bad("architectures", p.architectures, "is empty; list at least one (x86_64, aarch64)");
  p.architectures.forEach((a, i) => {
    if (!/^[a-z0-9_]+$/.test(a))
      bad(`architectures[${i}]`, a, "is not a uname -m value such as x86_64 or aarch64");
  });
  if (typeof args.hostKey === "string" && args.hostKey.trim() === "") {
    bad(
      "hostKey",
      args.hostKey,
      "is empty; pin the host's key ('<type> <base64>' from /etc/ssh/ssh_host_ed25519_key.pub)",
    );
  }
  if (args.hostKey === undefined)
    bad(
      "hostKey",
      undefined,
      "is required; pin the host's key ('<type> <base64>' from /etc/ssh/ssh_host_ed25519_key.pub)",
    );
  if (typeof args.etcHostsAddress === "string" && !isIp(args.etcHostsAddress)) {
    bad("etcHostsAddress", args.etcHostsAddress, "is not an IP address");
  }
  if (errors.length > 0) {
    throw new pulumi.InputPropertiesError({
      message: `RegistryHost ${name}: ${errors.length} invalid argument${errors.length === 1 ? "" : "s"}; nothing was created:\n${errors
        .map((e) => `  - ${e.propertyPath}: ${e.reason}`)
        .join("\n")}`,
      errors,
    });
  }
  return p;
}

export class RegistryHost extends pulumi.ComponentResource {
  /** Resolves (to true) when every step has run: depend on it, or on `steps`. */
  public readonly ready: pulumi.Output<boolean>;
  /** Full-chain certificate on the host (0444 root:root). */
  public readonly certPath: pulumi.Output<string>;
  /** Server key on the host (0400 root:root). */
  public readonly keyPath: pulumi.Output<string>;
  /** CA certificate on the host (0444 root:root). */
  public readonly caPath: pulumi.Output<string>;
  public readonly dataDir: pulumi.Output<string>;
  public readonly installDir: pulumi.Output<string>;
  public readonly certDir: pulumi.Output<string>;
  /** Every step, in creation order; the last ones are what deploy rooms `dependsOn`. */
  public readonly steps: command.remote.Command[];

  constructor(name: string, args: RegistryHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("casd:host:RegistryHost", name, {}, opts);
    const p = resolveHostArgs(name, args);
    const connection = sshConnection({
      address: args.address,
      port: args.port,
      user: args.user,
      hostKey: args.hostKey,
      privateKey: args.privateKey,
      bastion: args.bastion,
      bastionPrivateKey: args.bastionPrivateKey,
      dialErrorLimit: args.dialErrorLimit,
      perDialTimeout: args.perDialTimeout,
    });
    const etcAddress = pulumi.output(args.etcHostsAddress ?? args.address);
    const journal = (step: string): string => `${name}-${step}`;
    const paths = scripts.tlsPaths(p.certDir);
    const run = (script: string): string => remoteInvocation(script, { sudo: p.sudo });
    const base = { connection, addPreviousOutputInEnv: false };
    const stepOpts = (dependsOn: pulumi.Resource[]): pulumi.CustomResourceOptions => ({
      parent: this,
      dependsOn,
      deleteBeforeReplace: true,
    });

    // 1. Readiness: as the login user (it checks that sudo works).
    const attempts = Math.ceil(p.readyTimeoutSeconds / READY_INTERVAL_SECONDS);
    const readyScript = scripts.renderReadyScript({
      sudo: p.sudo,
      attempts,
      intervalSeconds: READY_INTERVAL_SECONDS,
    });
    const ready = new command.remote.Command(
      `${name}-ready`,
      {
        ...base,
        create: remoteInvocation(readyScript, { sudo: false }),
        triggers: [sha256Hex(readyScript)],
      },
      stepOpts([]),
    );

    // 2. Preflight: read-only; the operator's epoch on stdin (see the file comment).
    const preflightScript = etcAddress.apply((address) =>
      scripts.renderPreflightScript({
        hostname: p.hostname,
        address,
        dataDir: p.dataDir,
        minFreeGiB: p.minFreeGiB,
        ports: p.ports,
        requireDocker: p.requireDocker,
        registryContainers: p.registryContainers,
        architectures: p.architectures,
        etcHosts: p.etcHosts,
        maxClockSkewSeconds: p.preflightEveryRun ? p.maxClockSkewSeconds : undefined,
      }),
    );
    const preflight = new command.remote.Command(
      `${name}-preflight`,
      {
        ...base,
        create: preflightScript.apply(run),
        triggers: [preflightScript.apply((s) => sha256Hex(s))],
        ...(p.preflightEveryRun ? { stdin: `${Math.floor(Date.now() / 1000)}\n` } : {}),
      },
      stepOpts([ready]),
    );

    // 3. Directories (journaled; delete keeps the data directory).
    const dirsArgs = {
      journal: journal("dirs"),
      dataDir: p.dataDir,
      certDir: p.certDir,
      installDir: p.installDir,
    };
    const dirsScript = scripts.renderDirsScript(dirsArgs);
    const dirsDelete = scripts.renderDirsDeleteScript(dirsArgs);
    const dirs = new command.remote.Command(
      `${name}-dirs`,
      {
        ...base,
        create: run(dirsScript),
        delete: run(dirsDelete),
        triggers: [sha256Hex(dirsScript, dirsDelete)],
      },
      stepOpts([preflight]),
    );

    // 4. /etc/hosts entry (optional): a marked line; delete removes exactly it.
    let etcHosts: command.remote.Command | undefined;
    if (p.etcHosts) {
      const create = etcAddress.apply((address) =>
        scripts.renderEtcHostsScript({ hostname: p.hostname, address }),
      );
      const del = etcAddress.apply((address) =>
        scripts.renderEtcHostsDeleteScript({ hostname: p.hostname, address }),
      );
      etcHosts = new command.remote.Command(
        `${name}-etc-hosts`,
        {
          ...base,
          create: create.apply(run),
          delete: del.apply(run),
          triggers: [pulumi.all([create, del]).apply(([c, d]) => sha256Hex(c, d))],
        },
        stepOpts([preflight]),
      );
    }

    // 5. TLS material: key via stdin (secret, not logged), public files embedded.
    const tlsArgs = pulumi
      .all([args.fullChainPem, args.caCertPem])
      .apply(([fullChainPem, caCertPem]) => ({
        journal: journal("tls"),
        certDir: p.certDir,
        fullChainPem,
        caCertPem,
      }));
    const tlsScript = pulumi.unsecret(tlsArgs.apply(scripts.renderTlsScript));
    const tlsDelete = scripts.renderTlsDeleteScript({ journal: journal("tls") });
    const key = pulumi.secret(args.serverKeyPem);
    const tls = new command.remote.Command(
      `${name}-tls`,
      {
        ...base,
        create: tlsScript.apply(run),
        delete: run(tlsDelete),
        stdin: key,
        logging: "none",
        triggers: [
          pulumi.all([tlsScript, key]).apply(([s, k]) => sha256Hex(s, tlsDelete, sha256Hex(k))),
        ],
      },
      { ...stepOpts([dirs]), additionalSecretOutputs: ["stdout", "stderr"] },
    );

    // 6. The CA in the host's own trust store (Debian or RHEL family, detected).
    const trustScript = pulumi.unsecret(
      pulumi.output(args.caCertPem).apply((caCertPem) =>
        scripts.renderTrustScript({
          journal: journal("ca-trust"),
          hostname: p.hostname,
          caCertPem,
        }),
      ),
    );
    const trustDelete = scripts.renderTrustDeleteScript({
      journal: journal("ca-trust"),
      hostname: p.hostname,
    });
    const trust = new command.remote.Command(
      `${name}-ca-trust`,
      {
        ...base,
        create: trustScript.apply(run),
        delete: run(trustDelete),
        triggers: [trustScript.apply((s) => sha256Hex(s, trustDelete))],
      },
      stepOpts([preflight]),
    );

    this.steps = [ready, preflight, dirs, ...(etcHosts ? [etcHosts] : []), tls, trust];
    // `ready` flows from the steps that change the host, and from the
    // preflight's id only: the preflight re-runs on every `up` (the operator's
    // clock is its stdin), so its stdout is unknown during preview and would
    // make everything built from `ready` preview as an update every time. Its
    // id stays known across an in-place update, and a failed preflight still
    // fails `ready`.
    this.ready = pulumi.unsecret(
      pulumi
        .all([preflight.id, ...this.steps.filter((s) => s !== preflight).map((s) => s.stdout)])
        .apply(() => true),
    );
    this.certPath = pulumi.output(paths.certPath);
    this.keyPath = pulumi.output(paths.keyPath);
    this.caPath = pulumi.output(paths.caPath);
    this.dataDir = pulumi.output(p.dataDir);
    this.installDir = pulumi.output(p.installDir);
    this.certDir = pulumi.output(p.certDir);
    this.registerOutputs({
      ready: this.ready,
      certPath: this.certPath,
      keyPath: this.keyPath,
      caPath: this.caPath,
      dataDir: this.dataDir,
      installDir: this.installDir,
      certDir: this.certDir,
    });
  }
}

/** What RegistryHost needs from the PKI room. */
export interface HostPkiOutputs {
  caCertPem: pulumi.Input<string>;
  fullChainPem: pulumi.Input<string>;
  serverKeyPem: pulumi.Input<string>;
}

/**
 * The composition root's wiring: RegistryHost's args from the stack config
 * and the PKI room's outputs. Docker is required except on the Helm path;
 * the ports are those the chosen deploy mode listens on.
 */
export function registryHostArgs(cfg: StackConfig, pki: HostPkiOutputs): RegistryHostArgs {
  const h = cfg.registryHost;
  const mirror = cfg.distribution.mirror;
  const ports: number[] =
    cfg.deploy === "distribution"
      ? [cfg.distribution.port]
      : cfg.deploy === "helm"
        ? []
        : cfg.harbor.http === "redirect"
          ? [cfg.harbor.httpPort, cfg.harbor.httpsPort]
          : [cfg.harbor.httpsPort];
  if (mirror.enabled) ports.push(mirror.port);
  // Containers (or compose projects) of this stack that may already hold those ports on a re-run.
  const registryContainers = [
    ...(cfg.deploy === "compose" ? ["harbor"] : []),
    ...(cfg.deploy === "distribution" ? ["casd-registry"] : []),
    ...(mirror.enabled ? ["casd-mirror"] : []),
  ];
  return {
    ...registryHostConnectionArgs(cfg),
    sudo: h.sudo,
    hostname: cfg.hostname,
    dataDir: h.dataDir,
    certDir: h.certDir,
    installDir: h.installDir,
    minFreeGiB: h.minFreeGiB,
    etcHosts: h.etcHosts,
    maxClockSkewSeconds: h.maxClockSkewSeconds,
    // The helm path uses this host only for the bootstrap mirror, which runs in Docker.
    requireDocker: cfg.deploy !== "helm" || mirror.enabled,
    ports: [...new Set(ports)],
    registryContainers: registryContainers.length ? registryContainers : ["harbor"],
    caCertPem: pki.caCertPem,
    fullChainPem: pki.fullChainPem,
    serverKeyPem: pki.serverKeyPem,
  };
}
