// Interop check of Reprise's Durable Functions management API against the official
// durable-functions npm client (3.x), driven outside Azure Functions as a plain Node script.
//
// interop_test.go starts a Reprise App, serves it, registers the orchestrators below and runs
// this script with:
//
//   ORIGIN      the server's origin, e.g. http://127.0.0.1:40123
//   HUB         the App's task hub
//   SYSTEM_KEY  the App's system key (durabletask_extension); empty for an anonymous host (one
//               whose management API needs no key)
//   MODE        "rpc": the client binding carries rpcBaseUrl = ORIGIN + "/durabletask/", so every
//               call goes to the loopback RPC base; "webhook": no rpcBaseUrl, so the client
//               string-templates the /runtime/webhooks/durabletask URLs with code=SYSTEM_KEY.
//
// Orchestrators the App must register:
//
//   hello          input {name}; calls activity say_hello(name) and returns "Hello <name>!"
//   echo           returns its input
//   wait_approval  waits for the external event "approval" and returns its data
//
// and the entity counter, whose operation "add" adds its (number) input to the state.
//
// The store must be fresh: listings are checked against exactly the instances this script made.
//
// It prints "ok N - <step>" for each passed step and finally "OK <N> steps"; on the first failure
// it prints "FAIL [MODE] <step>: <error>" and exits 1. Set KEEP_GOING=1 to run the remaining
// steps after a failure (later steps may then fail as a consequence).

import assert from "node:assert/strict";
import { createRequire } from "node:module";

// ---------------------------------------------------------------------------------------------
// Environment and client construction (docs/compat/durable-functions-http.md §8.1)

function env(name) {
    const v = process.env[name];
    if (!v) {
        console.error(`client.mjs: environment variable ${name} is not set (see the header of this file)`);
        process.exit(2);
    }
    return v;
}

const ORIGIN = env("ORIGIN").replace(/\/+$/, "");
const HUB = env("HUB");
// An anonymous host hands out no key. Its webhook binding still carries
// requiredQueryStringParameters, without which the client refuses to send entity calls in
// webhook mode: Reprise puts the task hub there (taskHub=HUB).
const KEY = process.env.SYSTEM_KEY ?? "";
const ANONYMOUS = KEY === "";
const MODE = env("MODE");
if (MODE !== "rpc" && MODE !== "webhook") {
    console.error(`client.mjs: MODE must be "rpc" or "webhook", got ${JSON.stringify(MODE)}`);
    process.exit(2);
}
const KEEP_GOING = process.env.KEEP_GOING === "1";

// getClient rewrites every URL origin to http://localhost:7071 unless WEBSITE_HOSTNAME is set
// (and is not 0.0.0.0); set it to the server's host:port as the Functions host would.
process.env.WEBSITE_HOSTNAME = new URL(ORIGIN).host;

const require = createRequire(import.meta.url);
const df = require("durable-functions");
// The HttpRequest class of the very copy of @azure/functions that durable-functions uses.
const { HttpRequest } = createRequire(require.resolve("durable-functions"))("@azure/functions");

const WEBHOOK_BASE = `${ORIGIN}/runtime/webhooks/durabletask`;
const CODE = ANONYMOUS ? "" : `code=${encodeURIComponent(KEY)}`;
const withCode = (sep) => (CODE ? sep + CODE : "");
const QS = `taskHub=${encodeURIComponent(HUB)}&connection=Storage${withCode("&")}`;
const INSTANCE = `${WEBHOOK_BASE}/instances/INSTANCEID`;

