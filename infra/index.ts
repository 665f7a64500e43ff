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
import { HarborCompose, harborComposeArgs } from "./harbor/compose";
import { HarborHelm } from "./harbor/helm";
import { DistributionRegistry, distributionRegistryArgs, mirrorRegistryArgs } from "./distribution";
import { RegistryHost, registryHostArgs } from "./host";
import { RegistryPki, registryPkiArgs } from "./pki";
import { ClientTrust } from "./trust";

// Validates every key first: a bad config fails here, before any resource exists.
const cfg = loadStackConfig();

const pki = new RegistryPki("registry", registryPkiArgs(cfg));

/** What the trust room waits for before verifying from each node. */
let registryReady: pulumi.Output<unknown>;
/** The registry's HTTPS port as clients reach it. */
let registryPort: number;
let registryEndpoint: pulumi.Output<string>;

// The registry host: every path but helm, and helm when it runs the bootstrap mirror there.
const mirrorCfg = cfg.distribution.mirror;
const host =
  cfg.deploy !== "helm" || mirrorCfg.enabled
    ? new RegistryHost("registry-host", registryHostArgs(cfg, pki))
    : undefined;
const wiring = host && {
  hostReady: host.ready,
  caFingerprintSha256: pki.caFingerprintSha256,
  fullChainPem: pki.fullChainPem,
};
// The bootstrap mirror of the Helm path: Harbor's images, pushed from the installer's image archive.
const mirror =
  wiring && mirrorCfg.enabled
    ? new DistributionRegistry("mirror", mirrorRegistryArgs(cfg, wiring))
    : undefined;

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
  const harbor = new HarborCompose("harbor", harborComposeArgs(cfg, host!, pki));

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
  const registryTrust = new ClientTrust(`trust-${client.name}`, {
    ...common,
    hostname: cfg.hostname,
    port: registryPort,
    registryReady,
  });
  // The mirror's trust on the same node: after the registry's, since both may edit containerd's config.
  const mirrorTrust = mirror
    ? new ClientTrust(
        `trust-mirror-${client.name}`,
        {
          ...common,
          hostname: mirrorCfg.hostname,
          port: mirrorCfg.port,
          registryReady: mirror.ready,
        },
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
  trust.map((t) =>
    pulumi
      .all([t.registryTrust.authority, t.mirrorTrust?.authority])
      .apply(([a, m]) => `${t.client}: ${m ? `${a}, ${m}` : a}`),
  ),
);
/** host:port of the Helm path's bootstrap mirror, or "none". */
export const mirrorEndpoint = mirror ? mirror.endpoint : "none";
