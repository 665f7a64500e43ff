// Loads the program the way `pulumi up` does for a TypeScript project that
// is not an ES module: the SDK's own tsutils pick ts-node and TypeScript
// (the project's, else the SDK's vendored ts-node 7 / TypeScript 3.8), the
// compiler options are the engine's defaults overlaid with tsconfig.json,
// and type checking is on. Then it runs the program under simple mocks and
// prints what it saw as JSON on stdout.
//
// Input: env CASD_ENGINE_CONFIG = JSON {config: {key: value}, secrets: {key: value}}.
"use strict";
const path = require("node:path");
const root = path.resolve(__dirname, "../..");
process.chdir(root);

const tsutils = require("@pulumi/pulumi/tsutils");
const { tsnodeRequire, typescriptRequire } = tsutils.typeScriptRequireStrings();
const compilerOptions = tsutils.loadTypeScriptCompilerOptions("tsconfig.json");
const tsn = require(tsnodeRequire);
const ts = require(typescriptRequire);
const nodeNext = Number(ts.version.split(".")[0]) >= 5 || ts.version.startsWith("4.7");
tsn.register({
  compiler: typescriptRequire,
  transpileOnly: compilerOptions.noCheck,
  project: "tsconfig.json",
  skipProject: false,
  compilerOptions: {
    target: "ES2020",
    module: nodeNext ? "nodenext" : "commonjs",
    moduleResolution: nodeNext ? "nodenext" : "node",
    sourceMap: "true",
    ...compilerOptions,
  },
});

const pulumi = require("@pulumi/pulumi");
const { config, secrets } = JSON.parse(process.env.CASD_ENGINE_CONFIG || "{}");
const all = {};
for (const [k, v] of Object.entries(config || {}))
  all[`casd-registry:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
for (const [k, v] of Object.entries(secrets || {})) all[`casd-registry:${k}`] = v;
pulumi.runtime.setAllConfig(
  all,
  Object.keys(secrets || {}).map((k) => `casd-registry:${k}`),
);

const { isTlsToken, materializeTls } = require("./x509");
const types = [];
pulumi.runtime
  .setMocks(
    {
      async newResource(args) {
        types.push(args.type);
        const state = isTlsToken(args.type)
          ? await materializeTls(args.type, args.inputs)
          : args.inputs;
        return { id: `${args.name}-id`, state };
      },
      call(args) {
        throw new Error(`unmocked provider function ${args.token}`);
      },
    },
    "casd-registry",
    "engine",
    false,
  )
  .then(async () => {
    const program = require(path.join(root, "infra"));
    for (const v of Object.values(program))
      if (pulumi.Output.isInstance(v)) await new Promise((r) => v.apply(r));
    process.stdout.write(
      JSON.stringify({
        tsNode: tsn.VERSION,
        typescript: ts.version,
        tsNodePath: require.resolve(tsnodeRequire),
        exports: Object.keys(program).sort(),
        types,
      }),
    );
  })
  .catch((e) => {
    process.stderr.write(String(e && e.stack ? e.stack : e));
    process.exit(1);
  });
