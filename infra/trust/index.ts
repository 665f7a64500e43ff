/**
 * ClientTrust: one client node trusts the registry's CA for every runtime it
 * runs (Docker, containerd, podman/CRI-O/skopeo, the OS store, k3s/RKE2).
 *
 * Two remote steps per node, no chain between nodes:
 * - `<name>-install`: one SSH command that reads the CA on stdin and
 *   installs, rotates (a new CA fingerprint re-runs it and removes the old
 *   CA files) and, on delete, removes exactly what it wrote (the node keeps a
 *   manifest of it);
 * - `<name>-verify`: once the registry is up (`registryReady`), the node
 *   proves that the registry's certificate verifies for its hostname with
 *   only the installed trust.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import type { ClientConfig } from "../config";
import { sshConnection } from "../remote/connection";
import { remoteInvocation, renderStepScript, sha256Hex } from "../remote/script";
import {
  registryAuthority,
  renderTrustInstallBody,
  renderTrustRemoveBody,
  renderTrustVerifyBody,
  trustManifestPath,
  trustStdin,
  validateTrustSpec,
  type TrustSpec,
} from "./render";

export * from "./render";

export interface ClientTrustArgs {
  /** The client node from config (name, address, port, user, pinned host key, runtimes, sudo, /etc/hosts pin, push, restartContainerd); plain values, validated at construction. */
  client: ClientConfig;
  /** SSH private key for the node (secret). */
  privateKey: pulumi.Input<string>;
  /** The registry's DNS name, as in its certificate's SAN. */
  hostname: string;
  /** The registry's HTTPS port (default 443: no port in the certs.d directory names). */
  port?: number;
  /** The CA certificate to trust (PEM; from the PKI room). */
  caCertPem: pulumi.Input<string>;
  /** SHA-256 of the CA (from the PKI room): a new value re-runs every node (rotation). */
  caFingerprintSha256: pulumi.Input<string>;
  /** The previous CA (PEM), trusted next to the current one during a rotation's overlap window (default none). */
  previousCaCertPem?: pulumi.Input<string | undefined>;
  /** Resolves when the registry answers (the deploy room's health output); verification waits for it. */
  registryReady?: pulumi.Input<unknown>;
  /** Verify from the node that the registry's certificate verifies with the installed trust (default true). */
  verify?: boolean;
}

/** The plain trust spec of a client node for one registry. */
export function clientTrustSpec(client: ClientConfig, hostname: string, port = 443): TrustSpec {
  return {
    hostname,
    port,
    runtimes: client.runtimes,
    push: client.push,
    etcHostsAddress: client.etcHostsAddress,
    restartContainerd: client.restartContainerd,
  };
}

export class ClientTrust extends pulumi.ComponentResource {
  /** `host` or `host:port`: the directory name under every certs.d. */
  public readonly authority: pulumi.Output<string>;
  /** Where the node records what the install step wrote. */
  public readonly manifestPath: pulumi.Output<string>;
  /** The install step's output: notes (e.g. "containerd restart needed") and the result line. */
  public readonly installStdout: pulumi.Output<string>;
  /** The verification's output (one `ok` line per trusted file), or empty when verify is off. */
  public readonly verifyStdout: pulumi.Output<string>;

  constructor(name: string, args: ClientTrustArgs, opts?: pulumi.ComponentResourceOptions) {
    super("casd:trust:ClientTrust", name, {}, opts);
    const client = args.client;
    const port = args.port ?? 443;
    const spec = clientTrustSpec(client, args.hostname, port);
    const problems = validateTrustSpec(spec).map((reason) => ({
      propertyPath: "client",
      reason: `client ${client.name}: ${reason}`,
    }));
    if (!client.hostKey) {
      problems.push({
        propertyPath: "client.hostKey",
        reason: `client ${client.name}: hostKey is empty; pin the node's SSH host key (ssh-keyscan -t ed25519 ${client.address})`,
      });
    }
    if (problems.length > 0) {
      throw new pulumi.InputPropertiesError({
        message: `ClientTrust ${name}: invalid arguments; nothing was created`,
        errors: problems,
      });
    }

    const connection = sshConnection({
      address: client.address,
      port: client.port,
      user: client.user,
      hostKey: client.hostKey,
      privateKey: args.privateKey,
    });
    const stdin = pulumi
      .all([args.caCertPem, args.previousCaCertPem])
      .apply(([ca, prev]) => trustStdin(ca, prev || undefined));
    // The generation names this node's configuration; the node's manifest records it, and a
    // delete only removes files while the manifest still records its own generation.
    const generation = stdin.apply((text) =>
      sha256Hex("casd:trust:ClientTrust", name, client.name, JSON.stringify(spec), text).slice(
        0,
        32,
      ),
    );
    const scripts = generation.apply((gen) => {
      const o = { root: "/", node: client.name, generation: gen };
      const install = renderStepScript({
        step: `trust ${registryAuthority(spec.hostname, spec.port)}`,
        body: renderTrustInstallBody(spec, o),
      });
      const remove = renderStepScript({
        step: `untrust ${registryAuthority(spec.hostname, spec.port)}`,
        body: renderTrustRemoveBody(spec, o),
      });
      return {
        install: remoteInvocation(install, { sudo: client.sudo }),
        remove: remoteInvocation(remove, { sudo: client.sudo }),
        hash: sha256Hex(install, remove),
      };
    });

    const install = new command.remote.Command(
      `${name}-install`,
      {
        connection,
        create: scripts.install,
        // An update (a new CA, new runtimes) runs the same idempotent script in place: no
        // replacement, so no create-then-delete race over the same files.
        update: scripts.install,
        delete: scripts.remove,
        stdin,
        triggers: [args.caFingerprintSha256, scripts.hash],
        addPreviousOutputInEnv: false,
      },
      { parent: this },
    );

    let verifyStdout: pulumi.Output<string> = pulumi.output("");
    if (args.verify ?? true) {
      const verifyScript = remoteInvocation(
        renderStepScript({
          step: `verify ${registryAuthority(spec.hostname, spec.port)}`,
          body: renderTrustVerifyBody(spec, { node: client.name }),
        }),
        {
          sudo: client.sudo,
        },
      );
      const verify = new command.remote.Command(
        `${name}-verify`,
        {
          connection,
          create: verifyScript,
          // Re-verify after every install change and whenever the registry is redeployed.
          triggers: [
            args.caFingerprintSha256,
            scripts.hash,
            pulumi
              .output(args.registryReady ?? true)
              .apply((r) => sha256Hex(JSON.stringify(r ?? null) ?? "null")),
          ],
          addPreviousOutputInEnv: false,
        },
        { parent: this, dependsOn: [install] },
      );
      verifyStdout = verify.stdout;
    }

    this.authority = pulumi.output(registryAuthority(spec.hostname, spec.port));
    this.manifestPath = pulumi.output(trustManifestPath(spec.hostname, spec.port));
    this.installStdout = install.stdout;
    this.verifyStdout = verifyStdout;
    this.registerOutputs({
      authority: this.authority,
      manifestPath: this.manifestPath,
      installStdout: this.installStdout,
      verifyStdout: this.verifyStdout,
    });
  }
}
