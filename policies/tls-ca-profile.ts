import { ResourceValidationPolicy } from "@pulumi/policy";
import { at, forTypes, listAt, TYPES, UNKNOWN } from "./props";

/** The key usages of a CA certificate, no more and no fewer. */
export const CA_USES = ["cert_signing", "crl_signing"];

/**
 * The CA profile: a certificate that is a CA (`isCaCertificate`) or that
 * may sign (`cert_signing` or `crl_signing` among its uses) is the CA, and
 * has `isCaCertificate`, exactly the uses cert_signing and crl_signing, and a
 * subject key identifier. A self-signed certificate that can sign nothing
 * (Harbor's token-signing certificate on the Helm path) is not a CA and is
 * out of this policy's scope.
 */
export const tlsCaProfile: ResourceValidationPolicy = {
  name: "tls-ca-profile",
  description:
    "A CA certificate must set isCaCertificate, allow exactly cert_signing and crl_signing, and set a subject key identifier.",
  enforcementLevel: "mandatory",
  severity: "high",
  validateResource: forTypes(
    [TYPES.selfSignedCert, TYPES.locallySignedCert],
    (props, _args, report) => {
      const isCa = at(props, "isCaCertificate");
      if (isCa === UNKNOWN) {
        return;
      }
      const uses = listAt(props, "allowedUses");
      const signs =
        uses !== UNKNOWN && uses.some((u) => u === UNKNOWN || CA_USES.includes(String(u)));
      if (isCa !== true && !signs) {
        return; // a leaf certificate (server: tls-server-cert-profile), not a CA
      }
      if (isCa !== true) {
        report(
          "isCaCertificate is not true, yet the certificate may sign; a signing certificate must be a CA with the CA profile.",
        );
      }
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
