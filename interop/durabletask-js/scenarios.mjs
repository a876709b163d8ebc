// The client side of the worker interop test (cmd/reprise/interop_workers_test.go): each scenario
// starts instances with a Durable Task JavaScript SDK's client, lets workers of the same package
// (worker.mjs, started by the test) run them, and checks what the client then sees.
//
//   GRPC_ADDR=127.0.0.1:40123 node scenarios.mjs --package PKG SCENARIO...
//
// The scenarios and the workers each needs are listed in SCENARIOS below. For each scenario the
// script prints "ok <scenario>" or "FAIL <scenario>: <error>"; it exits 1 if one failed, 2 on a
// usage error or a scenario the package's API cannot run (the test skips those itself).

import assert from "node:assert/strict";
import { parseArgs } from "node:util";

import { load, silenceConsole, MICROSOFT } from "./sdk.mjs";

const print = silenceConsole();

const addr = process.env.GRPC_ADDR;
if (!addr) {
    console.error("scenarios.mjs: GRPC_ADDR is not set (see the header of this file)");
    process.exit(2);
}
const { values: args, positionals: names } = parseArgs({
    options: { package: { type: "string" } },
    allowPositionals: true,
});
let sdk;
try {
    sdk = load(args.package);
} catch (err) {
    console.error(`scenarios.mjs: ${err.message}`);
    process.exit(2);
}
const { OrchestrationStatus } = sdk;
const client = sdk.newClient(addr);
const microsoft = sdk.pkg === MICROSOFT;

const WAIT = 30; // seconds: a wait for a state that the workers reach on their own
const KILL_WAIT = 90; // seconds: a wait that includes the server noticing a killed worker

const statusName = (s) => Object.keys(OrchestrationStatus).find((k) => OrchestrationStatus[k] === s) ?? String(s);

// finished waits for the instance to finish and checks it did so with status.
async function finished(id, status = OrchestrationStatus.COMPLETED, timeout = WAIT) {
    const s = await client.waitForOrchestrationCompletion(id, true, timeout);
    assert.ok(s, `${id}: no such instance`);
    assert.equal(
        statusName(s.runtimeStatus),
        statusName(status),
        `${id} finished ${statusName(s.runtimeStatus)}, want ${statusName(status)}` +
            (s.failureDetails ? ` (failure: ${s.failureDetails.errorType}: ${s.failureDetails.message})` : ""),
    );
    return s;
}

const output = (s) => (s.serializedOutput === undefined ? undefined : JSON.parse(s.serializedOutput));

