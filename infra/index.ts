/**
 * Composition root of casd-registry: config -> rooms -> exports. Nothing
 * else lives here; each room is a component under infra/<room>/.
 *
 *   config ──> pki ──┬─> host ──> harbor/compose | distribution ──(healthy)──┐
 *                    ├─> harbor/helm (no host room) ──────────(deployed)─────┤
 *                    └─────────────────────────────────────────> trust (every client node)
 */
import * as pulumi from "@pulumi/pulumi";
import { loadStackConfig } from "./config";
import { HarborCompose } from "./harbor/compose";
import { HarborHelm } from "./harbor/helm";
import { DistributionRegistry, distributionRegistryArgs, mirrorRegistryArgs } from "./distribution";
import { RegistryHost, registryHostArgs } from "./host";
import { RegistryPki } from "./pki";
import { sshConnection } from "./remote/connection";
import { sha256Hex } from "./remote/script";
import { ClientTrust } from "./trust";

// Validates every key first: a bad config fails here, before any resource exists.
const cfg = loadStackConfig();

const pki = new RegistryPki("registry", {
  hostname: cfg.hostname,
  extraDnsNames: cfg.pki.server.extraDnsNames,
  ipAddresses: [...new Set([cfg.registryHost.address, ...cfg.pki.server.extraIpAddresses])],
  caKey: cfg.pki.ca,
  caCommonName: cfg.pki.ca.commonName,
  caOrganization: cfg.pki.ca.organization,
  caOrganizationalUnit: cfg.pki.ca.organizationalUnit,
  caValidityHours: cfg.pki.ca.validityHours,
  protectCa: cfg.pki.ca.protect,
  caRotation: cfg.pki.ca.rotation,
  serverKey: cfg.pki.server,
  serverOrganization: cfg.pki.server.organization,
  serverValidityHours: cfg.pki.server.validityHours,
  serverEarlyRenewalHours: cfg.pki.server.earlyRenewalHours,
  serverRotation: cfg.pki.server.rotation,
  providedCaCertPem: cfg.pki.providedCaCertPem,
  providedCaKeyPem: cfg.pki.providedCaKeyPem,
});

/** What the trust room waits for before verifying from each node. */
let registryReady: pulumi.Output<unknown>;
/** The registry's HTTPS port as clients reach it. */
let registryPort: number;
let registryEndpoint: pulumi.Output<string>;

// The registry host: every path but helm, and helm when it runs the bootstrap mirror there.
const mirrorCfg = cfg.distribution.mirror;
const host =
  cfg.deploy !== "helm" || mirrorCfg.enabled ? new RegistryHost("registry-host", registryHostArgs(cfg, pki)) : undefined;
const wiring = host && { hostReady: host.ready, caFingerprintSha256: pki.caFingerprintSha256, fullChainPem: pki.fullChainPem };
// The bootstrap mirror of the Helm path: Harbor's images, pushed from the installer's image archive.
const mirror = wiring && mirrorCfg.enabled ? new DistributionRegistry("mirror", mirrorRegistryArgs(cfg, wiring)) : undefined;

if (cfg.deploy === "helm") {
  const harbor = new HarborHelm(
    "harbor",
    {
      hostname: cfg.hostname,
      helm: cfg.helm,
      harbor: cfg.harbor,
      caCertPem: pki.caCertPem,
      fullChainPem: pki.fullChainPem,
      serverKeyPem: pki.serverKeyPem,
      caFingerprintSha256: pki.caFingerprintSha256,
      previousCaCertPem: cfg.trust.previousCaCertPem,
    },
    // The nodes pull Harbor's images from the mirror: it must be serving them first.
    { dependsOn: mirror ? [mirror] : [] },
  );
  registryReady = harbor.releaseStatus;
  registryPort = cfg.helm.expose === "nodePort" ? cfg.helm.httpsNodePort : 443;
  registryEndpoint = harbor.externalUrl;
} else if (cfg.deploy === "compose") {
  const harbor = new HarborCompose("harbor", {
    connection: sshConnection({
      address: cfg.registryHost.address,
      port: cfg.registryHost.port,
      user: cfg.registryHost.user,
      hostKey: cfg.registryHost.hostKey,
      privateKey: cfg.sshPrivateKey,
      bastion: cfg.registryHost.bastion,
      bastionPrivateKey: cfg.bastionPrivateKey,
      dialErrorLimit: cfg.registryHost.dialErrorLimit,
      perDialTimeout: cfg.registryHost.perDialTimeout,
    }),
    sudo: cfg.registryHost.sudo,
    hostname: cfg.hostname,
    harbor: cfg.harbor,
    certPath: host!.certPath,
    keyPath: host!.keyPath,
    caPath: host!.caPath,
    dataDir: host!.dataDir,
    installDir: cfg.registryHost.installDir,
    ready: host!.ready,
    caCertPem: pki.caCertPem,
    // A new CA or server certificate re-runs prepare and up.
    certFingerprint: pulumi.all([pki.caFingerprintSha256, pki.serverCertPem]).apply(([ca, leaf]) => sha256Hex(ca, leaf)),
    s3SecretKey: cfg.harbor.s3SecretKey,
    externalRedisPassword: cfg.harbor.redisPassword,
  });
  registryReady = harbor.healthyEndpoint;
  registryPort = cfg.harbor.httpsPort;
  registryEndpoint = harbor.healthyEndpoint;
} else {
  const registry = new DistributionRegistry("registry", distributionRegistryArgs(cfg, wiring!));
  registryReady = registry.ready;
  registryPort = cfg.distribution.port;
  registryEndpoint = pulumi.interpolate`https://${registry.endpoint}`;
}

const trust = cfg.clients.map((client) => {
  const common = {
    client,
    privateKey: cfg.sshPrivateKey,
    caCertPem: pki.caCertPem,
    caFingerprintSha256: pki.caFingerprintSha256,
    previousCaCertPem: cfg.trust.previousCaCertPem,
    verify: cfg.trust.verify,
  };
  const registryTrust = new ClientTrust(`trust-${client.name}`, { ...common, hostname: cfg.hostname, port: registryPort, registryReady });
  // The mirror's trust on the same node: after the registry's, since both may edit containerd's config.
  const mirrorTrust = mirror
    ? new ClientTrust(
        `trust-mirror-${client.name}`,
        { ...common, hostname: mirrorCfg.hostname, port: mirrorCfg.port, registryReady: mirror.ready },
        { dependsOn: [registryTrust] },
      )
    : undefined;
  return { client: client.name, registryTrust, mirrorTrust };
});

export const hostname = cfg.hostname;
export const deployMode = cfg.deploy;
export const endpoint = registryEndpoint;
export const caCertPem = pki.caCertPem;
export const caFingerprintSha256 = pki.caFingerprintSha256;
export const fullChainPem = pki.fullChainPem;
export const serverCertNotAfter = pki.serverNotAfter;
/** Each client node and the registry authorities it now trusts. */
export const trustedNodes = pulumi.all(
  trust.map((t) => pulumi.all([t.registryTrust.authority, t.mirrorTrust?.authority]).apply(([a, m]) => `${t.client}: ${m ? `${a}, ${m}` : a}`)),
);
/** host:port of the Helm path's bootstrap mirror, or "none". */
export const mirrorEndpoint = mirror ? mirror.endpoint : "none";
