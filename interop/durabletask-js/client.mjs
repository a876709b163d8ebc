// Interop check of `reprise serve`'s gRPC control RPCs against a Durable Task JavaScript client
// (TaskHubGrpcClient), client side only: no worker of the SDK runs. The same steps run against
// @microsoft/durabletask-js and @dapr/durabletask-js (the Dapr fork); the two differ only in how
// the client is built and where OrchestrationStatus is exported, which clientFor hides.
//
// cmd/reprise/interop_test.go starts `reprise serve` and, on the same store, a Go host that has
// the orchestrator "Approval" (waits for the external event "approval" and returns its data);
// nothing has "Unowned", so its instances stay Pending. It runs this script with:
//
//   GRPC_ADDR            the server's gRPC address, e.g. 127.0.0.1:40123
//   DURABLETASK_PACKAGE  the SDK to import: @microsoft/durabletask-js (the default) or
//                        @dapr/durabletask-js
//
// It prints "ok N - <step>" for each passed step and finally "OK <N> steps (<package>)"; on the
// first failure it prints "FAIL <step>: <error>" and exits 1.

import assert from "node:assert/strict";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

const addr = process.env.GRPC_ADDR;
if (!addr) {
    console.error("client.mjs: GRPC_ADDR is not set (see the header of this file)");
    process.exit(2);
}
const pkg = process.env.DURABLETASK_PACKAGE || "@microsoft/durabletask-js";

// clientFor builds the package's client and returns it with the package's OrchestrationStatus.
function clientFor(pkg) {
    switch (pkg) {
        case "@microsoft/durabletask-js": {
            const { TaskHubGrpcClient, OrchestrationStatus } = require(pkg);
            // The SDK logs every call to the console; keep the output to the steps.
            const quiet = { info() {}, debug() {}, warn() {}, error: console.error };
            return { client: new TaskHubGrpcClient({ hostAddress: addr, logger: quiet }), OrchestrationStatus };
        }
        case "@dapr/durabletask-js": {
            // 1.0.0 takes the address positionally (plain text by default) and does not export
            // OrchestrationStatus from its index.
            const { TaskHubGrpcClient } = require(pkg);
            const { OrchestrationStatus } = require(`${pkg}/orchestration/enum/orchestration-status.enum`);
            return { client: new TaskHubGrpcClient(addr), OrchestrationStatus };
        }
        default:
            console.error(`client.mjs: DURABLETASK_PACKAGE ${pkg} is not one this script knows (see its header)`);
            process.exit(2);
    }
}

const { client, OrchestrationStatus } = clientFor(pkg);

// print writes a line of the script's own; the Dapr SDK logs every call with console.log and
// console.info, which are silenced so the output is the steps.
const print = console.log.bind(console);
console.log = () => {};
console.info = () => {};

let n = 0;
async function step(name, fn) {
    try {
        await fn();
    } catch (err) {
        print(`FAIL ${name}: ${err && err.stack ? err.stack : err}`);
        await client.stop();
        process.exit(1);
    }
    n++;
    print(`ok ${n} - ${name}`);
}

// grpcCode returns the gRPC status code a call rejects with.
async function grpcCode(promise) {
    try {
        await promise;
    } catch (err) {
        return err.code;
    }
    return "no error";
}

const FAILED_PRECONDITION = 9;
const NOT_FOUND = 5;
const WAIT = 30; // seconds, the SDK's own timeout of its waits

await step("schedule an orchestration no worker has, under an ID", async () => {
    const id = await client.scheduleNewOrchestration("Unowned", { cities: ["Tokyo"] }, "js-pending");
    assert.equal(id, "js-pending");
});

await step("its state: Pending, with its name and input", async () => {
    const s = await client.getOrchestrationState("js-pending");
    assert.ok(s, "no state");
    assert.equal(s.instanceId, "js-pending");
    assert.equal(s.name, "Unowned");
    assert.equal(s.runtimeStatus, OrchestrationStatus.PENDING);
    assert.deepEqual(JSON.parse(s.serializedInput), { cities: ["Tokyo"] });
    assert.ok(s.createdAt.getTime() > Date.now() - 60_000, `createdAt ${s.createdAt}`);
});

await step("an unknown instance has no state", async () => {
    assert.equal(await client.getOrchestrationState("no-such-instance"), undefined);
});

await step("schedule without an ID: the SDK's UUID is kept", async () => {
    const id = await client.scheduleNewOrchestration("Unowned");
    assert.match(id, /^[0-9a-f-]{36}$/);
    const s = await client.getOrchestrationState(id);
    assert.equal(s.runtimeStatus, OrchestrationStatus.PENDING);
});

await step("schedule Approval and wait for its start", async () => {
    await client.scheduleNewOrchestration("Approval", null, "js-approval");
    const s = await client.waitForOrchestrationStart("js-approval", false, WAIT);
    assert.equal(s.runtimeStatus, OrchestrationStatus.RUNNING);
});

await step("raise the event; the instance completes with its data", async () => {
    await client.raiseOrchestrationEvent("js-approval", "approval", { by: "ana" });
    const s = await client.waitForOrchestrationCompletion("js-approval", true, WAIT);
    assert.equal(s.runtimeStatus, OrchestrationStatus.COMPLETED);
    assert.deepEqual(JSON.parse(s.serializedOutput), { by: "ana" });
});

await step("an event for a finished instance is refused (FAILED_PRECONDITION)", async () => {
    assert.equal(await grpcCode(client.raiseOrchestrationEvent("js-approval", "approval", 1)), FAILED_PRECONDITION);
});

await step("terminate a running instance; its output is the reason", async () => {
    await client.scheduleNewOrchestration("Approval", null, "js-terminate");
    await client.waitForOrchestrationStart("js-terminate", false, WAIT);
    await client.terminateOrchestration("js-terminate", "stop");
    const s = await client.waitForOrchestrationCompletion("js-terminate", true, WAIT);
    assert.equal(s.runtimeStatus, OrchestrationStatus.TERMINATED);
    assert.equal(JSON.parse(s.serializedOutput), "stop");
});

await step("terminate an unknown instance (NOT_FOUND)", async () => {
    assert.equal(await grpcCode(client.terminateOrchestration("no-such-instance", "x")), NOT_FOUND);
});

await step("purge a finished instance", async () => {
    const r = await client.purgeOrchestration("js-approval");
    assert.equal(r.deletedInstanceCount, 1);
    assert.equal(await client.getOrchestrationState("js-approval"), undefined);
});

await step("purge an instance that has not finished (FAILED_PRECONDITION)", async () => {
    assert.equal(await grpcCode(client.purgeOrchestration("js-pending")), FAILED_PRECONDITION);
});

await client.stop();
print(`OK ${n} steps (${pkg})`);
// The Dapr SDK's waits leave their timeout timers running; they would hold the process open.
process.exit(0);
