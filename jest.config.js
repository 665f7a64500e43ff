/** Two projects: `unit` (mocks, renderers, policies, offline; no root needed)
 * and `lab` (real hosts in network namespaces; root on Linux). */
const tsJest = ["ts-jest", { diagnostics: false }];
const common = {
  testEnvironment: "node",
  // The SDK's protobuf globals outlive a test file by design; keep them (no soft-delete warnings).
  testEnvironmentOptions: { globalsCleanup: "off" },
  transform: { "^.+\\.ts$": tsJest },
  moduleFileExtensions: ["ts", "js", "json"],
};
module.exports = {
  // jest 30 reads testTimeout only at the top level; lab tests set their own longer one.
  testTimeout: 60000,
  projects: [
    {
      ...common,
      displayName: "unit",
      testMatch: [
        "<rootDir>/test/unit/**/*.test.ts",
        "<rootDir>/test/policies/**/*.test.ts",
        "<rootDir>/test/offline/**/*.test.ts",
      ],
    },
    {
      ...common,
      displayName: "lab",
      testMatch: ["<rootDir>/test/lab/**/*.test.ts"],
    },
  ],
};
