import { tlsCaKeyProtected } from "../../policies/tls-ca-key-protected";
import { pkiStack, pkiWith, T } from "./pki-fixture";
import { runStack, stackArgs, UNKNOWN_BOOL, urnOf } from "./support";

const run = (entries = pkiStack()) => runStack(tlsCaKeyProtected, stackArgs(entries));

describe("tls-ca-key-protected", () => {
  it("is a mandatory stack policy", () => {
    expect(tlsCaKeyProtected.enforcementLevel).toBe("mandatory");
  });

  it("accepts a protected CA key", async () => {
    expect(await run()).toEqual([]);
  });

  it("refuses an unprotected CA key", async () => {
    const entries = pkiWith("registry-ca-key", (e) => ({
      ...e,
      opts: { ...e.opts, protect: false },
    }));
    expect(await run(entries)).toEqual([
      {
        message:
          "CA key registry-ca-key is not protected; set protect: true on it (it signs the certificate every client trusts).",
        urn: urnOf(T.key, "registry-ca-key"),
      },
    ]);
  });

  it("finds the CA key by structure, whatever its name", async () => {
    const renamed = pkiStack().map((e) => {
      if (e.name === "registry-ca-key") {
        return { ...e, name: "root", opts: {} };
      }
      if (e.name === "registry-ca-cert") {
        return { ...e, propertyDependencies: { privateKeyPem: ["root"] }, dependencies: ["root"] };
      }
      if (e.name === "registry-server-cert") {
        return { ...e, propertyDependencies: {}, dependencies: [] };
      }
      return e;
    });
    expect((await run(renamed)).map((v) => v.urn)).toEqual([urnOf(T.key, "root")]);
  });

  it("does not require protection of the server key", async () => {
    const entries = pkiWith("registry-server-key", (e) => ({ ...e, opts: { protect: false } }));
    expect(await run(entries)).toEqual([]);
  });

  it("has nothing to check for a CA brought from config", async () => {
    const entries = pkiStack()
      .filter((e) => e.name !== "registry-ca-key")
      .map((e) => ({ ...e, propertyDependencies: {}, dependencies: [] }));
    expect(await run(entries)).toEqual([]);
  });

  it("reports nothing while the CA flag is unknown", async () => {
    const entries = pkiStack().map((e) =>
      e.name === "registry-ca-cert"
        ? { ...e, props: { ...e.props, isCaCertificate: UNKNOWN_BOOL } }
        : e.name === "registry-ca-key"
          ? { ...e, opts: {} }
          : e,
    );
    expect(await run(entries)).toEqual([]);
  });
});
