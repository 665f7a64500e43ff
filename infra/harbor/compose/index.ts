/**
 * HarborCompose: Harbor from the offline installer (docker compose) on the
 * registry host. Chosen by `deploy: compose`.
 *
 * Steps (one `remote.Command` each, in this order):
 *   layout -> data -> upload (CopyToRemote) -> extract (sha256 [+ signature] verified on the host)
 *   -> apply (harbor.yml via stdin; install | reconfigure | upgrade) -> health -> admin-password
 */
import * as fs from "node:fs";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { HarborConfig, StackConfig } from "../../config";
import {
  registryHostConnectionArgs,
  sshConnection,
  type Connection,
} from "../../remote/connection";
import { remoteInvocation, sha256Hex } from "../../remote/script";
import {
  harborConfigSchemaVersion,
  HarborYmlInput,
  renderHarborYml,
  renderHarborYmlForTrigger,
} from "./harbor-yml";
import {
  composePaths,
  harborEndpoint,
  renderAdminPasswordScript,
  renderApplyDelete,
  renderApplyScript,
  renderDataDelete,
  renderDataScript,
  renderExtractDelete,
  renderExtractScript,
  renderHealthScript,
  renderLayoutDelete,
  renderLayoutScript,
} from "./scripts";

export * from "./harbor-yml";
export * from "./scripts";

export interface HarborComposeArgs {
  /** SSH connection to the registry host, from `sshConnection` (host key pinned). */
  connection: pulumi.Input<Connection>;
  /** Run the steps through `sudo -n` (default false: the login user is root). */
  sudo?: pulumi.Input<boolean>;
  /** The registry's DNS name, as in the server certificate (StackConfig.hostname). */
  hostname: pulumi.Input<string>;
  /** The stack's Harbor settings (StackConfig.harbor), validated by parseStackConfig. */
  harbor: HarborConfig;
  /** Server certificate (full chain) path on the host, from the host room. */
  certPath: pulumi.Input<string>;
  /** Server key path on the host, from the host room. */
  keyPath: pulumi.Input<string>;
  /** CA certificate path on the host, from the host room (documented for operators; the checks use caCertPem). */
  caPath?: pulumi.Input<string>;
  /** Harbor's data_volume on the host (registryHost.dataDir), from the host room. */
  dataDir: pulumi.Input<string>;
  /** Where installers are uploaded and extracted (registryHost.installDir); this room uses `<installDir>/harbor`. */
  installDir: string;
  /** The host room's readiness output: nothing here starts before it resolves. */
  ready?: pulumi.Input<unknown>;
  /** The stack's CA (PEM): the health check and the API calls verify Harbor with it (never -k). */
  caCertPem: pulumi.Input<string>;
  /** Fingerprint (or hash) of the server certificate: a rotation re-runs prepare and up. */
  certFingerprint: pulumi.Input<string>;
  /** Image holding Harbor's `migrate` command (default `goharbor/prepare:v<version>`, loaded from the installer). */
  prepareImage?: pulumi.Input<string>;
  /** S3 secret key (secret), needed with harbor.s3.accessKey. */
  s3SecretKey?: pulumi.Input<string>;
  /** Password of the external Redis (secret), when it asks one. */
  externalRedisPassword?: pulumi.Input<string>;
}

