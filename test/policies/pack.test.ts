/**
 * Loads the pack the way the engine does (`@pulumi/pulumi/cmd/run-policy-pack`
 * in policies/, TypeScript type-checked by ts-node, the analyzer served over
 * gRPC) and talks to it as the CLI would: analyzer info, configuration, and
 * resources carrying real wire forms (secrets, unknowns, assets).
 */
import { ChildProcess, spawn } from "child_process";
import * as path from "path";
import * as grpc from "@grpc/grpc-js";
import * as rpc from "@pulumi/pulumi/runtime/rpc";
import * as analyzerGrpc from "@pulumi/pulumi/proto/analyzer_grpc_pb";
import * as analyzerPb from "@pulumi/pulumi/proto/analyzer_pb";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import * as structPb from "google-protobuf/google/protobuf/struct_pb";
import { policies } from "../../policies/catalog";
import { HARBOR_YML } from "./harbor-fixture";
import { urnOf } from "./support";

jest.setTimeout(120_000);

const ROOT = path.resolve(__dirname, "../..");
const RUN_POLICY_PACK = path.join(ROOT, "node_modules/@pulumi/pulumi/cmd/run-policy-pack");

const secret = (value: unknown) => ({ [rpc.specialSigKey]: rpc.specialSecretSig, value });
const asset = (text: string) => ({ [rpc.specialSigKey]: rpc.specialAssetSig, text });

let child: ChildProcess | undefined;
let client: analyzerGrpc.AnalyzerClient;
let stderr = "";

beforeAll(async () => {
  child = spawn(process.execPath, [RUN_POLICY_PACK, "127.0.0.1:0", "."], {
    cwd: path.join(ROOT, "policies"),
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const port = await new Promise<string>((resolve, reject) => {
    let out = "";
    child!.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n")[0].trim();
      if (out.includes("\n") && /^\d+$/.test(line)) {
        resolve(line);
      }
    });
    child!.on("exit", (code) =>
      reject(new Error(`policy pack exited with ${code}: ${stderr}${out}`)),
    );
  });
  client = new analyzerGrpc.AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
});

afterAll(() => {
  client?.close();
  if (child?.pid !== undefined && child.exitCode === null) {
    process.kill(child.pid);
  }
});

function call<Req, Res>(
  method: (req: Req, cb: (e: grpc.ServiceError | null, r: Res) => void) => unknown,
  req: Req,
): Promise<Res> {
  return new Promise((resolve, reject) =>
    method.call(client, req, (e, r) => (e ? reject(e) : resolve(r))),
  );
}

function options(
  protect = false,
  secretOutputs: string[] = [],
): analyzerPb.AnalyzerResourceOptions {
  const o = new analyzerPb.AnalyzerResourceOptions();
  o.setProtect(protect);
  o.setAdditionalsecretoutputsList(secretOutputs);
  return o;
}

interface Diagnostic {
  policy: string;
  message: string;
  level: number;
}

function diagnostics(res: analyzerPb.AnalyzeResponse): Diagnostic[] {
  return res.getDiagnosticsList().map((d) => ({
    policy: d.getPolicyname(),
    message: d.getMessage(),
    level: d.getEnforcementlevel(),
  }));
}

async function analyze(
  type: string,
  name: string,
  props: Record<string, unknown>,
  opts = options(),
) {
  const req = new analyzerPb.AnalyzeRequest();
  req.setType(type);
  req.setName(name);
  req.setUrn(urnOf(type, name));
  req.setProperties(
    structPb.Struct.fromJavaScript(props as Record<string, structPb.JavaScriptValue>),
  );
  req.setOptions(opts);
  return diagnostics(await call(client.analyze, req));
}

const description = (name: string) => policies.find((p) => p.name === name)!.description;

