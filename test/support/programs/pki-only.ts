/** A one-component program: RegistryPki alone, exporting its outputs (secret ones included) for tests. */
import { RegistryPki } from "../../../infra/pki";

const pki = new RegistryPki("unit", {
  hostname: "reg.casd.local",
  ipAddresses: ["10.50.6.62"],
  caKey: { algorithm: "ECDSA", ecdsaCurve: "P384", rsaBits: 3072 },
  caCommonName: "CA",
  caOrganization: "O",
  caOrganizationalUnit: "OU",
  caValidityHours: 87600,
  serverKey: { algorithm: "ECDSA", ecdsaCurve: "P256", rsaBits: 3072 },
  serverOrganization: "O",
  serverValidityHours: 4800,
  serverEarlyRenewalHours: 1600,
});

export const serverKeyPem = pki.serverKeyPem;
export const caCertPem = pki.caCertPem;
export const fullChainPem = pki.fullChainPem;