// The client binding data, as the extension hands it to a function (OrchestrationClientInputData).
const clientData = {
    taskHubName: HUB,
    creationUrls: {
        createNewInstancePostUri: `${WEBHOOK_BASE}/orchestrators/{functionName}[/{instanceId}]${withCode("?")}`,
        createAndWaitOnNewInstancePostUri:
            `${WEBHOOK_BASE}/orchestrators/{functionName}[/{instanceId}]` +
            `?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}${withCode("&")}`,
    },
    managementUrls: {
        id: "INSTANCEID",
        statusQueryGetUri: `${INSTANCE}?${QS}`,
        sendEventPostUri: `${INSTANCE}/raiseEvent/{eventName}?${QS}`,
        terminatePostUri: `${INSTANCE}/terminate?reason={text}&${QS}`,
        rewindPostUri: `${INSTANCE}/rewind?reason={text}&${QS}`,
        purgeHistoryDeleteUri: `${INSTANCE}?${QS}`,
        restartPostUri: `${INSTANCE}/restart?${QS}`,
        suspendPostUri: `${INSTANCE}/suspend?reason={text}&${QS}`,
        resumePostUri: `${INSTANCE}/resume?reason={text}&${QS}`,
    },
    baseUrl: WEBHOOK_BASE,
    requiredQueryStringParameters: ANONYMOUS ? `taskHub=${encodeURIComponent(HUB)}` : CODE,
};
if (MODE === "rpc") {
    clientData.rpcBaseUrl = `${ORIGIN}/durabletask/`;
}

const clientInput = df.input.durableClient();
const client = df.getClient({
    options: { extraInputs: [clientInput] },
    extraInputs: { get: (input) => (input === clientInput ? clientData : undefined) },
});

// ---------------------------------------------------------------------------------------------
// Helpers

let passed = 0;
let failed = 0;

async function step(name, fn) {
    try {
        await fn();
    } catch (err) {
        failed++;
        console.error(`FAIL [${MODE}] ${name}: ${err && err.stack ? err.stack : err}`);
        if (!KEEP_GOING) {
            process.exit(1);
        }
        return;
    }
    passed++;
    console.log(`ok ${passed} - ${name}`);
}

const DEADLINE_MS = 60_000; // a bound on polling, so that a stuck instance fails instead of hanging
const POLL_MS = 25;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// waitFor polls getStatus (the client's own mechanism to follow an instance) until pred holds.
async function waitFor(instanceId, pred, what) {
    const until = Date.now() + DEADLINE_MS;
    let last;
    for (;;) {
        last = await client.getStatus(instanceId);
        if (pred(last)) {
            return last;
        }
        if (Date.now() > until) {
            throw new Error(`instance ${instanceId} never became ${what}; last status: ${JSON.stringify(last)}`);
        }
        await sleep(POLL_MS);
    }
}

const hasStatus = (s) => (st) => st.runtimeStatus === s;

async function waitForList(filter, pred, what) {
    const until = Date.now() + DEADLINE_MS;
    for (;;) {
        const list = await client.getStatusBy(filter);
        if (pred(list)) {
            return list;
        }
        if (Date.now() > until) {
            throw new Error(`getStatusBy(${JSON.stringify(filter)}) never returned ${what}; last: ${list.length} items`);
        }
        await sleep(POLL_MS);
    }
}

