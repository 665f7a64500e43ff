import { ResourceValidationPolicy } from "@pulumi/policy";
import { at, forTypes, listAt, TYPES, UNKNOWN } from "./props";

/** The key usages of a CA certificate, no more and no fewer. */
export const CA_USES = ["cert_signing", "crl_signing"];

/**
 * The CA profile: every self-signed certificate of the stack is the CA (the
 * server certificate is signed by it, never self-signed), and a CA
 * certificate (self-signed, or locally signed with `isCaCertificate`) has
 * exactly the uses cert_signing and crl_signing and a subject key identifier.
 */
export const tlsCaProfile: ResourceValidationPolicy = {
  name: "tls-ca-profile",
  description:
    "A CA certificate must set isCaCertificate, allow exactly cert_signing and crl_signing, and set a subject key identifier.",
  enforcementLevel: "mandatory",
  severity: "high",
  validateResource: forTypes(
    [TYPES.selfSignedCert, TYPES.locallySignedCert],
    (props, args, report) => {
      const isCa = at(props, "isCaCertificate");
      if (isCa === UNKNOWN) {
        return;
      }
      if (args.type === TYPES.locallySignedCert && isCa !== true) {
        return; // a leaf certificate: tls-server-cert-profile
      }
      if (isCa !== true) {
        report(
          "isCaCertificate is not true; a self-signed certificate here must be the CA (the server certificate is a LocallySignedCert).",
        );
      }
      const uses = listAt(props, "allowedUses");
      if (uses !== UNKNOWN && !uses.includes(UNKNOWN)) {
        const extra = uses.filter((u) => !CA_USES.includes(String(u)));
        const missing = CA_USES.filter((u) => !uses.includes(u));
        if (missing.length > 0) {
          report(
            `allowedUses lacks ${missing.join(", ")}; a CA certificate allows exactly cert_signing and crl_signing.`,
          );
        }
        if (extra.length > 0) {
          report(
            `allowedUses contains ${extra.join(", ")}; a CA certificate allows exactly cert_signing and crl_signing.`,
          );
        }
      }
      const ski = at(props, "setSubjectKeyId");
      if (ski !== UNKNOWN && ski !== true) {
        report("setSubjectKeyId is not true; the CA certificate needs a subject key identifier.");
      }
    },
  ),
};