// eventually polls check (which throws until the condition holds) every 50 ms for up to WAIT
// seconds: for states no SDK call waits for (suspended, a custom status, the start of an instance
// that an orchestration creates, which waitForOrchestrationStart may not know yet).
async function eventually(what, check) {
    const deadline = Date.now() + WAIT * 1000;
    for (;;) {
        try {
            return await check();
        } catch (err) {
            if (Date.now() > deadline) {
                throw new Error(`after ${WAIT}s, still not ${what}: ${err.message}`);
            }
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
    }
}

async function hasStatus(id, status) {
    const s = await client.getOrchestrationState(id);
    assert.ok(s, `${id}: no such instance`);
    assert.equal(statusName(s.runtimeStatus), statusName(status), `${id} is ${statusName(s.runtimeStatus)}`);
    return s;
}

// grpcCode returns the gRPC status code a call rejects with (the cause's, when the SDK wraps it).
async function grpcCode(promise) {
    try {
        await promise;
    } catch (err) {
        return err.code ?? err.cause?.code;
    }
    return "no error";
}
const FAILED_PRECONDITION = 9;

// historyTypes lists the types of an instance's history events (Microsoft's client only), without
// the OrchestratorStarted/Completed markers of each turn.
async function historyTypes(id) {
    const events = await client.getOrchestrationHistory(id);
    const t = sdk.HistoryEventType;
    return {
        events,
        types: events.map((e) => e.type).filter((type) => type !== t.OrchestratorStarted && type !== t.OrchestratorCompleted),
    };
}

// The scenarios, by name. needs: what the package's API must have (the test skips the others).
const SCENARIOS = {
    sequence: async () => {
        await client.scheduleNewOrchestration("Sequence", ["Tokyo", "Seattle", "London"], "sequence");
        const s = await finished("sequence");
        assert.deepEqual(output(s), ["Hello Tokyo", "Hello Seattle", "Hello London"]);
        assert.equal(s.name, "Sequence");
        assert.deepEqual(JSON.parse(s.serializedInput), ["Tokyo", "Seattle", "London"]);
    },

    "fan-out": async () => {
        await client.scheduleNewOrchestration("FanOut", 10, "fan-out");
        const s = await finished("fan-out");
        assert.deepEqual(output(s), { results: [2, 4, 6, 8, 10, 12, 14, 16, 18, 20], sum: 110 });
    },

    "sub-orchestrations": async () => {
        await client.scheduleNewOrchestration("Parent", ["Ana", "Bo"], "parent");
        const s = await finished("parent");
        const [named, unnamed] = output(s);
        assert.equal(named, "Hello Ana from parent-child");
        const m = /^Hello Bo from (.+)$/.exec(unnamed);
        assert.ok(m, `the second child answered ${unnamed}`);
        assert.notEqual(m[1], "parent-child");
        // Both children are instances of their own, finished, with their input and output.
        const child = await finished("parent-child");
        assert.equal(child.name, "Child");
        assert.equal(JSON.parse(child.serializedInput), "Ana");
        assert.equal(output(child), named);
        const other = await finished(m[1]);
        assert.equal(output(other), unnamed);
    },

    timer: async () => {
        await client.scheduleNewOrchestration("Timer", 1, "timer");
        const s = await finished("timer");
        const { start, fired } = output(s);
        const waited = Date.parse(fired) - Date.parse(start);
        assert.ok(waited >= 1000, `the timer of 1 s fired after ${waited} ms of orchestration time`);
        if (microsoft) {
            const { events, types } = await historyTypes("timer");
            assert.deepEqual(types, ["ExecutionStarted", "TimerCreated", "TimerFired", "ExecutionCompleted"]);
            const created = events.find((e) => e.type === "TimerCreated");
            const firedEvent = events.find((e) => e.type === "TimerFired");
            assert.equal(firedEvent.timerId, created.eventId);
            assert.equal(firedEvent.fireAt.getTime(), created.fireAt.getTime());
        }
    },

    "external-events": async () => {
        await client.scheduleNewOrchestration("Approval", null, "approval");
        await client.waitForOrchestrationStart("approval", false, WAIT);
        await client.raiseOrchestrationEvent("approval", "approval", { by: "ana" });
        assert.deepEqual(output(await finished("approval")), { by: "ana" });
        // Raised before the orchestration waits for them, and in the other order: both kept.
        await client.scheduleNewOrchestration("TwoEvents", null, "two-events");
        await client.raiseOrchestrationEvent("two-events", "second", 2);
        await client.raiseOrchestrationEvent("two-events", "first", 1);
        assert.deepEqual(output(await finished("two-events")), [1, 2]);
    },

    "continue-as-new": async () => {
        await client.scheduleNewOrchestration("Counter", 1, "counter");
        const s = await finished("counter");
        assert.equal(output(s), 3);
        // The instance keeps its ID; its input is the last generation's.
        assert.equal(JSON.parse(s.serializedInput), 3);
    },

    retry: {
        needs: ["RetryPolicy"],
        run: async () => {
            // Two failures, three attempts allowed: the third succeeds.
            await client.scheduleNewOrchestration("Retry", { failures: 2, maxAttempts: 3 }, "retry");
            const s = await finished("retry");
            assert.equal(output(s).attempts, 3);
            const { types } = await historyTypes("retry");
            assert.equal(types.filter((t) => t === "TaskScheduled").length, 3, `history: ${types}`);
            assert.equal(types.filter((t) => t === "TaskFailed").length, 2, `history: ${types}`);
            // Three failures, three attempts: the orchestration fails with the activity's error.
            await client.scheduleNewOrchestration("Retry", { failures: 3, maxAttempts: 3 }, "retry-exhausted");
            const f = await finished("retry-exhausted", OrchestrationStatus.FAILED);
            assert.match(f.failureDetails.message, /attempt 3 of retry-exhausted fails on purpose/);
        },
    },

    terminate: async () => {
        if (microsoft) {
            // Recursive: the child ends too.
            await client.scheduleNewOrchestration("ParentOfWaiter", null, "terminate-recursive");
            await eventually("RUNNING", () => hasStatus("terminate-recursive-child", OrchestrationStatus.RUNNING));
            await client.terminateOrchestration("terminate-recursive", sdk.terminateOptions({ recursive: true, output: "stop" }));
            assert.equal(output(await finished("terminate-recursive", OrchestrationStatus.TERMINATED)), "stop");
            await finished("terminate-recursive-child", OrchestrationStatus.TERMINATED);
        }
        // Not recursive (the Dapr client cannot ask for more): the child keeps running.
        await client.scheduleNewOrchestration("ParentOfWaiter", null, "terminate-parent");
        await eventually("RUNNING", () => hasStatus("terminate-parent-child", OrchestrationStatus.RUNNING));
        await client.terminateOrchestration("terminate-parent", "stop");
        assert.equal(output(await finished("terminate-parent", OrchestrationStatus.TERMINATED)), "stop");
        await hasStatus("terminate-parent-child", OrchestrationStatus.RUNNING);
        await client.raiseOrchestrationEvent("terminate-parent-child", "approval", "late");
        assert.equal(output(await finished("terminate-parent-child")), "late");
    },

    "suspend-resume": async () => {
        await client.scheduleNewOrchestration("Approval", null, "suspend");
        await client.waitForOrchestrationStart("suspend", false, WAIT);
        await client.suspendOrchestration("suspend");
        await eventually("SUSPENDED", () => hasStatus("suspend", OrchestrationStatus.SUSPENDED));
        // An event for a suspended instance waits for the resume.
        await client.raiseOrchestrationEvent("suspend", "approval", "while suspended");
        await client.resumeOrchestration("suspend");
        assert.equal(output(await finished("suspend")), "while suspended");
    },

    restart: {
        needs: ["restartOrchestration"],
        run: async () => {
            await client.scheduleNewOrchestration("Sequence", ["Oslo"], "restart");
            const first = await finished("restart");
            // Under the same ID: the instance runs again from its input.
            assert.equal(await client.restartOrchestration("restart", false), "restart");
            const again = await finished("restart");
            assert.deepEqual(output(again), ["Hello Oslo"]);
            assert.ok(again.createdAt.getTime() >= first.createdAt.getTime());
            // Under a new ID: a second instance with the same input and output.
            const id = await client.restartOrchestration("restart", true);
            assert.notEqual(id, "restart");
            const other = await finished(id);
            assert.equal(other.name, "Sequence");
            assert.deepEqual(output(other), ["Hello Oslo"]);
        },
    },

    // An instance that has not finished cannot be restarted under its ID: FAILED_PRECONDITION,
    // which the SDK turns into its "cannot be restarted" error.
    "restart-unfinished": {
        needs: ["restartOrchestration"],
        run: async () => {
            await client.scheduleNewOrchestration("Approval", null, "restart-running");
            await client.waitForOrchestrationStart("restart-running", false, WAIT);
            const code = await grpcCode(client.restartOrchestration("restart-running", false));
            assert.equal(code, FAILED_PRECONDITION, `restarting the RUNNING restart-running: code ${code}, want FAILED_PRECONDITION (9)`);
            await client.raiseOrchestrationEvent("restart-running", "approval", 1);
            await finished("restart-running");
        },
    },

    rewind: {
        needs: ["rewindInstance"],
        run: async () => {
            await client.scheduleNewOrchestration("Rewindable", null, "rewind");
            const failed = await finished("rewind", OrchestrationStatus.FAILED);
            assert.match(failed.failureDetails.message, /first attempt of rewind fails on purpose/);
            await client.rewindInstance("rewind", "the activity works now");
            // The rewound instance runs the failed activity again, which now succeeds.
            const s = await finished("rewind");
            assert.equal(output(s).attempts, 2);
            // Only a failed instance can be rewound.
            const code = await grpcCode(client.rewindInstance("rewind", "again"));
            assert.equal(code, FAILED_PRECONDITION, `rewinding the COMPLETED rewind: code ${code}, want FAILED_PRECONDITION (9)`);
        },
    },

    query: {
        needs: ["getAllInstances", "listInstanceIds"],
        run: async () => {
            const ids = ["query-0", "query-1", "query-2", "query-3", "query-4"];
            for (const id of ids) {
                await client.scheduleNewOrchestration("Sequence", [id], id);
            }
            for (const id of ids) {
                await finished(id);
            }
            // Pages of two, by prefix: 2, 2 and 1, all five IDs once.
            const pages = [];
            for await (const page of client.getAllInstances({ instanceIdPrefix: "query-", pageSize: 2 }).asPages()) {
                pages.push(page.values.map((s) => s.instanceId));
            }
            assert.deepEqual(pages.map((p) => p.length), [2, 2, 1], `pages: ${JSON.stringify(pages)}`);
            assert.deepEqual(pages.flat().sort(), ids);
            // With payloads, and by status.
            const all = [];
            for await (const s of client.getAllInstances({ instanceIdPrefix: "query-", fetchInputsAndOutputs: true, statuses: [OrchestrationStatus.COMPLETED] })) {
                all.push(s);
            }
            assert.equal(all.length, 5);
            for (const s of all) {
                assert.deepEqual(output(s), [`Hello ${s.instanceId}`]);
            }
            const failedOnes = [];
            for await (const s of client.getAllInstances({ instanceIdPrefix: "query-", statuses: [OrchestrationStatus.FAILED] })) {
                failedOnes.push(s.instanceId);
            }
            assert.deepEqual(failedOnes, []);
            // ListInstanceIds, page by page through every completed instance: each ID once, the
            // five among them.
            const seen = [];
            let key;
            for (let n = 0; ; n++) {
                assert.ok(n < 100, "ListInstanceIds does not end");
                const page = await client.listInstanceIds({ runtimeStatus: [OrchestrationStatus.COMPLETED], pageSize: 2, lastInstanceKey: key });
                assert.ok(page.values.length <= 2, `a page of ${page.values.length}`);
                seen.push(...page.values);
                if (!page.hasMoreResults) {
                    break;
                }
                key = page.continuationToken;
            }
            assert.equal(new Set(seen).size, seen.length, `IDs seen twice: ${seen}`);
            for (const id of ids) {
                assert.ok(seen.includes(id), `${id} is not among the completed IDs ${seen}`);
            }
        },
    },

    "purge-filter": async () => {
        await client.scheduleNewOrchestration("Sequence", ["before"], "purge-before");
        await finished("purge-before");
        const from = new Date();
        const ids = ["purge-0", "purge-1", "purge-2"];
        for (const id of ids) {
            await client.scheduleNewOrchestration("Sequence", [id], id);
            await finished(id);
        }
        await client.scheduleNewOrchestration("Approval", null, "purge-running");
        await client.waitForOrchestrationStart("purge-running", false, WAIT);
        const criteria = new sdk.PurgeInstanceCriteria();
        criteria.setCreatedTimeFrom(from);
        criteria.setRuntimeStatusList([OrchestrationStatus.COMPLETED]);
        const r = await client.purgeOrchestration(criteria);
        assert.equal(r.deletedInstanceCount, 3);
        for (const id of ids) {
            assert.equal(await client.getOrchestrationState(id), undefined, `${id} is still there`);
        }
        // Created before the filter's start, or not finished: kept.
        await hasStatus("purge-before", OrchestrationStatus.COMPLETED);
        await hasStatus("purge-running", OrchestrationStatus.RUNNING);
        await client.raiseOrchestrationEvent("purge-running", "approval", 1);
        await finished("purge-running");
        assert.equal((await client.purgeOrchestration(criteria)).deletedInstanceCount, 1);
        assert.equal(await client.getOrchestrationState("purge-running"), undefined);
    },

    history: {
        needs: ["getOrchestrationHistory"],
        run: async () => {
            await client.scheduleNewOrchestration("Sequence", ["a", "b"], "history");
            await finished("history");
            const { events, types } = await historyTypes("history");
            assert.deepEqual(types, ["ExecutionStarted", "TaskScheduled", "TaskCompleted", "TaskScheduled", "TaskCompleted", "ExecutionCompleted"]);
            const started = events.find((e) => e.type === "ExecutionStarted");
            assert.equal(started.name, "Sequence");
            assert.deepEqual(JSON.parse(started.input), ["a", "b"]);
            const scheduled = events.filter((e) => e.type === "TaskScheduled");
            const completed = events.filter((e) => e.type === "TaskCompleted");
            assert.deepEqual(scheduled.map((e) => e.name), ["Hello", "Hello"]);
            assert.deepEqual(scheduled.map((e) => JSON.parse(e.input)), ["a", "b"]);
            assert.deepEqual(completed.map((e) => e.taskScheduledId), scheduled.map((e) => e.eventId));
            assert.deepEqual(completed.map((e) => JSON.parse(e.result)), ["Hello a", "Hello b"]);
            const done = events.find((e) => e.type === "ExecutionCompleted");
            assert.deepEqual(JSON.parse(done.result), ["Hello a", "Hello b"]);
            // The SDK turns NOT_FOUND into an empty history.
            assert.deepEqual(await client.getOrchestrationHistory("no-such-instance"), []);
        },
    },

    // Work-item filters, in two halves around the start of the second worker. First: only the
    // worker "first" runs, with filters for FilterOrch and FilterAct. FilterOrch runs up to its
    // call of FilterOtherAct, which no worker has; FilterUnowned stays PENDING. (Without filters,
    // see learn-first.)
    "filters-first": {
        needs: ["workItemFilters"],
        run: async () => {
            await client.scheduleNewOrchestration("FilterUnowned", null, "filter-unowned");
            await client.scheduleNewOrchestration("FilterOrch", null, "filter-orch");
            await eventually("past FilterAct", async () => {
                const s = await hasStatus("filter-orch", OrchestrationStatus.RUNNING);
                assert.equal(s.serializedCustomStatus, JSON.stringify("FilterAct done"));
            });
            await hasStatus("filter-unowned", OrchestrationStatus.PENDING);
            await hasStatus("filter-orch", OrchestrationStatus.RUNNING);
        },
    },
    // Second: the worker "second" (filters for FilterUnowned and FilterOtherAct) runs too. Each
    // worker got only its own names: both instances complete, each activity on its worker.
    "filters-second": {
        needs: ["workItemFilters"],
        run: async () => {
            assert.deepEqual(output(await finished("filter-orch")), ["first", "second"]);
            assert.deepEqual(output(await finished("filter-unowned")), "second");
        },
    },

    // The same two workers without filters (the SDKs' default): each is sent names it does not
    // run, answers "not registered", and its stream leaves those names to the other; the
    // instances wait for the worker that has them instead of failing.
    "learn-first": { run: async () => SCENARIOS["filters-first"].run() },
    "learn-second": { run: async () => SCENARIOS["filters-second"].run() },

    // A worker killed mid-run: the test kills the worker "first" once it holds a Hold and starts
    // "second", which finishes the instance: every activity done once, by "second".
    kill: async () => {
        await client.scheduleNewOrchestration("HoldFanOut", 3, "kill");
        const s = await finished("kill", OrchestrationStatus.COMPLETED, KILL_WAIT);
        assert.deepEqual(output(s), [1, 2, 3].map((i) => ({ i, worker: "second" })));
        if (microsoft) {
            const { types } = await historyTypes("kill");
            assert.deepEqual(types.filter((t) => t.startsWith("Task")).sort(), [...Array(3).fill("TaskCompleted"), ...Array(3).fill("TaskScheduled")]);
        }
    },

    // Two workers sharing the load: the test releases the Holds once both workers hold one.
    share: async () => {
        // More Holds than one stream takes at once (reprise serve's default limit of 256 items in
        // flight per stream, as the JavaScript SDKs ask for no limit): the rest must go to the
        // other worker, since no Hold ends before both workers hold one.
        const n = 300;
        await client.scheduleNewOrchestration("HoldFanOut", n, "share");
        const s = await finished("share");
        const results = output(s);
        assert.deepEqual(results.map((r) => r.i), Array.from({ length: n }, (_, k) => k + 1));
        const workers = new Set(results.map((r) => r.worker));
        assert.deepEqual([...workers].sort(), ["first", "second"], `the activities ran on ${[...workers]}`);
    },
};

// Durable entities (@microsoft/durabletask-js only): the Counter entity of functions.mjs and the
// orchestrations that use it.
const counter = (key) => new sdk.EntityInstanceId("counter", key);

// entityIDs lists the IDs of the entities a query returns, sorted, with ="state" when it has one.
async function entityIDs(query) {
    const out = [];
    for await (const e of client.getEntities(query)) {
        out.push(e.includesState ? `${e.id}=${JSON.stringify(e.state)}` : String(e.id));
    }
    return out.sort();
}

// entityState waits until the counter's state is want and returns its metadata.
async function counterAt(key, want) {
    return eventually(`counter ${key} at ${want}`, async () => {
        const e = await client.getEntity(counter(key));
        assert.ok(e, `counter ${key} does not exist`);
        assert.equal(e.state, want);
        return e;
    });
}

Object.assign(SCENARIOS, {
    // The client's entity calls: signals (one failing, rolled back; one scheduled), getEntity,
    // getEntities (prefixes as given and normalized, state, pages, deleted entities) and
    // cleanEntityStorage.
    "entities-client": {
        needs: ["signalEntity", "getEntity", "getEntities", "cleanEntityStorage"],
        run: async () => {
            assert.equal(await client.getEntity(counter("client-a")), undefined, "an entity never signalled exists");
            for (let i = 1; i <= 10; i++) {
                await client.signalEntity(counter("client-a"), "add", i);
            }
            const b = new sdk.EntityInstanceId("Counter", "client-B"); // the name is lower-cased, the key kept
            await client.signalEntity(b, "add", 7);
            await client.signalEntity(b, "fail");
            await client.signalEntity(b, "add", 1);
            const a = await counterAt("client-a", 55);
            assert.equal(String(a.id), "@counter@client-a");
            assert.equal(a.backlogQueueSize, 0);
            assert.equal(a.lockedBy, undefined);
            assert.ok(a.lastModifiedTime.getTime() > Date.now() - 3600e3, `lastModifiedTime ${a.lastModifiedTime}`);
            await counterAt("client-B", 8); // fail's change was rolled back
            const noState = await client.getEntity(counter("client-a"), false);
            assert.equal(noState.includesState, false);

            const pages = [];
            for await (const page of client.getEntities({ instanceIdStartsWith: "@counter@client-", pageSize: 1, includeState: true }).asPages()) {
                pages.push(page.values.map((e) => `${e.id}=${e.state}`));
            }
            assert.ok(pages.every((p) => p.length <= 1), `pages of 1: ${JSON.stringify(pages)}`);
            assert.deepEqual(pages.flat().sort(), ["@counter@client-B=8", "@counter@client-a=55"]);
            assert.deepEqual(await entityIDs({ instanceIdStartsWith: "Counter@client-", includeState: false }), [
                "@counter@client-B",
                "@counter@client-a",
            ]);
            assert.deepEqual(await entityIDs({ instanceIdStartsWith: "counter@client-b", includeState: false }), []); // keys keep their case

            await client.signalEntity(b, "delete");
            await eventually("client-B deleted", async () => assert.equal(await client.getEntity(b), undefined));
            assert.deepEqual(await entityIDs({ instanceIdStartsWith: "counter@client-", includeState: false }), ["@counter@client-a"]);
            assert.deepEqual(await entityIDs({ instanceIdStartsWith: "counter@client-", includeState: false, includeTransient: true }), [
                "@counter@client-B",
                "@counter@client-a",
            ]);
            // Nothing to clean: the deleted entity has not been idle for the reorder window, and no
            // lock is orphaned.
            const cleaned = await client.cleanEntityStorage();
            assert.deepEqual([cleaned.emptyEntitiesRemoved, cleaned.orphanedLocksReleased], [0, 0]);

            await client.signalEntity(counter("client-a"), "add", 100, { signalTime: new Date(Date.now() + 1000) });
            await counterAt("client-a", 155);
        },
    },

    // A JavaScript orchestration signals and calls a JavaScript entity; an entity signals another
    // entity and starts an orchestration.
    "entities-orchestration": {
        needs: ["getEntity"],
        run: async () => {
            await client.scheduleNewOrchestration("CounterOrch", "orch", "counter-orch");
            const s = await finished("counter-orch");
            // The signal ran before the calls; the failing call failed and changed nothing.
            assert.deepEqual(output(s), { added: 6, failure: "failed on purpose", value: 6 });
            await counterAt("orch", 6);

            await client.signalEntity(counter("relay-a"), "relay", { to: "relay-b", n: 3 });
            await counterAt("relay-a", 3);
            await counterAt("relay-b", 3);
            await client.signalEntity(counter("relay-a"), "start", "started-by-entity");
            const started = await eventually("started-by-entity started", async () => {
                const st = await client.getOrchestrationState("started-by-entity");
                assert.ok(st, "not started yet");
                return st;
            });
            assert.equal(started.name, "Sequence");
            assert.deepEqual(output(await finished("started-by-entity")), ["Hello started-by-entity"]);
        },
    },

    // Critical sections: concurrent transfers between two counters, each locking both; the total
    // never changes, and no lock is left.
    "entities-lock": {
        needs: ["getEntity"],
        run: async () => {
            await client.signalEntity(counter("acct-a"), "add", 100);
            await client.signalEntity(counter("acct-b"), "add", 100);
            await counterAt("acct-a", 100);
            await counterAt("acct-b", 100);
            const ids = [];
            for (let i = 0; i < 6; i++) {
                const [from, to] = i % 2 ? ["acct-a", "acct-b"] : ["acct-b", "acct-a"];
                ids.push(await client.scheduleNewOrchestration("Transfer", { from, to, amount: 10 + i }, `transfer-${i}`));
            }
            for (const id of ids) {
                const out = output(await finished(id));
                assert.equal(out.inSection, true);
                assert.equal(out.after, false);
            }
            // b→a: 10+12+14 = 36, a→b: 11+13+15 = 39.
            await counterAt("acct-a", 100 + 36 - 39);
            await counterAt("acct-b", 100 - 36 + 39);
            // The last section's unlocks reach the entities after its orchestration completed.
            for (const key of ["acct-a", "acct-b"]) {
                await eventually(`${key} unlocked`, async () => {
                    const e = await client.getEntity(counter(key));
                    assert.equal(e.lockedBy, undefined, `${e.id} is locked by ${e.lockedBy}`);
                    assert.equal(e.backlogQueueSize, 0);
                });
            }
        },
    },

    // A critical section's orchestration terminated while it holds the lock: the lock is
    // released, and the signal queued behind it runs.
    "entities-terminate": {
        needs: ["getEntity"],
        run: async () => {
            await client.signalEntity(counter("term"), "add", 1);
            await counterAt("term", 1);
            await client.scheduleNewOrchestration("LockAndWait", "term", "lock-and-wait");
            await eventually("counter term locked", async () => {
                assert.equal((await client.getEntity(counter("term"))).lockedBy, "lock-and-wait");
            });
            await client.signalEntity(counter("term"), "add", 1); // waits behind the lock
            await eventually("the signal queued", async () => {
                assert.equal((await client.getEntity(counter("term"))).backlogQueueSize, 1);
            });
            await client.terminateOrchestration("lock-and-wait", "enough");
            await finished("lock-and-wait", OrchestrationStatus.TERMINATED);
            const e = await counterAt("term", 2);
            assert.equal(e.lockedBy, undefined);
            assert.equal(e.backlogQueueSize, 0);
        },
    },

    // DTS388: the test kills the worker "first" while it holds the call of a critical section
    // (Counter.hold) with a signal queued behind the lock, and starts "second": the batch is
    // delivered again, the section ends, its lock is released and the queued signal runs.
    "entities-kill": {
        needs: ["getEntity"],
        run: async () => {
            await client.scheduleNewOrchestration("HoldUnderLock", "killed", "hold-under-lock");
            // Locked, without state yet: getEntity says it does not exist; a transient listing shows it.
            await eventually("counter killed locked", async () => {
                const all = [];
                for await (const x of client.getEntities({ instanceIdStartsWith: "counter@killed", includeTransient: true, includeState: false })) {
                    all.push(x);
                }
                assert.equal(all.length, 1);
                assert.equal(all[0].lockedBy, "hold-under-lock");
            });
            assert.equal(await client.getEntity(counter("killed")), undefined);
            await client.signalEntity(counter("killed"), "add", 10);
            const s = await finished("hold-under-lock", OrchestrationStatus.COMPLETED, KILL_WAIT);
            assert.equal(output(s), 1);
            const e = await counterAt("killed", 11);
            assert.equal(e.lockedBy, undefined);
            assert.equal(e.backlogQueueSize, 0);
        },
    },
});

// can says whether the package's API has what a scenario needs.
function can(needs) {
    return needs.every((n) =>
        n === "workItemFilters" ? microsoft : n === "RetryPolicy" ? Boolean(sdk.RetryPolicy) : typeof client[n] === "function",
    );
}

if (names.length === 0) {
    console.error(`scenarios.mjs: name one or more scenarios: ${Object.keys(SCENARIOS).join(", ")}`);
    process.exit(2);
}
let failed = 0;
for (const name of names) {
    const scenario = SCENARIOS[name];
    if (!scenario) {
        console.error(`scenarios.mjs: no scenario ${name} (scenarios: ${Object.keys(SCENARIOS).join(", ")})`);
        process.exit(2);
    }
    const { needs = [], run } = typeof scenario === "function" ? { run: scenario } : scenario;
    if (!can(needs)) {
        console.error(`scenarios.mjs: ${sdk.pkg} cannot run ${name}: it needs ${needs.join(", ")}`);
        process.exit(2);
    }
    try {
        await run();
        print(`ok ${name}`);
    } catch (err) {
        failed++;
        print(`FAIL ${name}: ${err && err.stack ? err.stack : err}`);
    }
}
// No client.stop(): it waits a second for grpc-js, and the exit closes the connection anyway
// (the Dapr SDK's waits also leave timers that would hold the process open).
process.exit(failed ? 1 : 0);
