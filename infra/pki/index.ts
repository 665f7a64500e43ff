/**
 * The registry's PKI: a CA (generated with @pulumi/tls, or the site's own)
 * and the server certificate of the registry hostname, with renewal and
 * rotation. Outputs feed the host, the deploy rooms and client trust.
 */
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import type { EcdsaCurve, KeyAlgorithm, RsaBits, StackConfig } from "../config";
import { caFingerprintSha256, fullChain, splitPemCertificates, trustAnchor } from "./pem";

export { caFingerprintSha256, fullChain, splitPemCertificates, trustAnchor } from "./pem";

export interface KeyArgs {
  /** ECDSA or RSA; never the provider's defaults (P224, RSA 2048). */
  algorithm: KeyAlgorithm;
  /** ECDSA curve (P256 or P384). */
  ecdsaCurve: EcdsaCurve;
  /** RSA modulus (3072 or 4096). */
  rsaBits: RsaBits;
}

export interface RegistryPkiArgs {
  /** The registry's DNS name; the server certificate's common name and first SAN. */
  hostname: pulumi.Input<string>;
  /** Extra DNS SANs of the server certificate (default none). */
  extraDnsNames?: pulumi.Input<pulumi.Input<string>[]>;
  /** IP SANs of the server certificate: the registry host's address(es). */
  ipAddresses: pulumi.Input<pulumi.Input<string>[]>;
  /** Key of a generated CA (default ECDSA P384). */
  caKey: KeyArgs;
  /** Subject of a generated CA. */
  caCommonName: pulumi.Input<string>;
  caOrganization: pulumi.Input<string>;
  caOrganizationalUnit: pulumi.Input<string>;
  /** Validity of a generated CA in hours (default ten years). */
  caValidityHours: pulumi.Input<number>;
  /** Protect the CA key and certificate resources (default true). */
  protectCa?: boolean;
  /** Changing this replaces the CA key and certificate (rotation). */
  caRotation?: pulumi.Input<number>;
  /** Server key (default ECDSA P256). */
  serverKey: KeyArgs;
  /** Organization in the server certificate's subject. */
  serverOrganization: pulumi.Input<string>;
  /** Server certificate validity in hours (default 4800, 200 days). */
  serverValidityHours: pulumi.Input<number>;
  /** Hours before expiry from which `pulumi up` renews the server certificate (default a third of the validity). */
  serverEarlyRenewalHours: pulumi.Input<number>;
  /** Changing this replaces the server key and certificate now. */
  serverRotation?: pulumi.Input<number>;
  /** The site's CA certificate (PEM, then its issuers); when set the CA is not generated. */
  providedCaCertPem?: pulumi.Input<string>;
  /** The site's CA private key (PEM, secret); required with providedCaCertPem. */
  providedCaKeyPem?: pulumi.Input<string>;
}

/** The CA's allowed uses: signing certificates and CRLs, nothing else. */
export const CA_USES = ["cert_signing", "crl_signing"];

/** Server uses: TLS server authentication, plus key encipherment for RSA key transport. */
export function serverUses(algorithm: KeyAlgorithm): string[] {
  return algorithm === "RSA"
    ? ["digital_signature", "key_encipherment", "server_auth"]
    : ["digital_signature", "server_auth"];
}

function keyInputs(k: KeyArgs): tls.PrivateKeyArgs {
  return k.algorithm === "RSA"
    ? { algorithm: "RSA", rsaBits: k.rsaBits }
    : { algorithm: "ECDSA", ecdsaCurve: k.ecdsaCurve };
}

export class RegistryPki extends pulumi.ComponentResource {
  /** The certificate clients trust (the generated CA, or the root of the site's chain). */
  public readonly caCertPem: pulumi.Output<string>;
  /** The server certificate alone. */
  public readonly serverCertPem: pulumi.Output<string>;
  /** Server certificate, then the CA chain: what the registry serves. */
  public readonly fullChainPem: pulumi.Output<string>;
  /** The server's private key (secret). */
  public readonly serverKeyPem: pulumi.Output<string>;
  /** SHA-256 of the trust anchor's DER, lowercase hex: the rotation trigger of later rooms. */
  public readonly caFingerprintSha256: pulumi.Output<string>;
  /** When the server certificate stops being valid (RFC 3339). */
  public readonly serverNotAfter: pulumi.Output<string>;

