/**
 * Composition root of casd-registry: config -> rooms -> exports. Nothing
 * else lives here; each room is a component under infra/<room>/.
 */
import { loadStackConfig } from "./config";
import { RegistryPki } from "./pki";

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

export const hostname = cfg.hostname;
export const deployMode = cfg.deploy;
export const caCertPem = pki.caCertPem;
export const caFingerprintSha256 = pki.caFingerprintSha256;
export const fullChainPem = pki.fullChainPem;
export const serverCertNotAfter = pki.serverNotAfter;
