/**
 * DistributionRegistry: a plain Docker registry (CNCF Distribution 2.8) on
 * the registry host, run by @pulumi/docker through the host's engine over
 * SSH. Used for `deploy: distribution`, and (a second instance with
 * `harborImagesArchivePath`) as the Helm path's bootstrap mirror that holds
 * Harbor's images for the Kubernetes nodes.
 *
 *   archive (CopyToRemote) -> load ─┐
 *   config ──────────────────────────┼─> container (docker) -> health -> harbor-images (mirror only)
 *   auth (htpasswd on stdin) ────────┘                          ^
 *   harbor-archive (CopyToRemote, mirror only) ─────────────────┘
 *
 * - The image comes from the offline bundle's archive: uploaded, its sha256
 *   verified on the host, `docker load`ed only when the engine lacks that
 *   image id; the container runs that exact id.
 * - The docker provider reaches the engine with the `ssh` binary of the
 *   machine running `pulumi up`. The host key is pinned without any file:
 *   `KnownHostsCommand` prints the pinned key (OpenSSH 8.5 or later), with
 *   `StrictHostKeyChecking=yes` and both known_hosts files off. The private
 *   key is NOT passed to it (never on argv): the operator's ssh agent or
 *   ssh config provides it, or `identityFile` names a key file.
 * - The container is replaced when its image, config, htpasswd or
 *   certificate (`tlsRevision`) changes: each is hashed into a label.
 * - Destroy removes the container, the config and htpasswd, the archive and
 *   the image it loaded; the storage directory (registry data) stays.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import { isDnsName, isIp, isSha256Hex } from "../config-checks";
import { sshConnection } from "../remote/connection";
import { remoteInvocation, sha256Hex } from "../remote/script";
import { bcryptHash } from "../harbor/helm/bcrypt";
import type { StackConfig } from "../config";
import { tlsPaths } from "../host/scripts";
import * as scripts from "./scripts";

export * from "./media-types";
export {
  CONTAINER_PATHS,
  BRIDGE_PORT,
  instancePaths,
  renderRegistryConfig,
  healthcheckTest,
} from "./scripts";

export interface DistributionRegistryArgs {
  /** Address of the registry host: SSH target of the steps and of the docker provider. */
  address: pulumi.Input<string>;
  /** SSH port (default 22). */
  sshPort?: number;
  /** SSH login user (plain; default root). */
  user?: string;
  /** The host's public key line (`<type> <base64>`), pinned for the steps and the docker provider; required. */
  hostKey: pulumi.Input<string>;
  /** SSH private key for the remote steps (secret). The docker provider does not get it: see `identityFile`. */
  privateKey: pulumi.Input<string>;
  /** Key file on the machine running `pulumi up` for the docker provider's ssh (plain path; default: the ssh agent or ~/.ssh/config). */
  identityFile?: string;
  /** Run steps through `sudo -n` (plain; default: when `user` is not root). */
  sudo?: boolean;
  /** Failed SSH dials tolerated per step (default 10). */
  dialErrorLimit?: number;
  /** Seconds per SSH dial (default 15). */
  perDialTimeout?: number;
  /** Resolves when the host is prepared (the host room's `ready`): every step waits for it. */
  ready?: pulumi.Input<unknown>;
  /** The name clients use; must be in the server certificate (plain). */
  hostname: string;
  /** The HTTPS port clients use (plain; default 5000). */
  port?: number;
  /** Loopback port of the registry's debug listener, probed by the container healthcheck (plain; default 5001). */
  debugPort?: number;
  /** `host` runs on the host's network and listens on `port` itself; any other value is the Docker network the container joins, with `port` published (plain; default bridge). */
  network?: string;
  /** Registry storage on the host, bind-mounted read-write and never deleted (plain; default `<dataDir>/distribution-<name>`). */
  storageDir?: string;
  /** The host room's data directory (plain; default /data). */
  dataDir?: string;
  /** The host room's install directory: archives, config and htpasswd live under it (plain; default /opt/casd-registry). */
  installDir?: string;
  /** Full-chain certificate on the host (the host room's `certPath`; plain). Its directory is mounted read-only. */
  certPath: string;
  /** Server key on the host, in the same directory as `certPath` (plain). */
  keyPath: string;
  /** CA certificate on the host (the host room's `caPath`; plain): the health check verifies TLS with it. */
  caPath: string;
  /** Changes whenever the certificate changes (e.g. the CA fingerprint and the chain's hash): a new value replaces the container so it reads the new certificate (default none). */
  tlsRevision?: pulumi.Input<string>;
  /** Image reference held by the archive, e.g. registry:2.8.3 (plain). */
  image: string;
  /** The image archive (`docker save` output) on the machine running `pulumi up` (plain). */
  imageArchivePath: string;
  /** sha256 of that archive (plain, 64 hex digits), verified on the host before loading. */
  imageArchiveSha256: string;
  /** htpasswd user (plain; default casd). */
  username?: string;
  /** htpasswd password (secret; at most 72 bytes, bcrypt's limit). */
  password: pulumi.Input<string>;
  /** Allow deleting manifests and blobs through the API (plain; default false). */
  deleteEnabled?: boolean;
  /** Container name (plain; default `casd-<name>`). */
  containerName?: string;
  /** Seconds to wait for the container to become healthy (plain; default 120). */
  healthTimeoutSeconds?: number;
  /** Mirror mode: the Harbor installer's image archive (`harbor.v<version>.tar.gz`) to load and push into this registry (plain). */
  harborImagesArchivePath?: string;
  /** sha256 of that archive (plain). */
  harborImagesArchiveSha256?: string;
  /** `host:port` the host's engine pushes Harbor's images to; must be in the certificate (default `<address>:<port>`). */
  pushRegistry?: pulumi.Input<string>;
}