  constructor(name: string, args: RegistryPkiArgs, opts?: pulumi.ComponentResourceOptions) {
    super("casd:pki:RegistryPki", name, {}, opts);
    const provided = args.providedCaCertPem !== undefined;
    if (provided && args.providedCaKeyPem === undefined) {
      throw new pulumi.InputPropertiesError({
        message: "RegistryPki: a provided CA needs its key",
        errors: [
          { propertyPath: "providedCaKeyPem", reason: "required when providedCaCertPem is set" },
        ],
      });
    }

    let signerCertPem: pulumi.Output<string>;
    let signerKeyPem: pulumi.Output<string>;
    let chainPem: pulumi.Output<string>;
    if (provided) {
      // The site's CA: its first certificate signs; the whole bundle is the chain.
      chainPem = pulumi.output(args.providedCaCertPem!);
      signerCertPem = chainPem.apply((pem) => splitPemCertificates(pem)[0]);
      signerKeyPem = pulumi.secret(args.providedCaKeyPem!);
    } else {
      const protect = args.protectCa ?? true;
      const caKey = new tls.PrivateKey(`${name}-ca-key`, keyInputs(args.caKey), {
        parent: this,
        protect,
        replacementTrigger: args.caRotation ?? 0,
      });
      const caCert = new tls.SelfSignedCert(
        `${name}-ca-cert`,
        {
          privateKeyPem: caKey.privateKeyPem,
          subject: {
            commonName: args.caCommonName,
            organization: args.caOrganization,
            organizationalUnit: args.caOrganizationalUnit,
          },
          isCaCertificate: true,
          maxPathLength: 0,
          allowedUses: CA_USES,
          setSubjectKeyId: true,
          validityPeriodHours: args.caValidityHours,
        },
        { parent: this, protect, replacementTrigger: args.caRotation ?? 0 },
      );
      signerCertPem = caCert.certPem;
      signerKeyPem = caKey.privateKeyPem;
      chainPem = caCert.certPem;
    }

    const serverKey = new tls.PrivateKey(`${name}-server-key`, keyInputs(args.serverKey), {
      parent: this,
      replacementTrigger: args.serverRotation ?? 0,
    });
    const csr = new tls.CertRequest(
      `${name}-server-csr`,
      {
        privateKeyPem: serverKey.privateKeyPem,
        subject: { commonName: args.hostname, organization: args.serverOrganization },
        dnsNames: pulumi
          .all([args.hostname, args.extraDnsNames ?? []])
          .apply(([h, extra]) => [...new Set([h, ...extra])]),
        ipAddresses: args.ipAddresses,
      },
      { parent: this },
    );
    const serverCert = new tls.LocallySignedCert(
      `${name}-server-cert`,
      {
        certRequestPem: csr.certRequestPem,
        caCertPem: signerCertPem,
        caPrivateKeyPem: signerKeyPem,
        allowedUses: serverUses(args.serverKey.algorithm),
        setSubjectKeyId: true,
        validityPeriodHours: args.serverValidityHours,
        earlyRenewalHours: args.serverEarlyRenewalHours,
      },
      { parent: this, replacementTrigger: args.serverRotation ?? 0 },
    );

    this.serverCertPem = serverCert.certPem;
    this.caCertPem = chainPem.apply(trustAnchor);
    this.fullChainPem = pulumi
      .all([serverCert.certPem, chainPem])
      .apply(([leaf, chain]) => fullChain(leaf, chain));
    this.serverKeyPem = pulumi.secret(serverKey.privateKeyPem);
    this.caFingerprintSha256 = this.caCertPem.apply(caFingerprintSha256);
    this.serverNotAfter = serverCert.validityEndTime;
    this.registerOutputs({
      caCertPem: this.caCertPem,
      serverCertPem: this.serverCertPem,
      fullChainPem: this.fullChainPem,
      serverKeyPem: this.serverKeyPem,
      caFingerprintSha256: this.caFingerprintSha256,
      serverNotAfter: this.serverNotAfter,
    });
  }
}

/** The PKI room's args from the stack config (the composition root's wiring). */
export function registryPkiArgs(cfg: StackConfig): RegistryPkiArgs {
  return {
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
  };
}