/** Synchronous validation: every problem at once, before any resource exists. */
export function validateHarborComposeArgs(
  args: HarborComposeArgs,
): pulumi.InputPropertyErrorDetails[] {
  const errs: pulumi.InputPropertyErrorDetails[] = [];
  const h = args.harbor;
  if (!h.installerPath) {
    errs.push({
      propertyPath: "harbor.installerPath",
      reason: `is required for deploy compose: pulumi config set --path harbor.installerPath offline/bundle/harbor-offline-installer-v${h.version}.tgz`,
    });
  } else if (!fs.existsSync(h.installerPath)) {
    errs.push({
      propertyPath: "harbor.installerPath",
      reason: `'${h.installerPath}' does not exist on this machine: point it at the offline installer in the bundle`,
    });
  }
  if (!h.installerSha256 || !/^[0-9a-f]{64}$/.test(h.installerSha256)) {
    errs.push({
      propertyPath: "harbor.installerSha256",
      reason: `'${h.installerSha256 ?? ""}' is not a sha256: pulumi config set --path harbor.installerSha256 $(sha256sum <installer> | cut -d' ' -f1)`,
    });
  }
  try {
    harborConfigSchemaVersion(h.version);
  } catch (e) {
    errs.push({ propertyPath: "harbor.version", reason: (e as Error).message });
  }
  if (h.http === "off") {
    errs.push({
      propertyPath: "harbor.http",
      reason:
        "'off' cannot be honoured by the offline installer: Harbor's nginx always listens on the http port and redirects to https; set harbor.http to redirect (and close harbor.httpPort at the host firewall if it must not answer)",
    });
  }
  if (h.httpPort === h.httpsPort)
    errs.push({
      propertyPath: "harbor.httpPort",
      reason: `${h.httpPort} equals harbor.httpsPort: choose another port`,
    });
  if (!h.adminPassword)
    errs.push({
      propertyPath: "harborAdminPassword",
      reason: "is required: pulumi config set --secret harborAdminPassword <a strong password>",
    });
  if (!h.databasePassword)
    errs.push({
      propertyPath: "harborDatabasePassword",
      reason:
        "is required (never the template's root123): pulumi config set --secret harborDatabasePassword <a strong password>",
    });
  if ((h.signaturePath === undefined) !== (h.signingKeyPath === undefined)) {
    errs.push({
      propertyPath: h.signaturePath ? "harbor.signingKeyPath" : "harbor.signaturePath",
      reason:
        "is required with the other: set both the .asc and the pinned public key file, or neither",
    });
  }
  for (const [key, p] of [
    ["harbor.signaturePath", h.signaturePath],
    ["harbor.signingKeyPath", h.signingKeyPath],
  ] as const) {
    if (p !== undefined && !fs.existsSync(p))
      errs.push({
        propertyPath: key,
        reason: `'${p}' does not exist on this machine: point it at the file in the bundle`,
      });
  }
  if (h.signingKeyPath && fs.existsSync(h.signingKeyPath)) {
    try {
      pgpKeyring(fs.readFileSync(h.signingKeyPath));
    } catch (e) {
      errs.push({ propertyPath: "harbor.signingKeyPath", reason: (e as Error).message });
    }
  }
  if (!/^\/[A-Za-z0-9._/-]*$/.test(args.installDir) || args.installDir === "/") {
    errs.push({
      propertyPath: "installDir",
      reason: `'${args.installDir}' is not an absolute path: use registryHost.installDir such as /opt/casd-registry`,
    });
  }
  if (h.s3?.accessKey && args.s3SecretKey === undefined)
    errs.push({
      propertyPath: "s3SecretKey",
      reason: "is required with harbor.s3.accessKey: pass the S3 secret key (secret)",
    });
  return errs;
}

/** A public key file as a binary OpenPGP keyring for gpgv (ASCII armor is removed here). */
export function pgpKeyring(file: Buffer): Buffer {
  const text = file.toString("latin1");
  if (!text.includes("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
    // Binary packets start with a public-key packet tag (old format 0x99 or new format 0xc6).
    if (file.length > 2 && (file[0] === 0x99 || file[0] === 0xc6 || file[0] === 0x98)) return file;
    throw new Error(
      "is neither an armored nor a binary OpenPGP public key: export it with gpg --export --armor <key id>",
    );
  }
  const body = text
    .split("-----BEGIN PGP PUBLIC KEY BLOCK-----")[1]
    .split("-----END PGP PUBLIC KEY BLOCK-----")[0];
  const lines = body.split(/\r?\n/);
  // Armor headers end at the first empty line; the CRC line starts with '='.
  const start = lines.findIndex((l, i) => i > 0 && l.trim() === "");
  const b64 = lines
    .slice(start + 1)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("="))
    .join("");
  const out = Buffer.from(b64, "base64");
  if (out.length < 3)
    throw new Error(
      "holds an empty armored key block: export the key again with gpg --export --armor <key id>",
    );
  return out;
}

export class HarborCompose extends pulumi.ComponentResource {
  /** `https://<hostname>[:port]`; resolves only after Harbor answered healthy. */
  public readonly healthyEndpoint: pulumi.Output<string>;
  /** The Harbor version that runs (resolves after the health check). */
  public readonly version: pulumi.Output<string>;
  /** Install directory of this version on the host (`<installDir>/harbor/v<version>-<sha12>/harbor`). */
  public readonly harborDir: pulumi.Output<string>;