describe("the pack served as the engine runs it", () => {
  it("announces every policy with its enforcement level and config schema", async () => {
    const info = await call<Empty, analyzerPb.AnalyzerInfo>(client.getAnalyzerInfo, new Empty());
    expect(info.getName()).toBe("casd-registry");
    expect(info.getVersion()).toBe("0.1.0");
    const announced = info.getPoliciesList().map((p) => [p.getName(), p.getEnforcementlevel()]);
    expect(announced).toEqual(
      policies.map((p) => [
        p.name,
        p.enforcementLevel === "advisory"
          ? analyzerPb.EnforcementLevel.ADVISORY
          : analyzerPb.EnforcementLevel.MANDATORY,
      ]),
    );
    const validity = info
      .getPoliciesList()
      .find((p) => p.getName() === "tls-server-cert-validity")!;
    expect(validity.getConfigschema()!.getProperties()!.toJavaScript()).toMatchObject({
      maxServerValidityDays: { type: "integer", default: 200 },
    });
  });

  it("reports a weak key through the real server", async () => {
    expect(
      await analyze("tls:index/privateKey:PrivateKey", "registry-ca-key", { algorithm: "RSA" }),
    ).toEqual([
      {
        policy: "tls-key-strength",
        message: `${description("tls-key-strength")}\nrsaBits is not set, so the provider default of 2048 bits applies; set rsaBits to at least 3072.`,
        level: analyzerPb.EnforcementLevel.MANDATORY,
      },
    ]);
  });

  it("stays silent on a command whose inputs are unknown during preview (secrets unwrapped)", async () => {
    const props = {
      connection: secret({
        host: "10.50.6.62",
        port: 22,
        user: "deploy",
        privateKey: "k",
        hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb1",
      }),
      create: "set -euo pipefail\ncat > /etc/casd/harbor/harbor.yml",
      stdin: rpc.unknownValue,
      logging: "none",
    };
    expect(await analyze("command:remote:Command", "registry-harbor-config", props)).toEqual([]);
  });

  it("opens assets and finds a default secret in a copied harbor.yml", async () => {
    const props = {
      connection: secret({
        host: "10.50.6.62",
        port: 22,
        user: "deploy",
        privateKey: "k",
        hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb1",
      }),
      remotePath: "/tmp/harbor.yml",
      source: asset(HARBOR_YML.replace("q9Vx2LwZr7TnB4mKa8Hs", "Harbor12345")),
    };
    expect(
      (await analyze("command:remote:CopyToRemote", "registry-harbor-yml", props)).map(
        (d) => d.message,
      ),
    ).toEqual([
      `${description("harbor-no-default-secrets")}\nsource.text contains Harbor's default secret "Harbor12345"; use a generated secret.`,
    ]);
  });

  it("reads configuration the CLI sends", async () => {
    const req = new analyzerPb.ConfigureAnalyzerRequest();
    const cfg = new analyzerPb.PolicyConfig();
    cfg.setEnforcementlevel(analyzerPb.EnforcementLevel.MANDATORY);
    cfg.setProperties(structPb.Struct.fromJavaScript({ minRsaBits: 4096 }));
    req.getPolicyconfigMap().set("tls-key-strength", cfg);
    await call(client.configure, req);
    expect(
      (
        await analyze("tls:index/privateKey:PrivateKey", "k", { algorithm: "RSA", rsaBits: 3072 })
      ).map((d) => d.message),
    ).toEqual([
      `${description("tls-key-strength")}\nrsaBits is 3072; an RSA key needs at least 4096 bits.`,
    ]);
  });

  it("checks the stack: an unprotected CA key, found through property dependencies", async () => {
    const key = new analyzerPb.AnalyzerResource();
    key.setType("tls:index/privateKey:PrivateKey");
    key.setName("registry-ca-key");
    key.setUrn(urnOf("tls:index/privateKey:PrivateKey", "registry-ca-key"));
    key.setProperties(
      structPb.Struct.fromJavaScript({
        algorithm: "ECDSA",
        ecdsaCurve: "P384",
        privateKeyPem: secret("pem"),
      } as never),
    );
    key.setOptions(options(false, ["privateKeyPem"]));
    const ca = new analyzerPb.AnalyzerResource();
    ca.setType("tls:index/selfSignedCert:SelfSignedCert");
    ca.setName("registry-ca-cert");
    ca.setUrn(urnOf("tls:index/selfSignedCert:SelfSignedCert", "registry-ca-cert"));
    ca.setProperties(
      structPb.Struct.fromJavaScript({
        privateKeyPem: secret("pem"),
        isCaCertificate: true,
        setSubjectKeyId: true,
        allowedUses: ["cert_signing", "crl_signing"],
      } as never),
    );
    ca.setOptions(options());
    ca.setDependenciesList([key.getUrn()]);
    const deps = new analyzerPb.AnalyzerPropertyDependencies();
    deps.setUrnsList([key.getUrn()]);
    ca.getPropertydependenciesMap().set("privateKeyPem", deps);
    const req = new analyzerPb.AnalyzeStackRequest();
    req.setResourcesList([key, ca]);
    expect(diagnostics(await call(client.analyzeStack, req))).toEqual([
      {
        policy: "tls-ca-key-protected",
        message: `${description("tls-ca-key-protected")}\nCA key registry-ca-key is not protected; set protect: true on it (it signs the certificate every client trusts).`,
        level: analyzerPb.EnforcementLevel.MANDATORY,
      },
    ]);
  });
});
