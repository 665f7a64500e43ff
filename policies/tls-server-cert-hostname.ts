import { StackValidationPolicy } from "@pulumi/policy";
import { schemaFor, settings } from "./config";
import { at, feeding, listAt, TYPES, UNKNOWN } from "./props";

/**
 * The server certificate names the registry: the CertRequest that feeds each
 * leaf LocallySignedCert carries `hostname` in its DNS SANs (Go clients -
 * the registry, containerd, skopeo - ignore the CN). A stack-level policy: a
 * resource policy sees the certificate or the request, never both.
 */
export const tlsServerCertHostname: StackValidationPolicy = {
  name: "tls-server-cert-hostname",
  description:
    "The certificate request of every server certificate must list the registry host name (reg.casd.local by default) among its DNS SANs.",
  enforcementLevel: "mandatory",
  severity: "high",
  configSchema: schemaFor("hostname"),
  validateStack: (args, report) => {
    const { hostname } = settings(args);
    const want = hostname.toLowerCase();
    for (const cert of args.resources) {
      if (cert.type !== TYPES.locallySignedCert) {
        continue;
      }
      const isCa = at(cert.props, "isCaCertificate");
      if (isCa === UNKNOWN || isCa === true) {
        continue;
      }
      const requests = feeding(cert, "certRequestPem", TYPES.certRequest);
      if (requests.length === 0) {
        report(
          `server certificate ${cert.name} is not issued from a CertRequest of this stack, so its SANs cannot be checked for ${hostname}.`,
          cert.urn,
        );
        continue;
      }
      for (const csr of requests) {
        const names = listAt(csr.props, "dnsNames");
        if (names === UNKNOWN || names.includes(UNKNOWN)) {
          continue;
        }
        const dns = names.map((n) => String(n).toLowerCase().replace(/\.$/, ""));
        if (!dns.includes(want)) {
          const listed = names.length > 0 ? names.join(", ") : "none";
          report(
            `dnsNames of ${csr.name} (${listed}) lack ${hostname}; the server certificate ${cert.name} must name the registry host.`,
            csr.urn,
          );
        }
      }
    }
  },
};
