/** Pure PEM helpers of the PKI room (no Pulumi). */
import { createHash, X509Certificate } from "node:crypto";

const CERT_RE = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g;

/** The certificates of a PEM bundle, each normalized to end with one newline. */
export function splitPemCertificates(bundle: string): string[] {
  return (bundle.match(CERT_RE) ?? []).map((c) => `${c.trim()}\n`);
}

/** Concatenates PEM certificates in order (leaf first), one newline after each. */
export function fullChain(...bundles: string[]): string {
  return bundles.flatMap(splitPemCertificates).join("");
}

/**
 * The certificate clients must trust: the last of the chain (the root). A
 * bundle whose last certificate is not self-issued is still accepted: the
 * site chose it as its anchor.
 */
export function trustAnchor(bundle: string): string {
  const certs = splitPemCertificates(bundle);
  if (certs.length === 0) throw new Error("trustAnchor: no PEM certificate in the CA bundle");
  return certs[certs.length - 1];
}

/** SHA-256 of a PEM certificate's DER encoding, lowercase hex without separators. */
export function caFingerprintSha256(pem: string): string {
  const cert = new X509Certificate(pem);
  return createHash("sha256").update(cert.raw).digest("hex");
}
