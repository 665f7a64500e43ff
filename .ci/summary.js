// Prints one closing line for CI from jest's --json reports: "tests: N passed, N failed, N skipped".
// A missing report (a suite that could not start) counts as a failure.
const fs = require("node:fs");
let passed = 0,
  failed = 0,
  skipped = 0,
  missing = 0;
for (const file of process.argv.slice(2)) {
  if (!fs.existsSync(file)) {
    console.log(`summary: ${file} was not written`);
    missing++;
    continue;
  }
  const r = JSON.parse(fs.readFileSync(file, "utf8"));
  passed += r.numPassedTests;
  failed += r.numFailedTests + r.numRuntimeErrorTestSuites;
  skipped += r.numPendingTests + r.numTodoTests;
}
console.log(`tests: ${passed} passed, ${failed + missing} failed, ${skipped} skipped`);
// In CI a skipped test is a defect: every prerequisite is installed above.
const skipsFail = process.env.CI === "true" && skipped > 0;
if (skipsFail) console.log("summary: tests were skipped in CI");
process.exit(failed + missing > 0 || passed === 0 || skipsFail ? 1 : 0);
