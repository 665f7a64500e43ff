/** The registry's PKI as a stack policy sees it: CA key and certificate, server key, request and certificate. */
import { StackEntry } from "./support";

export const T = {
  key: "tls:index/privateKey:PrivateKey",
  selfSigned: "tls:index/selfSignedCert:SelfSignedCert",
  csr: "tls:index/certRequest:CertRequest",
  signed: "tls:index/locallySignedCert:LocallySignedCert",
  component: "casd:pki:RegistryPki",
};

const PEM_KEY = "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n";

export function pkiStack(): StackEntry[] {
  return [
    { type: T.component, name: "registry", props: {} },
    {
      type: T.key,
      name: "registry-ca-key",
      parent: "registry",
      props: { algorithm: "ECDSA", ecdsaCurve: "P384", privateKeyPem: PEM_KEY },
      opts: { protect: true, additionalSecretOutputs: ["privateKeyPem"] },
    },
    {
      type: T.selfSigned,
      name: "registry-ca-cert",
      parent: "registry",
      props: {
        privateKeyPem: PEM_KEY,
        isCaCertificate: true,
        setSubjectKeyId: true,
        allowedUses: ["cert_signing", "crl_signing"],
        validityPeriodHours: 87600,
        subject: { commonName: "casd registry CA" },
      },
      propertyDependencies: { privateKeyPem: ["registry-ca-key"], subject: [] },
      dependencies: ["registry-ca-key"],
    },
    {
      type: T.key,
      name: "registry-server-key",
      parent: "registry",
      props: { algorithm: "ECDSA", ecdsaCurve: "P256", privateKeyPem: PEM_KEY },
    },
    {
      type: T.csr,
      name: "registry-server-csr",
      parent: "registry",
      props: {
        privateKeyPem: PEM_KEY,
        dnsNames: ["reg.casd.local"],
        ipAddresses: ["10.50.6.62"],
        subject: { commonName: "reg.casd.local" },
      },
      propertyDependencies: {
        privateKeyPem: ["registry-server-key"],
        dnsNames: [],
        ipAddresses: [],
      },
      dependencies: ["registry-server-key"],
    },
    {
      type: T.signed,
      name: "registry-server-cert",
      parent: "registry",
      props: {
        certRequestPem: "-----BEGIN CERTIFICATE REQUEST-----\n...",
        caCertPem: "-----BEGIN CERTIFICATE-----\n...",
        caPrivateKeyPem: PEM_KEY,
        allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
        validityPeriodHours: 4800,
        earlyRenewalHours: 1440,
      },
      propertyDependencies: {
        certRequestPem: ["registry-server-csr"],
        caCertPem: ["registry-ca-cert"],
        caPrivateKeyPem: ["registry-ca-key"],
      },
      dependencies: ["registry-server-csr", "registry-ca-cert", "registry-ca-key"],
    },
  ];
}

/** `pkiStack()` with one entry changed. */
export function pkiWith(name: string, change: (e: StackEntry) => StackEntry): StackEntry[] {
  return pkiStack().map((e) => (e.name === name ? change(e) : e));
}
