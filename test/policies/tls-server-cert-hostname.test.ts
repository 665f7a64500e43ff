import { tlsServerCertHostname } from "../../policies/tls-server-cert-hostname";
import { pkiStack, pkiWith, T } from "./pki-fixture";
import { runStack, stackArgs, UNKNOWN_ARRAY, UNKNOWN_BOOL, UNKNOWN_STRING, urnOf } from "./support";

const run = (entries = pkiStack(), config?: Record<string, unknown>) =>
  runStack(tlsServerCertHostname, stackArgs(entries, config));

const withSans = (dnsNames: unknown) =>
  pkiWith("registry-server-csr", (e) => ({ ...e, props: { ...e.props, dnsNames } }));

describe("tls-server-cert-hostname", () => {
  it("is a mandatory stack policy", () => {
    expect(tlsServerCertHostname.enforcementLevel).toBe("mandatory");
    expect(tlsServerCertHostname.configSchema?.properties.hostname.default).toBe("reg.casd.local");
  });

  it("accepts a request that names the registry host", async () => {
    expect(await run()).toEqual([]);
    expect(await run(withSans(["registry.casd.local", "REG.casd.local."]))).toEqual([]);
  });

  it("refuses a request whose SANs lack the host", async () => {
    expect(await run(withSans(["registry.casd.local"]))).toEqual([
      {
        message:
          "dnsNames of registry-server-csr (registry.casd.local) lack reg.casd.local; the server certificate registry-server-cert must name the registry host.",
        urn: urnOf(T.csr, "registry-server-csr"),
      },
    ]);
  });

  it("refuses a request without DNS SANs", async () => {
    expect(await run(withSans(undefined))).toEqual([
      {
        message:
          "dnsNames of registry-server-csr (none) lack reg.casd.local; the server certificate registry-server-cert must name the registry host.",
        urn: urnOf(T.csr, "registry-server-csr"),
      },
    ]);
  });

  it("refuses a server certificate not issued from a request of the stack", async () => {
    const entries = pkiWith("registry-server-cert", (e) => ({
      ...e,
      propertyDependencies: { ...e.propertyDependencies, certRequestPem: [] },
    }));
    expect(await run(entries)).toEqual([
      {
        message:
          "server certificate registry-server-cert is not issued from a CertRequest of this stack, so its SANs cannot be checked for reg.casd.local.",
        urn: urnOf(T.signed, "registry-server-cert"),
      },
    ]);
  });

  it("follows the resource's dependencies when property dependencies are missing", async () => {
    const entries = pkiWith("registry-server-cert", (e) => ({ ...e, propertyDependencies: {} }));
    expect(await run(entries)).toEqual([]);
  });

  it("reads the host name from config", async () => {
    expect(
      (await run(pkiStack(), { hostname: "harbor.casd.local" })).map((v) => v.message),
    ).toEqual([
      "dnsNames of registry-server-csr (reg.casd.local) lack harbor.casd.local; the server certificate registry-server-cert must name the registry host.",
    ]);
  });

  it("does not look at CA certificates", async () => {
    const entries = pkiWith("registry-server-cert", (e) => ({
      ...e,
      props: { ...e.props, isCaCertificate: true },
      propertyDependencies: { certRequestPem: [] },
    }));
    expect(await run(entries)).toEqual([]);
  });

  it("reports nothing on values unknown during preview", async () => {
    expect(await run(withSans(UNKNOWN_ARRAY))).toEqual([]);
    expect(await run(withSans(["registry.casd.local", UNKNOWN_STRING]))).toEqual([]);
    const unknownCa = pkiWith("registry-server-cert", (e) => ({
      ...e,
      props: { ...e.props, isCaCertificate: UNKNOWN_BOOL },
      propertyDependencies: {},
      dependencies: [],
    }));
    expect(await run(unknownCa)).toEqual([]);
  });
});
