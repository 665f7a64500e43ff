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

if (cfg.deploy === "helm") {
  const harbor = new HarborHelm("harbor", {
    hostname: cfg.hostname,
    helm: cfg.helm,
    harbor: cfg.harbor,
    caCertPem: pki.caCertPem,
    fullChainPem: pki.fullChainPem,
    serverKeyPem: pki.serverKeyPem,
    caFingerprintSha256: pki.caFingerprintSha256,
    previousCaCertPem: cfg.trust.previousCaCertPem,
  });
  registryReady = harbor.releaseStatus;
  registryPort = cfg.helm.expose === "nodePort" ? cfg.helm.httpsNodePort : 443;
  registryEndpoint = harbor.externalUrl;
} else {
  const host = new RegistryHost("registry-host", registryHostArgs(cfg, pki));
  const connection = sshConnection({
    address: cfg.registryHost.address,
    port: cfg.registryHost.port,
    user: cfg.registryHost.user,
    hostKey: cfg.registryHost.hostKey,
    privateKey: cfg.sshPrivateKey,
    bastion: cfg.registryHost.bastion,
    bastionPrivateKey: cfg.bastionPrivateKey,
    dialErrorLimit: cfg.registryHost.dialErrorLimit,
    perDialTimeout: cfg.registryHost.perDialTimeout,
  });
  if (cfg.deploy === "compose") {
    const harbor = new HarborCompose("harbor", {
      connection,
      sudo: cfg.registryHost.sudo,
      hostname: cfg.hostname,
      harbor: cfg.harbor,
      certPath: host.certPath,
      keyPath: host.keyPath,
      caPath: host.caPath,
      dataDir: host.dataDir,
      installDir: cfg.registryHost.installDir,
      ready: host.ready,
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
    throw new Error("deploy: distribution is wired below");
  }
}

const trust = cfg.clients.map(
  (client) =>
    new ClientTrust(`trust-${client.name}`, {
      client,
      privateKey: cfg.sshPrivateKey,
      hostname: cfg.hostname,
      port: registryPort,
      caCertPem: pki.caCertPem,
      caFingerprintSha256: pki.caFingerprintSha256,
      previousCaCertPem: cfg.trust.previousCaCertPem,
      registryReady,
      verify: cfg.trust.verify,
    }),
);

export const hostname = cfg.hostname;
export const deployMode = cfg.deploy;
export const endpoint = registryEndpoint;
export const caCertPem = pki.caCertPem;
export const caFingerprintSha256 = pki.caFingerprintSha256;
export const fullChainPem = pki.fullChainPem;
export const serverCertNotAfter = pki.serverNotAfter;
/** Each client node and the registry authority it now trusts. */
export const trustedNodes = pulumi.all(trust.map((t, i) => t.authority.apply((a) => `${cfg.clients[i].name}: ${a}`)));
