// A Durable Task worker of @microsoft/durabletask-js (TaskHubGrpcWorker) with the hello sequence,
// for `reprise bench grpc`: the orchestrator "HelloSequence" calls the activity "SayHello" with
// "Tokyo", "Seattle" and "London" in turn and returns the three greetings ("Hello, Tokyo!", ...).
//
//   node bench-worker.mjs --addr HOST:PORT [-v]
//
// It connects to the gRPC backend at --addr (`reprise serve`, or the durabletask-go sidecar),
// prints "ready" once the worker has started, and runs until SIGINT or SIGTERM. The SDK's debug
// and info messages (a few per work item) are dropped unless -v is given; warnings and errors go
// to standard error.

import { createRequire } from "node:module";
import { parseArgs } from "node:util";

const require = createRequire(import.meta.url);
const { TaskHubGrpcWorker } = require("@microsoft/durabletask-js");

const { values } = parseArgs({ options: { addr: { type: "string" }, v: { type: "boolean" } } });
if (!values.addr) {
    console.error("usage: node bench-worker.mjs --addr HOST:PORT [-v]");
    process.exit(2);
}

const say = (level) => (msg, ...args) => console.error(`bench-worker: ${level}: ${msg}`, ...args);
const chatty = values.v ? say : () => () => {};
const logger = { error: say("ERROR"), warn: say("WARNING"), info: chatty("INFO"), debug: chatty("DEBUG") };

// The SDK drives an orchestrator that returns an async generator; any other return value is its output.
async function* helloSequence(ctx) {
    const greetings = [];
    for (const city of ["Tokyo", "Seattle", "London"]) {
        greetings.push(yield ctx.callActivity("SayHello", city));
    }
    return greetings;
}

const sayHello = (_ctx, city) => `Hello, ${city}!`;

const worker = new TaskHubGrpcWorker({ hostAddress: values.addr, logger, shutdownTimeoutMs: 2000 });
worker.addNamedOrchestrator("HelloSequence", helloSequence);
worker.addNamedActivity("SayHello", sayHello);
await worker.start();
console.log("ready");

let stopping = false;
async function stop() {
    if (stopping) return;
    stopping = true;
    try {
        await worker.stop();
    } finally {
        process.exit(0);
    }
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