  constructor(name: string, args: HarborComposeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("casd:harbor:HarborCompose", name, {}, opts);
    const errs = validateHarborComposeArgs(args);
    if (errs.length) {
      throw new pulumi.InputPropertiesError({
        message:
          `HarborCompose ${name}: ${errs.length} invalid input${errs.length === 1 ? "" : "s"}; nothing was changed:\n` +
          errs.map((e) => `  - ${e.propertyPath}: ${e.reason}`).join("\n"),
        errors: errs,
      });
    }
    const h = args.harbor;
    const version = h.version;
    const sha256 = h.installerSha256!;
    const paths = composePaths(args.installDir, version, sha256);
    const sudo = pulumi.output(args.sudo ?? false);
    const connection = args.connection;
    const ready = pulumi.output(args.ready ?? "");
    const run = (script: pulumi.Input<string>) =>
      pulumi.all([sudo, script, ready]).apply(([s, t]) => remoteInvocation(t, { sudo: s }));
    const secretOpts = { logging: "none" as const };

    const layout = new command.remote.Command(
      `${name}-layout`,
      {
        connection,
        create: run(renderLayoutScript(paths)),
        delete: run(renderLayoutDelete(paths)),
        triggers: [paths.base],
      },
      { parent: this },
    );

    const dataVolume = pulumi.output(args.dataDir);
    const dataScripts = dataVolume.apply((d) => ({
      dataVolume: d,
      purgeOnDestroy: h.purgeDataOnDestroy,
      adminState: paths.adminState,
    }));
    const data = new command.remote.Command(
      `${name}-data`,
      {
        connection,
        create: run(dataScripts.apply(renderDataScript)),
        delete: run(dataScripts.apply(renderDataDelete)),
        triggers: [dataVolume, h.purgeDataOnDestroy],
      },
      { parent: this, dependsOn: [layout] },
    );

    const upload = new command.remote.CopyToRemote(
      `${name}-upload`,
      {
        connection,
        source: new pulumi.asset.FileAsset(h.installerPath!),
        remotePath: paths.archive,
        triggers: [sha256],
      },
      { parent: this, dependsOn: [layout] },
    );

    let signature: { ascArmored: string; keyringBase64: string } | undefined;
    if (h.signaturePath && h.signingKeyPath) {
      signature = {
        ascArmored: fs.readFileSync(h.signaturePath, "utf8"),
        keyringBase64: pgpKeyring(fs.readFileSync(h.signingKeyPath)).toString("base64"),
      };
    }
    const extract = new command.remote.Command(
      `${name}-extract`,
      {
        connection,
        create: run(renderExtractScript({ paths, version, sha256, signature })),
        delete: run(renderExtractDelete(paths)),
        triggers: [
          sha256,
          version,
          signature ? sha256Hex(signature.ascArmored, signature.keyringBase64) : "unsigned",
        ],
      },
      { parent: this, dependsOn: [upload] },
    );

    const ymlInput: pulumi.Output<HarborYmlInput> = pulumi
      .all([
        args.hostname,
        args.certPath,
        args.keyPath,
        dataVolume,
        h.adminPassword!,
        h.databasePassword!,
        args.s3SecretKey,
        args.externalRedisPassword,
      ])
      .apply(
        ([
          hostname,
          certPath,
          keyPath,
          dataDir,
          adminPassword,
          databasePassword,
          s3SecretKey,
          externalRedisPassword,
        ]) => ({
          hostname,
          version,
          httpsPort: h.httpsPort,
          httpPort: h.httpPort,
          certificatePath: certPath,
          privateKeyPath: keyPath,
          adminPassword,
          databasePassword,
          dataVolume: dataDir,
          jobserviceWorkers: h.jobserviceWorkers,
          logLevel: h.logLevel,
          logRotateCount: h.logRotateCount,
          logRotateSize: h.logRotateSize,
          metrics: h.metrics,
          externalDatabase: h.externalDatabase,
          externalRedis: h.externalRedis,
          externalRedisPassword,
          s3: h.s3,
          s3SecretKey,
        }),
      );
    const harborYml = pulumi.secret(ymlInput.apply(renderHarborYml));
    // The trigger hash covers everything but the admin password (applied through the API) and is
    // kept secret in state: an unsalted hash of a document holding the database password would
    // let anyone with the state file test guesses of that password offline.
    const configHash = pulumi.secret(
      ymlInput.apply((i) => sha256Hex(renderHarborYmlForTrigger(i))),
    );
    const prepareImage = pulumi.output(args.prepareImage ?? `goharbor/prepare:v${version}`);
    const applyScript = pulumi
      .all([args.certPath, args.keyPath, dataVolume, prepareImage, args.certFingerprint])
      .apply(([certPath, keyPath, dataDir, image, fp]) =>
        renderApplyScript({
          paths,
          version,
          schemaVersion: harborConfigSchemaVersion(version),
          withTrivy: h.withTrivy,
          certPath,
          keyPath,
          dataVolume: dataDir,
          prepareImage: image,
          certFingerprint: fp,
        }),
      );
    const applyTriggers = [paths.installId, configHash, args.certFingerprint, h.withTrivy];
    const apply = new command.remote.Command(
      `${name}-apply`,
      {
        connection,
        create: run(applyScript),
        delete: run(renderApplyDelete(paths)),
        stdin: harborYml,
        triggers: applyTriggers,
        ...secretOpts,
      },
      {
        parent: this,
        dependsOn: [extract, data],
        additionalSecretOutputs: ["stdout", "stderr"],
        // Harbor's own reconfigure is down, prepare, up: the old instance goes down before the new one starts.
        deleteBeforeReplace: true,
      },
    );

    const health = new command.remote.Command(
      `${name}-health`,
      {
        connection,
        create: run(
          pulumi.all([args.hostname, args.caCertPem]).apply(([hostname, ca]) =>
            renderHealthScript({
              hostname,
              httpsPort: h.httpsPort,
              caCertPem: ca,
              timeoutSeconds: h.healthTimeoutSeconds,
            }),
          ),
        ),
        triggers: [...applyTriggers, pulumi.output(args.caCertPem).apply((ca) => sha256Hex(ca))],
      },
      { parent: this, dependsOn: [apply] },
    );

    new command.remote.Command(
      `${name}-admin-password`,
      {
        connection,
        create: run(
          pulumi.all([args.hostname, args.caCertPem]).apply(([hostname, ca]) =>
            renderAdminPasswordScript({
              hostname,
              httpsPort: h.httpsPort,
              caCertPem: ca,
              statePath: paths.adminState,
            }),
          ),
        ),
        stdin: pulumi.secret(h.adminPassword!),
        triggers: [
          pulumi.secret(pulumi.output(h.adminPassword!).apply((p) => sha256Hex("harbor-admin", p))),
        ],
        ...secretOpts,
      },
      { parent: this, dependsOn: [health], additionalSecretOutputs: ["stdout", "stderr"] },
    );

    this.healthyEndpoint = pulumi
      .all([args.hostname, health.stdout])
      .apply(([hostname]) => harborEndpoint(hostname, h.httpsPort));
    this.version = health.stdout.apply(() => version);
    this.harborDir = apply.id.apply(() => paths.harborDir);
    this.registerOutputs({
      healthyEndpoint: this.healthyEndpoint,
      version: this.version,
      harborDir: this.harborDir,
    });
  }
}