/** The resolved plain arguments. */
export interface ResolvedDistributionArgs {
  user: string;
  sshPort: number;
  sudo: boolean;
  hostname: string;
  port: number;
  debugPort: number;
  network: string;
  dataDir: string;
  storageDir: string;
  installDir: string;
  certPath: string;
  keyPath: string;
  caPath: string;
  image: string;
  imageArchivePath: string;
  imageArchiveSha256: string;
  username: string;
  deleteEnabled: boolean;
  containerName: string;
  healthTimeoutSeconds: number;
  identityFile?: string;
  harborImages?: { archivePath: string; sha256: string };
}

const PATH_RE = /^\/[A-Za-z0-9._/-]*$/;
const IMAGE_RE =
  /^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$/;

function absPathOk(v: string): boolean {
  return (
    PATH_RE.test(v) &&
    v !== "/" &&
    !v.endsWith("/") &&
    !v.split("/").includes("..") &&
    !v.includes("//")
  );
}

/** Applies defaults and validates every plain argument at once (nothing is created on error). */
export function resolveDistributionArgs(
  name: string,
  args: DistributionRegistryArgs,
): ResolvedDistributionArgs {
  const user = args.user ?? "root";
  const dataDir = args.dataDir ?? "/data";
  const harborSet =
    args.harborImagesArchivePath !== undefined || args.harborImagesArchiveSha256 !== undefined;
  const r: ResolvedDistributionArgs = {
    user,
    sshPort: args.sshPort ?? 22,
    sudo: args.sudo ?? user !== "root",
    hostname: args.hostname,
    port: args.port ?? 5000,
    debugPort: args.debugPort ?? 5001,
    network: args.network ?? "bridge",
    dataDir,
    storageDir: args.storageDir ?? `${dataDir}/distribution-${name}`,
    installDir: args.installDir ?? "/opt/casd-registry",
    certPath: args.certPath,
    keyPath: args.keyPath,
    caPath: args.caPath,
    image: args.image,
    imageArchivePath: args.imageArchivePath,
    imageArchiveSha256: args.imageArchiveSha256,
    username: args.username ?? "casd",
    deleteEnabled: args.deleteEnabled ?? false,
    containerName: args.containerName ?? `casd-${name}`,
    healthTimeoutSeconds: args.healthTimeoutSeconds ?? 120,
    identityFile: args.identityFile,
    harborImages: harborSet
      ? {
          archivePath: args.harborImagesArchivePath ?? "",
          sha256: args.harborImagesArchiveSha256 ?? "",
        }
      : undefined,
  };
  const errors: { propertyPath: string; reason: string }[] = [];
  const bad = (propertyPath: string, value: unknown, reason: string): void => {
    errors.push({ propertyPath, reason: `${JSON.stringify(value)} ${reason}` });
  };
  if (!/^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$/.test(name))
    bad(
      "name",
      name,
      "must be lowercase letters, digits and inner '-' (at most 42): it names directories, journals and the container",
    );
  if (!/^[a-z_][a-z0-9_.-]{0,31}$/i.test(user)) bad("user", user, "is not a login name");
  if (typeof args.hostKey === "string" && args.hostKey.trim() === "")
    bad("hostKey", args.hostKey, "is empty; pin the host's key ('<type> <base64>')");
  if (args.hostKey === undefined)
    bad(
      "hostKey",
      undefined,
      "is required; pin the host's key ('<type> <base64>' from /etc/ssh/ssh_host_ed25519_key.pub)",
    );
  if (!isDnsName(r.hostname ?? "") || !r.hostname.includes(".") || isIp(r.hostname))
    bad(
      "hostname",
      r.hostname,
      "is not a fully qualified DNS name; use the name in the server certificate, e.g. reg.casd.local",
    );
  const portOk = (key: string, v: number): void => {
    if (!Number.isInteger(v) || v < 1 || v > 65535)
      bad(key, v, "must be a port number from 1 to 65535");
  };
  portOk("sshPort", r.sshPort);
  portOk("port", r.port);
  portOk("debugPort", r.debugPort);
  if (r.debugPort === r.port)
    bad("debugPort", r.debugPort, "is the registry's own port; choose another");
  if (r.network !== "host" && r.debugPort === scripts.BRIDGE_PORT)
    bad(
      "debugPort",
      r.debugPort,
      `is the registry's port inside the container (${scripts.BRIDGE_PORT}); choose another`,
    );
  if (
    typeof r.network !== "string" ||
    !/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(r.network) ||
    r.network === "none"
  )
    bad("network", r.network, "must be host, bridge or a Docker network name (not none)");
  for (const key of [
    "dataDir",
    "storageDir",
    "installDir",
    "certPath",
    "keyPath",
    "caPath",
  ] as const) {
    if (typeof r[key] !== "string" || !absPathOk(r[key]))
      bad(
        key,
        r[key],
        "must be an absolute path of letters, digits, '.', '_', '-' and '/' without a trailing '/'",
      );
  }
  if (
    absPathOk(r.certPath ?? "") &&
    absPathOk(r.keyPath ?? "") &&
    path.posix.dirname(r.certPath) !== path.posix.dirname(r.keyPath)
  ) {
    bad(
      "keyPath",
      r.keyPath,
      `must be in the certificate's directory (${path.posix.dirname(r.certPath)}): that directory is mounted read-only into the container`,
    );
  }
  if (
    absPathOk(r.storageDir) &&
    absPathOk(r.installDir) &&
    (r.storageDir === r.installDir ||
      r.storageDir.startsWith(`${r.installDir}/`) ||
      r.installDir.startsWith(`${r.storageDir}/`))
  ) {
    bad(
      "storageDir",
      r.storageDir,
      `overlaps installDir (${r.installDir}); keep registry data apart`,
    );
  }
  if (typeof r.image !== "string" || !IMAGE_RE.test(r.image) || r.image.endsWith(":latest")) {
    bad(
      "image",
      r.image,
      "must be a repository:tag held by the archive (a pinned tag, not latest), e.g. registry:2.8.3",
    );
  }
  const archive = (key: string, p: string, shaKey: string, sha: string): void => {
    if (!p) bad(key, p, "is required");
    else if (!fs.existsSync(p) || !fs.statSync(p).isFile())
      bad(key, p, "is not a file on this machine; point it at the archive in the offline bundle");
    if (!sha) bad(shaKey, sha, "is required; use the output of sha256sum <archive>");
    else if (!isSha256Hex(sha))
      bad(
        shaKey,
        sha,
        "is not a sha256 (64 lowercase hex digits); use the output of sha256sum <archive>",
      );
  };
  archive("imageArchivePath", r.imageArchivePath, "imageArchiveSha256", r.imageArchiveSha256);
  if (r.harborImages)
    archive(
      "harborImagesArchivePath",
      r.harborImages.archivePath,
      "harborImagesArchiveSha256",
      r.harborImages.sha256,
    );
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(r.username))
    bad("username", r.username, "must be letters, digits, '.', '_' and '-' (no ':')");
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(r.containerName))
    bad("containerName", r.containerName, "is not a container name");
  if (
    !Number.isInteger(r.healthTimeoutSeconds) ||
    r.healthTimeoutSeconds < 10 ||
    r.healthTimeoutSeconds > 3600
  )
    bad(
      "healthTimeoutSeconds",
      r.healthTimeoutSeconds,
      "must be a whole number from 10 to 3600 seconds",
    );
  if (
    r.identityFile !== undefined &&
    (!path.isAbsolute(r.identityFile) || /[\s"'\\]/.test(r.identityFile))
  )
    bad("identityFile", r.identityFile, "must be an absolute path without spaces or quotes");
  if (
    typeof args.password === "string" &&
    (args.password.length === 0 || Buffer.byteLength(args.password, "utf8") > 72)
  ) {
    errors.push({
      propertyPath: "password",
      reason: "[secret] must be 1 to 72 bytes (bcrypt's limit)",
    });
  }
  if (errors.length > 0) {
    throw new pulumi.InputPropertiesError({
      message: `DistributionRegistry ${name}: ${errors.length} invalid argument${errors.length === 1 ? "" : "s"}; nothing was created:\n${errors.map((e) => `  - ${e.propertyPath}: ${e.reason}`).join("\n")}`,
      errors,
    });
  }
  return r;
}

/** bcrypt cost of the htpasswd line. */
export const BCRYPT_COST = 10;

/**
 * The htpasswd line. The salt is derived from the instance, user and
 * password, so the same inputs give the same line (no churn on every `up`)
 * while each instance and user gets its own salt.
 */
export function htpasswdLine(instance: string, username: string, password: string): string {
  if (Buffer.byteLength(password, "utf8") > 72)
    throw new Error("htpasswdLine: the password is longer than bcrypt's 72 bytes");
  const salt = createHash("sha256")
    .update(`casd-registry distribution htpasswd\0${instance}\0${username}\0${password}`)
    .digest()
    .subarray(0, 16);
  return `${username}:${bcryptHash(password, salt, BCRYPT_COST)}`;
}

/** `ssh://user@host:port` for the docker provider (IPv6 in brackets). */
export function dockerHostUrl(user: string, address: string, port: number): string {
  return `ssh://${user}@${address.includes(":") ? `[${address}]` : address}:${port}`;
}

/**
 * The docker provider's extra ssh options: strict host key checking against
 * exactly the pinned key, through `KnownHostsCommand` (`%H` is the name ssh
 * looks up, so it matches any port), with no known_hosts file read or written.
 */
export function dockerSshOpts(hostKey: string, identityFile?: string): string[] {
  const key = hostKey.trim().split(/\s+/).slice(0, 2).join(" ");
  if (!/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+=*$/.test(key)) {
    throw new Error(`dockerSshOpts: ${JSON.stringify(hostKey)} is not an OpenSSH public key line`);
  }
  return [
    "-o", "StrictHostKeyChecking=yes",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", `KnownHostsCommand=/bin/echo %H ${key}`,
    "-o", "BatchMode=yes",
    "-o", "ConnectTimeout=15",
    ...(identityFile ? ["-o", `IdentityFile=${identityFile}`, "-o", "IdentitiesOnly=yes"] : []),
  ]; // prettier-ignore
}

/** The image id the load step printed (`casd: load: image sha256:...`). */
export function parseLoadedImageId(stdout: string): string {
  const m = /^casd: load: image (sha256:[0-9a-f]{64})$/m.exec(stdout);
  if (!m) throw new Error(`the load step did not report an image id:\n${stdout}`);
  return m[1];
}

export class DistributionRegistry extends pulumi.ComponentResource {
  /** `hostname:port`, what clients and `helm.mirrorRegistry` use. */
  public readonly endpoint: pulumi.Output<string>;
  /** The image id the container runs. */
  public readonly imageId: pulumi.Output<string>;
  public readonly containerName: pulumi.Output<string>;
  /** Registry storage on the host (kept on destroy). */
  public readonly storageDir: pulumi.Output<string>;
  /** Resolves (to true) once the health check passed (and, in mirror mode, Harbor's images are pushed). */
  public readonly ready: pulumi.Output<boolean>;
  /** Mirror mode: the push step's summary line; empty otherwise. */
  public readonly harborImagesSummary: pulumi.Output<string>;
  /** The docker provider bound to the host's engine (for further containers on it). */
  public readonly provider: docker.Provider;

  constructor(
    name: string,
    args: DistributionRegistryArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("casd:distribution:DistributionRegistry", name, {}, opts);
    const r = resolveDistributionArgs(name, args);
    const connection = sshConnection({
      address: args.address,
      port: r.sshPort,
      user: r.user,
      hostKey: args.hostKey,
      privateKey: args.privateKey,
      dialErrorLimit: args.dialErrorLimit,
      perDialTimeout: args.perDialTimeout,
    });
    const run = (script: string): string => remoteInvocation(script, { sudo: r.sudo });
    const journal = (step: string): string => `${name}-${step}`;
    const paths = scripts.instancePaths(r.installDir, name);
    // Every first step waits for the host room by data flow (dependsOn takes resources only).
    const gate = pulumi.output(args.ready ?? true);
    const gated = <T>(v: T): pulumi.Output<T> => gate.apply(() => v);
    const base = { connection, addPreviousOutputInEnv: false };
    const stepOpts = (
      dependsOn: pulumi.Resource[],
      secret = false,
    ): pulumi.CustomResourceOptions => ({
      parent: this,
      dependsOn,
      deleteBeforeReplace: true,
      ...(secret ? { additionalSecretOutputs: ["stdout", "stderr"] } : {}),
    });
    const password = pulumi.secret(args.password);

    // 1. Upload the image archive (a path per content: an old one never overwrites a new one).
    const archiveRemote = `${r.installDir}/images/${name}-${r.imageArchiveSha256.slice(0, 16)}-${path.basename(r.imageArchivePath)}`;
    const archive = new command.remote.CopyToRemote(
      `${name}-archive`,
      {
        connection,
        source: new pulumi.asset.FileAsset(r.imageArchivePath),
        remotePath: gated(archiveRemote),
        triggers: [r.imageArchiveSha256],
      },
      { parent: this, deleteBeforeReplace: true },
    );

    // 2. Verify and load it (skipped when the engine has that image id).
    const loadArgs = {
      journal: journal("load"),
      archivePath: archiveRemote,
      sha256: r.imageArchiveSha256,
      image: r.image,
    };
    const loadScript = scripts.renderLoadScript(loadArgs);
    const loadDelete = scripts.renderLoadDeleteScript(loadArgs);
    const load = new command.remote.Command(
      `${name}-load`,
      {
        ...base,
        create: run(loadScript),
        delete: run(loadDelete),
        triggers: [sha256Hex(loadScript, loadDelete)],
      },
      stepOpts([archive]),
    );

    // 3. Storage and config directories, config.yml (no secrets in it).
    const config = scripts.renderRegistryConfig({
      instance: name,
      hostname: r.hostname,
      listenPort: r.network === "host" ? r.port : scripts.BRIDGE_PORT,
      debugPort: r.debugPort,
      certFile: path.posix.basename(r.certPath),
      keyFile: path.posix.basename(r.keyPath),
      deleteEnabled: r.deleteEnabled,
    });
    const configArgs = {
      journal: journal("config"),
      storageDir: r.storageDir,
      etcDir: paths.etcDir,
      configPath: paths.configPath,
      config,
    };
    const configScript = scripts.renderConfigScript(configArgs);
    const configDelete = scripts.renderConfigDeleteScript(configArgs);
    const configStep = new command.remote.Command(
      `${name}-config`,
      {
        ...base,
        create: gated(run(configScript)),
        delete: run(configDelete),
        triggers: [sha256Hex(configScript, configDelete)],
      },
      stepOpts([]),
    );

    // 4. htpasswd: bcrypt computed here, shipped on stdin, never logged.
    const line = pulumi.secret(
      pulumi.output(password).apply((pw) => htpasswdLine(name, r.username, pw)),
    );
    const authArgs = {
      journal: journal("auth"),
      authDir: paths.authDir,
      htpasswdPath: paths.htpasswdPath,
    };
    const authScript = scripts.renderAuthScript(authArgs);
    const authDelete = scripts.renderAuthDeleteScript(authArgs);
    const authHash = pulumi.secret(
      line.apply((l) => sha256Hex(authScript, authDelete, sha256Hex(l))),
    );
    const auth = new command.remote.Command(
      `${name}-auth`,
      {
        ...base,
        create: gated(run(authScript)),
        delete: run(authDelete),
        stdin: line.apply((l) => `${l}\n`),
        logging: "none",
        triggers: [authHash],
      },
      // After config: both create directories under the instance's base directory.
      stepOpts([configStep], true),
    );

    // 5. The docker provider on the host's engine, host key pinned.
    this.provider = new docker.Provider(
      `${name}-docker`,
      {
        host: pulumi.output(args.address).apply((a) => dockerHostUrl(r.user, a, r.sshPort)),
        sshOpts: pulumi.output(args.hostKey).apply((k) => dockerSshOpts(k, r.identityFile)),
      },
      { parent: this },
    );

    // 6. The container: the loaded image id, the files above, data on the host.
    const imageId = pulumi.unsecret(load.stdout).apply(parseLoadedImageId);
    const labels: docker.types.input.ContainerLabel[] = [
      { label: "casd.room", value: "distribution" },
      { label: "casd.instance", value: name },
      { label: "casd.config-sha256", value: sha256Hex(config) },
      { label: "casd.auth-sha256", value: authHash },
    ];
    if (args.tlsRevision !== undefined)
      labels.push({ label: "casd.tls-revision", value: args.tlsRevision });
    const container = new docker.Container(
      `${name}-container`,
      {
        name: r.containerName,
        image: imageId,
        restart: "always",
        mustRun: true,
        networkMode: r.network,
        ports:
          r.network !== "host"
            ? [{ internal: scripts.BRIDGE_PORT, external: r.port, protocol: "tcp" }]
            : [],
        volumes: [
          { hostPath: r.storageDir, containerPath: scripts.CONTAINER_PATHS.storage },
          {
            hostPath: path.posix.dirname(r.certPath),
            containerPath: scripts.CONTAINER_PATHS.certs,
            readOnly: true,
          },
          { hostPath: paths.authDir, containerPath: scripts.CONTAINER_PATHS.auth, readOnly: true },
          { hostPath: paths.etcDir, containerPath: scripts.CONTAINER_PATHS.etc, readOnly: true },
        ],
        healthcheck: {
          tests: scripts.healthcheckTest(r.debugPort),
          interval: "10s",
          timeout: "5s",
          retries: 3,
          startPeriod: "10s",
        },
        labels,
        logDriver: "json-file",
        logOpts: { "max-size": "50m", "max-file": "5" },
        wait: true,
        waitTimeout: r.healthTimeoutSeconds,
        removeVolumes: false,
        destroyGraceSeconds: 30,
      },
      {
        parent: this,
        provider: this.provider,
        dependsOn: [load, configStep, auth],
        deleteBeforeReplace: true,
      },
    );

    // 7. Health: healthy in Docker, TLS verifies with the CA, auth enforced.
    const healthScript = scripts.renderHealthScript({
      container: r.containerName,
      hostname: r.hostname,
      port: r.port,
      caPath: r.caPath,
      username: r.username,
      attempts: Math.ceil(r.healthTimeoutSeconds / 2),
    });
    const health = new command.remote.Command(
      `${name}-health`,
      {
        ...base,
        create: run(healthScript),
        stdin: pulumi.output(password).apply((pw) => `${pw}\n`),
        logging: "none",
        triggers: [sha256Hex(healthScript), container.id],
      },
      stepOpts([container], true),
    );

    // 8. Mirror mode: Harbor's images from the installer's archive into this registry.
    let summary: pulumi.Output<string> = pulumi.output("");
    let last: command.remote.Command = health;
    if (r.harborImages) {
      const h = r.harborImages;
      const remote = `${r.installDir}/images/${name}-${h.sha256.slice(0, 16)}-${path.basename(h.archivePath)}`;
      const copy = new command.remote.CopyToRemote(
        `${name}-harbor-archive`,
        {
          connection,
          source: new pulumi.asset.FileAsset(h.archivePath),
          remotePath: gated(remote),
          triggers: [h.sha256],
        },
        { parent: this, deleteBeforeReplace: true },
      );
      const registry = pulumi.output(
        args.pushRegistry ??
          pulumi.output(args.address).apply((a) => `${a.includes(":") ? `[${a}]` : a}:${r.port}`),
      );
      const pushScript = registry.apply((reg) =>
        scripts.renderMirrorPushScript({
          journal: journal("harbor-images"),
          archivePath: remote,
          sha256: h.sha256,
          registry: reg,
          caPath: r.caPath,
          username: r.username,
        }),
      );
      const pushDelete = scripts.renderMirrorPushDeleteScript({
        journal: journal("harbor-images"),
        archivePath: remote,
      });
      const push = new command.remote.Command(
        `${name}-harbor-images`,
        {
          ...base,
          create: pushScript.apply(run),
          delete: run(pushDelete),
          stdin: pulumi.output(password).apply((pw) => `${pw}\n`),
          logging: "none",
          triggers: [pushScript.apply((s) => sha256Hex(s, pushDelete))],
        },
        stepOpts([copy, health], true),
      );
      summary = pulumi
        .unsecret(push.stdout)
        .apply((out) => /^casd: harbor-images: .*$/m.exec(out)?.[0] ?? "");
      last = push;
    }

    this.endpoint = pulumi.output(r.port === 443 ? r.hostname : `${r.hostname}:${r.port}`);
    this.imageId = imageId;
    this.containerName = container.name;
    this.storageDir = pulumi.output(r.storageDir);
    this.ready = pulumi.unsecret(pulumi.all([health.stdout, last.stdout])).apply(() => true);
    this.harborImagesSummary = summary;
    this.registerOutputs({
      endpoint: this.endpoint,
      imageId: this.imageId,
      containerName: this.containerName,
      storageDir: this.storageDir,
      ready: this.ready,
      harborImagesSummary: this.harborImagesSummary,
    });
  }
}

/** What the wiring helpers need from the host room and the PKI room. */
export interface DistributionWiring {
  /** The host room's `ready`. */
  hostReady: pulumi.Input<unknown>;
  /** The PKI room's outputs: the container is replaced when either changes. */
  caFingerprintSha256: pulumi.Input<string>;
  fullChainPem: pulumi.Input<string>;
}

function commonArgs(
  cfg: StackConfig,
  w: DistributionWiring,
): Omit<DistributionRegistryArgs, "hostname" | "port" | "debugPort"> {
  const h = cfg.registryHost;
  const tls = tlsPaths(h.certDir);
  const d = cfg.distribution;
  if (!d.password || !d.imageArchivePath || !d.imageArchiveSha256) {
    throw new Error(
      "distribution: config must carry distributionPassword, distribution.imageArchivePath and distribution.imageArchiveSha256 (parseStackConfig requires them for deploy distribution or an enabled mirror)",
    );
  }
  if (h.bastion)
    throw new Error(
      "distribution: registryHost.bastion is not supported by the docker provider path (its ssh options pin only the registry host's key); reach the host directly",
    );
  return {
    address: h.address,
    sshPort: h.port,
    user: h.user,
    hostKey: h.hostKey,
    privateKey: cfg.sshPrivateKey,
    identityFile: d.identityFile,
    sudo: h.sudo,
    dialErrorLimit: h.dialErrorLimit,
    perDialTimeout: h.perDialTimeout,
    ready: w.hostReady,
    network: d.network,
    dataDir: h.dataDir,
    installDir: h.installDir,
    certPath: tls.certPath,
    keyPath: tls.keyPath,
    caPath: tls.caPath,
    tlsRevision: pulumi
      .all([w.caFingerprintSha256, w.fullChainPem])
      .apply(([fp, chain]) => sha256Hex(fp, chain)),
    image: d.image,
    imageArchivePath: d.imageArchivePath,
    imageArchiveSha256: d.imageArchiveSha256,
    username: d.username,
    password: d.password,
    deleteEnabled: d.deleteEnabled,
    healthTimeoutSeconds: 120,
  };
}

/** Arguments of the `deploy: distribution` registry from the stack config (name it "registry"). */
export function distributionRegistryArgs(
  cfg: StackConfig,
  w: DistributionWiring,
): DistributionRegistryArgs {
  return {
    ...commonArgs(cfg, w),
    hostname: cfg.hostname,
    port: cfg.distribution.port,
    debugPort: cfg.distribution.debugPort,
    containerName: "casd-registry",
  };
}

/** Arguments of the Helm path's bootstrap mirror from the stack config (name it "mirror"). */
export function mirrorRegistryArgs(
  cfg: StackConfig,
  w: DistributionWiring,
): DistributionRegistryArgs {
  const m = cfg.distribution.mirror;
  return {
    ...commonArgs(cfg, w),
    hostname: m.hostname,
    port: m.port,
    debugPort: m.debugPort,
    containerName: "casd-mirror",
    harborImagesArchivePath: m.harborImagesArchivePath,
    harborImagesArchiveSha256: m.harborImagesArchiveSha256,
  };
}
