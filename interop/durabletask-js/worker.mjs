// A worker process of a Durable Task JavaScript SDK (TaskHubGrpcWorker) with a set of the
// orchestrators and activities of functions.mjs, for cmd/reprise/interop_workers_test.go:
//
//   GRPC_ADDR=127.0.0.1:40123 node worker.mjs --package PKG --name NAME --functions SET [--filters]
//
//   --package    @microsoft/durabletask-js or @dapr/durabletask-js
//   --name       the worker's name; activities that say who ran them return it
//   --functions  the set to register: all, filter-first or filter-second (see functions.mjs)
//   --filters    send the SDK's work-item filters (built from what is registered), so that the
//                server hands this worker only those orchestrators and activities
//
// It prints "started NAME: <functions>" once the SDK's worker has started (it connects in the
// background) and "hold NAME <instance> <input>" for each Hold activity in flight. A "release" line
// on stdin lets Hold activities finish (those in flight and all later ones). It runs until killed,
// or until stdin ends, when it stops the SDK's worker and exits.

import { parseArgs } from "node:util";
import { createInterface } from "node:readline";

import { load, silenceConsole } from "./sdk.mjs";
import { registerFunctions, release } from "./functions.mjs";

const print = silenceConsole();

const addr = process.env.GRPC_ADDR;
if (!addr) {
    console.error("worker.mjs: GRPC_ADDR is not set (see the header of this file)");
    process.exit(2);
}
const { values: args } = parseArgs({
    options: {
        package: { type: "string" },
        name: { type: "string" },
        functions: { type: "string", default: "all" },
        filters: { type: "boolean", default: false },
    },
});
if (!args.package || !args.name) {
    console.error("worker.mjs: --package and --name are required (see the header of this file)");
    process.exit(2);
}

let worker, registered;
try {
    const sdk = load(args.package);
    worker = sdk.newWorker(addr, { filters: args.filters });
    registered = registerFunctions(sdk, worker, args.functions, args.name, print);
    await worker.start();
} catch (err) {
    console.error(`worker.mjs ${args.name}: ${err && err.stack ? err.stack : err}`);
    process.exit(2);
}
print(`started ${args.name}: ${registered.join(" ")}`);

const stdin = createInterface({ input: process.stdin });
stdin.on("line", (line) => {
    if (line.trim() === "release") {
        release();
    }
});
stdin.on("close", async () => {
    await worker.stop();
    process.exit(0);
});