/** What the composition root hands over from the host and PKI rooms. */
export interface ComposeWiring {
  host: {
    certPath: pulumi.Input<string>;
    keyPath: pulumi.Input<string>;
    caPath: pulumi.Input<string>;
    dataDir: pulumi.Input<string>;
    ready: pulumi.Input<unknown>;
  };
  pki: {
    caCertPem: pulumi.Input<string>;
    caFingerprintSha256: pulumi.Input<string>;
    serverCertPem: pulumi.Input<string>;
  };
}

/** HarborCompose's args from the stack config and the host and PKI rooms' outputs (the composition root's wiring). */
export function harborComposeArgs(
  cfg: StackConfig,
  host: ComposeWiring["host"],
  pki: ComposeWiring["pki"],
): HarborComposeArgs {
  const h = cfg.registryHost;
  return {
    connection: sshConnection(registryHostConnectionArgs(cfg)),
    sudo: h.sudo,
    hostname: cfg.hostname,
    harbor: cfg.harbor,
    certPath: host.certPath,
    keyPath: host.keyPath,
    caPath: host.caPath,
    dataDir: host.dataDir,
    installDir: h.installDir,
    ready: host.ready,
    caCertPem: pki.caCertPem,
    // A new CA or server certificate re-runs prepare and up.
    certFingerprint: pulumi
      .all([pki.caFingerprintSha256, pki.serverCertPem])
      .apply(([ca, leaf]) => sha256Hex(ca, leaf)),
    s3SecretKey: cfg.harbor.s3SecretKey,
    externalRedisPassword: cfg.harbor.redisPassword,
  };
}