// raw sends a request without the client, for what the client does not expose (the status code
// behind a resolved promise, historyEvents, headers).
async function raw(url, init = {}) {
    const res = await fetch(url, init);
    const text = await res.text();
    let json;
    try {
        json = text ? JSON.parse(text) : undefined;
    } catch {
        json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
}

function sameIds(actual, expected, what) {
    const ids = actual.map((s) => s.instanceId);
    assert.equal(new Set(ids).size, ids.length, `${what}: duplicate instance IDs in the result`);
    const want = [...expected].sort();
    assert.deepEqual([...ids].sort(), want, `${what}: instance IDs differ`);
}

function httpRequest(path) {
    return new HttpRequest({ method: "GET", url: `${ORIGIN}${path}` });
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

// Every instance this script creates, so that listings can be checked exactly.
const created = new Set();
function track(id) {
    created.add(id);
    return id;
}

function mgmt(instanceId) {
    return client.createHttpManagementPayload(instanceId);
}

// ---------------------------------------------------------------------------------------------
// Scenarios

console.log(`# durable-functions ${require("durable-functions/package.json").version} against ${ORIGIN} (MODE=${MODE}, hub ${HUB}${ANONYMOUS ? ", anonymous" : ""})`);

// --- start, status, history

let noInputId;
await step("startNew without ID or input returns a 32-hex-digit ID", async () => {
    noInputId = track(await client.startNew("echo"));
    assert.match(noInputId, /^[0-9a-f]{32}$/);
});

await step("instance started without input completes; input and output are the empty string the client sent", async () => {
    const st = await waitFor(noInputId, hasStatus("Completed"), "Completed");
    assert.equal(st.name, "echo");
    assert.equal(st.instanceId, noInputId);
    // The client sends the JSON string "" as the body when there is no input (docs/compat/durable-functions-http.md §8.2).
    assert.equal(st.input, "");
    assert.equal(st.output, "");
});

const helloId = `hello-${MODE}-1`;
await step("startNew with an explicit ID and an object input returns that ID", async () => {
    const id = await client.startNew("hello", { instanceId: helloId, input: { name: "Tokyo" } });
    assert.equal(id, helloId);
    track(id);
});

let helloStatus;
await step("getStatus follows the instance to Completed with its output", async () => {
    helloStatus = await waitFor(helloId, hasStatus("Completed"), "Completed");
    assert.equal(helloStatus.name, "hello");
    assert.equal(helloStatus.instanceId, helloId);
    assert.deepEqual(helloStatus.input, { name: "Tokyo" });
    assert.equal(helloStatus.output, "Hello Tokyo!");
    assert.ok(helloStatus.createdTime instanceof Date && !isNaN(helloStatus.createdTime), "createdTime is a valid Date");
    assert.ok(helloStatus.lastUpdatedTime instanceof Date && !isNaN(helloStatus.lastUpdatedTime), "lastUpdatedTime is a valid Date");
    assert.ok(helloStatus.lastUpdatedTime >= helloStatus.createdTime, "lastUpdatedTime >= createdTime");
    // An explicit taskHubName (rpc: taskHub=HUB is added; webhook: the hub in the URL is replaced).
    const again = await client.getStatus(helloId, { taskHubName: HUB, connectionName: "Storage" });
    assert.equal(again.runtimeStatus, "Completed");
});

await step("getStatus with showHistory: the client parses the answer (it reads `history`, which the API does not send)", async () => {
    const st = await client.getStatus(helloId, { showHistory: true, showHistoryOutput: true });
    assert.equal(st.runtimeStatus, "Completed");
    assert.equal(st.output, "Hello Tokyo!");
    // DurableOrchestrationStatus copies init.history; the API returns historyEvents
    // (docs/compat/durable-functions-http.md §5), so a JS user sees no history through the client.
    assert.equal(st.history, undefined);
});

await step("raw status URL with showHistory&showHistoryOutput has historyEvents ExecutionStarted, TaskCompleted, ExecutionCompleted", async () => {
    const url = `${mgmt(helloId).statusQueryGetUri}&showHistory=true&showHistoryOutput=true`;
    const res = await raw(url);
    assert.equal(res.status, 200, `GET ${url} => ${res.status} ${res.text}`);
    const body = res.json;
    assert.ok(body && Array.isArray(body.historyEvents), `historyEvents is an array: ${res.text}`);
    const ev = body.historyEvents;
    const types = ev.map((e) => e.EventType);
    assert.equal(types[0], "ExecutionStarted", `first event: ${JSON.stringify(types)}`);
    assert.equal(types[types.length - 1], "ExecutionCompleted", `last event: ${JSON.stringify(types)}`);
    assert.equal(ev[0].FunctionName, "hello");
    const done = ev.filter((e) => e.EventType === "TaskCompleted");
    assert.equal(done.length, 1, `one TaskCompleted: ${JSON.stringify(ev)}`);
    assert.equal(done[0].FunctionName, "say_hello");
    assert.equal(done[0].Result, "Hello Tokyo!");
    assert.ok(!types.includes("TaskScheduled"), "TaskScheduled is merged into TaskCompleted");
    assert.ok(!types.includes("OrchestratorStarted"), "OrchestratorStarted events are removed");
    const last = ev[ev.length - 1];
    assert.equal(last.OrchestrationStatus, "Completed");
    assert.equal(last.Result, "Hello Tokyo!");
    for (const e of ev) {
        assert.match(e.Timestamp, ISO_TIME, `Timestamp of ${e.EventType}`);
    }
});

await step("getStatus of an unknown instance rejects with HTTP 404", async () => {
    await assert.rejects(client.getStatus(`no-such-instance-${MODE}`), /HTTP 404/);
});

await step("startNew of an unknown orchestrator rejects with HTTP 400", async () => {
    await assert.rejects(client.startNew("no_such_orchestrator"), /unexpected status code: 400/);
});

// --- listing over more than one page

const BATCH = 130; // the server pages at 100 by default
const WAITERS = 3;
const batchIds = [];
const waiterIds = [];
let t0, t1;
await step(`start ${BATCH} echo and ${WAITERS} wait_approval instances in parallel batches`, async () => {
    t0 = new Date(); // milliseconds, rounded down: not after any creation below
    for (let i = 0; i < BATCH; i += 25) {
        const chunk = [];
        for (let j = i; j < Math.min(i + 25, BATCH); j++) {
            const id = `page-${MODE}-${String(j).padStart(3, "0")}`;
            chunk.push(client.startNew("echo", { instanceId: id, input: { i: j } }).then((got) => {
                assert.equal(got, id);
                batchIds.push(track(got));
            }));
        }
        await Promise.all(chunk);
    }
    await Promise.all(
        Array.from({ length: WAITERS }, (_, k) => {
            const id = `pagewait-${MODE}-${k}`;
            return client.startNew("wait_approval", { instanceId: id }).then((got) => {
                assert.equal(got, id);
                waiterIds.push(track(got));
            });
        }),
    );
    t1 = new Date(Date.now() + 1); // rounded up: not before any creation above
    assert.equal(batchIds.length, BATCH);
    assert.equal(waiterIds.length, WAITERS);
});

await step(`getStatusBy sees all ${BATCH} echo instances Completed and ${WAITERS} waiters Running`, async () => {
    await waitForList({ createdTimeFrom: t0, createdTimeTo: t1, runtimeStatus: ["Completed"] },
        (l) => l.length === BATCH, `${BATCH} Completed`);
    await waitForList({ createdTimeFrom: t0, createdTimeTo: t1, runtimeStatus: ["Running"] },
        (l) => l.length === WAITERS, `${WAITERS} Running`);
});

await step(`getStatusAll follows the continuation token and returns all ${BATCH + WAITERS}+ instances once`, async () => {
    const all = await client.getStatusAll();
    assert.ok(Array.isArray(all), "an array");
    assert.ok(all.length > 100, `more than one page: got ${all.length}`);
    sameIds(all, created, "getStatusAll");
    const one = all.find((s) => s.instanceId === batchIds[0]);
    assert.equal(one.name, "echo");
    assert.equal(one.runtimeStatus, "Completed");
    assert.match(one.createdTime, ISO_TIME);
    assert.match(one.lastUpdatedTime, ISO_TIME);
    assert.ok("input" in one && "output" in one, "input and output keys present");
});

await step("getStatusBy createdTimeFrom/createdTimeTo returns exactly the batch (two pages)", async () => {
    const list = await client.getStatusBy({ createdTimeFrom: t0, createdTimeTo: t1 });
    sameIds(list, [...batchIds, ...waiterIds], "window");
});

await step("getStatusBy with runtimeStatus filters returns exactly the matching subset", async () => {
    const completed = await client.getStatusBy({ createdTimeFrom: t0, createdTimeTo: t1, runtimeStatus: ["Completed"] });
    sameIds(completed, batchIds, "Completed in window");
    for (const s of completed) {
        assert.deepEqual(s.output, s.input, `echo output of ${s.instanceId}`);
    }
    const running = await client.getStatusBy({ createdTimeFrom: t0, createdTimeTo: t1, runtimeStatus: ["Running"] });
    sameIds(running, waiterIds, "Running in window");
    const both = await client.getStatusBy({ createdTimeFrom: t0, createdTimeTo: t1, runtimeStatus: ["Completed", "Running"] });
    sameIds(both, [...batchIds, ...waiterIds], "Completed,Running in window");
    const none = await client.getStatusBy({ createdTimeFrom: t0, createdTimeTo: t1, runtimeStatus: ["Failed"] });
    assert.deepEqual(none, [], "no Failed instance: an empty array");
});

await step("getStatusBy createdTimeTo before the batch returns exactly the earlier instances", async () => {
    const before = await client.getStatusBy({ createdTimeTo: new Date(t0.getTime() - 1) });
    sameIds(before, [noInputId, helloId], "before the batch");
});

// --- external events

const eventId = `event-${MODE}-1`;
await step("raiseEvent to a waiting instance completes it with the event data", async () => {
    track(await client.startNew("wait_approval", { instanceId: eventId }));
    await waitFor(eventId, hasStatus("Running"), "Running");
    const data = { approved: true, by: "alice", note: "ünïcode ✓" };
    await client.raiseEvent(eventId, "approval", data);
    const st = await waitFor(eventId, hasStatus("Completed"), "Completed");
    assert.deepEqual(st.output, data);
});

await step("raiseEvent to a completed instance resolves (server answers 410 Gone)", async () => {
    await client.raiseEvent(helloId, "approval", { late: true });
    const url = mgmt(helloId).sendEventPostUri.replace("{eventName}", "approval");
    const res = await raw(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    assert.equal(res.status, 410, `POST ${url} => ${res.status} ${res.text}`);
});

await step("raiseEvent to an unknown instance rejects", async () => {
    await assert.rejects(client.raiseEvent(`no-such-instance-${MODE}`, "approval", 1), /No instance with ID/);
});

// --- terminate, suspend, resume

const termId = `terminate-${MODE}-1`;
const reason = "stopped by the interop test";
await step("terminate a waiting instance: Terminated with output = reason", async () => {
    track(await client.startNew("wait_approval", { instanceId: termId }));
    await waitFor(termId, hasStatus("Running"), "Running");
    await client.terminate(termId, reason);
    const st = await waitFor(termId, hasStatus("Terminated"), "Terminated");
    assert.equal(st.output, reason);
});

await step("terminate a terminated instance resolves (410); terminate an unknown instance rejects", async () => {
    await client.terminate(termId, "again");
    const url = mgmt(termId).terminatePostUri.replace("{text}", "again");
    const res = await raw(url, { method: "POST" });
    assert.equal(res.status, 410, `POST ${url} => ${res.status} ${res.text}`);
    await assert.rejects(client.terminate(`no-such-instance-${MODE}`, "x"), /No instance with ID/);
});

const suspId = `suspend-${MODE}-1`;
await step("suspend a waiting instance: Suspended", async () => {
    track(await client.startNew("wait_approval", { instanceId: suspId }));
    await waitFor(suspId, hasStatus("Running"), "Running");
    await client.suspend(suspId, "pause");
    await waitFor(suspId, hasStatus("Suspended"), "Suspended");
});

await step("resume the suspended instance: Running", async () => {
    await client.resume(suspId, "go on");
    await waitFor(suspId, hasStatus("Running"), "Running");
});

await step("raiseEvent to the resumed instance completes it", async () => {
    await client.raiseEvent(suspId, "approval", "resumed and approved");
    const st = await waitFor(suspId, hasStatus("Completed"), "Completed");
    assert.equal(st.output, "resumed and approved");
});

await step("rewind of a running instance rejects with the server's message (412 with a JSON string body)", async () => {
    const id = track(await client.startNew("wait_approval", { instanceId: `rewind-running-${MODE}` }));
    await waitFor(id, hasStatus("Running"), "Running");
    // The client rejects with the body as the message: an object body would read [object Object].
    await assert.rejects(client.rewind(id, "x"), { message: `The orchestration instance '${id}' has not failed; only failed instances can be rewound.` });
    await client.terminate(id, "done");
});

await step("suspend and resume of an unknown instance reject", async () => {
    await assert.rejects(client.suspend(`no-such-instance-${MODE}`, "x"), /No instance with ID/);
    await assert.rejects(client.resume(`no-such-instance-${MODE}`, "x"), /No instance with ID/);
});

// --- waitForCompletionOrCreateCheckStatusResponse

await step("waitForCompletionOrCreateCheckStatusResponse on a fast instance: 200 with the output", async () => {
    const input = { fast: true, n: 42 };
    const id = track(await client.startNew("echo", { input }));
    const res = await client.waitForCompletionOrCreateCheckStatusResponse(httpRequest("/api/orders"), id, {
        timeoutInMilliseconds: DEADLINE_MS,
        retryIntervalInMilliseconds: 50,
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), input);
});

await step("waitForCompletionOrCreateCheckStatusResponse on a waiting instance: 202 check-status response that works", async () => {
    const id = track(await client.startNew("wait_approval"));
    const res = await client.waitForCompletionOrCreateCheckStatusResponse(httpRequest("/api/orders"), id, {
        timeoutInMilliseconds: 200,
        retryIntervalInMilliseconds: 50,
    });
    assert.equal(res.status, 202);
    const body = await res.json();
    assert.equal(body.id, id);
    const inst = `${WEBHOOK_BASE}/instances/${id}`;
    assert.ok(body.statusQueryGetUri.startsWith(`${inst}?`), `statusQueryGetUri: ${body.statusQueryGetUri}`);
    assert.ok(body.sendEventPostUri.startsWith(`${inst}/raiseEvent/{eventName}?`), `sendEventPostUri: ${body.sendEventPostUri}`);
    assert.ok(body.terminatePostUri.startsWith(`${inst}/terminate?`), `terminatePostUri: ${body.terminatePostUri}`);
    assert.ok(body.purgeHistoryDeleteUri.startsWith(`${inst}?`), `purgeHistoryDeleteUri: ${body.purgeHistoryDeleteUri}`);
    assert.equal(res.headers.get("Location"), body.statusQueryGetUri);
    assert.equal(res.headers.get("Retry-After"), "10");
    // The URLs it hands out work against the server. The 200 ms wait can end before the first
    // episode ran (a loaded machine): wait for Running, which holds until the event below.
    await waitFor(id, hasStatus("Running"), "Running");
    const status = await raw(body.statusQueryGetUri);
    assert.equal(status.status, 202, `GET ${body.statusQueryGetUri} => ${status.status} ${status.text}`);
    assert.equal(status.json.runtimeStatus, "Running");
    const send = body.sendEventPostUri.replace("{eventName}", "approval");
    const sent = await raw(send, { method: "POST", headers: { "Content-Type": "application/json" }, body: '"via sendEventPostUri"' });
    assert.equal(sent.status, 202, `POST ${send} => ${sent.status} ${sent.text}`);
    const st = await waitFor(id, hasStatus("Completed"), "Completed");
    assert.equal(st.output, "via sendEventPostUri");
});

// --- check-status payloads

await step("createHttpManagementPayload: URLs point at the server with taskHub and code", async () => {
    const p = mgmt(helloId);
    assert.equal(p.id, helloId);
    const keys = ["statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "rewindPostUri",
        "purgeHistoryDeleteUri", "restartPostUri", "suspendPostUri", "resumePostUri"];
    for (const k of keys) {
        assert.equal(typeof p[k], "string", k);
        const u = new URL(p[k]);
        assert.equal(u.origin, ORIGIN, `${k} origin`);
        assert.ok(u.pathname.startsWith(`/runtime/webhooks/durabletask/instances/${helloId}`), `${k} path: ${u.pathname}`);
        assert.equal(u.searchParams.get("taskHub"), HUB, `${k} taskHub`);
        assert.equal(u.searchParams.get("code"), ANONYMOUS ? null : KEY, `${k} code`);
    }
});

await step("createCheckStatusResponse: 202 with Location, Retry-After and the payload", async () => {
    const res = client.createCheckStatusResponse(httpRequest("/api/start?x=1"), helloId);
    assert.equal(res.status, 202);
    const body = await res.json();
    assert.deepEqual(body, mgmt(helloId));
    assert.equal(res.headers.get("Location"), body.statusQueryGetUri);
    assert.equal(res.headers.get("Retry-After"), "10");
});

await step("GET statusQueryGetUri answers 200 for a completed instance and 202 for a running one", async () => {
    const done = await raw(mgmt(helloId).statusQueryGetUri);
    assert.equal(done.status, 200, done.text);
    assert.equal(done.json.runtimeStatus, "Completed");
    assert.equal(done.json.output, "Hello Tokyo!");
    const url = mgmt(waiterIds[0]).statusQueryGetUri;
    const running = await raw(url);
    assert.equal(running.status, 202, running.text);
    assert.equal(running.json.runtimeStatus, "Running");
});

await step(ANONYMOUS ? "an anonymous host answers a webhook URL without code=" : "a webhook URL without code= is refused with 401", async () => {
    const u = new URL(mgmt(helloId).statusQueryGetUri);
    u.searchParams.delete("code");
    const res = await raw(u.href);
    assert.equal(res.status, ANONYMOUS ? 200 : 401, `GET ${u.href} => ${res.status} ${res.text}`);
});

// --- purge

await step("purgeInstanceHistory of a finished instance deletes 1; getStatus then rejects with 404", async () => {
    const res = await client.purgeInstanceHistory(helloId);
    assert.equal(res.instancesDeleted, 1);
    created.delete(helloId);
    await assert.rejects(client.getStatus(helloId), /HTTP 404/);
});

await step("purgeInstanceHistory of an unknown instance deletes 0", async () => {
    const res = await client.purgeInstanceHistory(`no-such-instance-${MODE}`);
    assert.equal(res.instancesDeleted, 0);
});

await step(`purgeInstanceHistoryBy time window + [Completed] deletes exactly the ${BATCH} completed instances`, async () => {
    const res = await client.purgeInstanceHistoryBy({ createdTimeFrom: t0, createdTimeTo: t1, runtimeStatus: ["Completed"] });
    assert.equal(res.instancesDeleted, BATCH);
    for (const id of batchIds) {
        created.delete(id);
    }
    const left = await client.getStatusBy({ createdTimeFrom: t0, createdTimeTo: t1 });
    sameIds(left, waiterIds, "left in the window");
    sameIds(await client.getStatusAll(), created, "getStatusAll after the purge");
});

await step("purgeInstanceHistoryBy matching nothing deletes 0", async () => {
    const res = await client.purgeInstanceHistoryBy({ createdTimeFrom: t0, createdTimeTo: t1, runtimeStatus: ["Completed"] });
    assert.equal(res.instancesDeleted, 0);
});

// --- entities (signalEntity and readEntityState are the client's only entity calls)

// waitEntity polls readEntityState until pred holds.
async function waitEntity(id, pred, what) {
    const until = Date.now() + DEADLINE_MS;
    let last;
    for (;;) {
        last = await client.readEntityState(id);
        if (pred(last)) {
            return last;
        }
        if (Date.now() > until) {
            throw new Error(`entity ${id} never became ${what}; last read: ${JSON.stringify(last)}`);
        }
        await sleep(POLL_MS);
    }
}

const SIGNALS = 30;
const counterId = new df.EntityId("counter", `js-${MODE}${ANONYMOUS ? "-anon" : ""}`);
await step(`signalEntity ${SIGNALS} times: readEntityState returns exactly ${SIGNALS}`, async () => {
    for (let i = 0; i < SIGNALS; i += 10) {
        await Promise.all(Array.from({ length: 10 }, () => client.signalEntity(counterId, "add", 1)));
    }
    const st = await waitEntity(counterId, (s) => s.entityExists && s.entityState >= SIGNALS, `at least ${SIGNALS}`);
    assert.equal(st.entityState, SIGNALS);
    // Read again: nothing was applied twice after the count was reached.
    assert.deepEqual({ ...(await client.readEntityState(counterId)) }, { entityExists: true, entityState: SIGNALS });
});

await step("readEntityState of an entity never signalled: entityExists false", async () => {
    const st = await client.readEntityState(new df.EntityId("counter", `never-signalled-${MODE}`));
    assert.equal(st.entityExists, false);
    assert.equal(st.entityState, undefined);
});

const mixedId = new df.EntityId("Counter", `Mixed-${MODE}`);
await step("signalEntity to a mixed-case name reaches the entity of the lower-case name; the key keeps its case", async () => {
    await client.signalEntity(mixedId, "add", 12);
    const st = await waitEntity(new df.EntityId("counter", mixedId.key), (s) => s.entityExists, "existing");
    assert.equal(st.entityState, 12);
    assert.equal((await client.readEntityState(new df.EntityId("counter", mixedId.key.toLowerCase()))).entityExists, false);
});

await step("signalEntity 'delete' without input removes the state: entityExists false", async () => {
    await client.signalEntity(mixedId, "delete");
    await waitEntity(mixedId, (s) => !s.entityExists, "deleted");
});

await step("signalEntity to an entity the app does not have rejects (400)", async () => {
    await assert.rejects(client.signalEntity(new df.EntityId("no_such_entity", "x"), "add", 1));
});

await step("an entity is not an instance: getStatus of its instance ID rejects with 404", async () => {
    await assert.rejects(client.getStatus(`@counter@${counterId.key}`), /HTTP 404/);
    const all = await client.getStatusAll();
    assert.ok(!all.some((s) => s.instanceId.startsWith("@")), "getStatusAll lists no entity");
});

// --- versions (startNew's version option, client 3.5+)

// A space, a plus and non-ASCII text: the RPC path encodes the version with URLSearchParams
// (space as '+'), the webhook path with encodeURIComponent (space as %20); both must arrive whole.
const VERSION = "2.0 beta+1 ✓";
const versionId = `version-${MODE}-1`;
await step("startNew with a version: the instance runs and its status JSON shows the version", async () => {
    const id = await client.startNew("echo", { instanceId: versionId, input: 7, version: VERSION });
    assert.equal(id, versionId);
    track(id);
    const st = await waitFor(versionId, hasStatus("Completed"), "Completed");
    assert.equal(st.output, 7);
    const res = await raw(mgmt(versionId).statusQueryGetUri);
    assert.equal(res.status, 200, `GET status => ${res.status} ${res.text}`);
    assert.equal(res.json.version, VERSION, `version in ${res.text}`);
    // An instance started without a version has no version key, as in the extension.
    const plain = await raw(mgmt(noInputId).statusQueryGetUri);
    assert.equal(plain.status, 200, `GET status => ${plain.status} ${plain.text}`);
    assert.ok(!("version" in plain.json), `no version key in ${plain.text}`);
});

await step("GET instances?version= lists exactly the instances of that version", async () => {
    const list = (v) => raw(`${WEBHOOK_BASE}/instances/?version=${encodeURIComponent(v)}&${QS}`);
    const res = await list(VERSION);
    assert.equal(res.status, 200, `list => ${res.status} ${res.text}`);
    assert.deepEqual(res.json.map((s) => [s.instanceId, s.version]), [[versionId, VERSION]]);
    const other = await list("2.0");
    assert.equal(other.status, 200, `list => ${other.status} ${other.text}`);
    assert.deepEqual(other.json, [], "another version lists nothing");
});

// ---------------------------------------------------------------------------------------------

if (failed > 0) {
    console.error(`FAILED ${failed} of ${passed + failed} steps (MODE=${MODE})`);
    process.exit(1);
}
console.log(`OK ${passed} steps`);
process.exit(0); // keep-alive sockets would otherwise hold the process open
