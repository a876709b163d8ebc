// What worker.mjs and scenarios.mjs need from a Durable Task JavaScript SDK, for the two packages
// under test. @microsoft/durabletask-js 0.4.0 takes options objects and exports everything from
// its index; @dapr/durabletask-js 1.0.0 (the Dapr fork of an older release) takes positional
// arguments, exports only the client, the worker and the contexts from its index, and has no
// retry policies, work-item filters, rewind, restart, query, history or recursive terminate.

import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

export const MICROSOFT = "@microsoft/durabletask-js";
export const DAPR = "@dapr/durabletask-js";

// The SDK logs every call through its logger (Microsoft) or the console (Dapr). Only warnings and
// errors are kept, on stderr, so that stdout carries the scripts' own lines.
// DURABLETASK_JS_VERBOSE=1 keeps everything, on stderr.
const verbose = Boolean(process.env.DURABLETASK_JS_VERBOSE);
const toStderr = (...args) => console.error(...args);
const quiet = { info: verbose ? toStderr : () => {}, debug: verbose ? toStderr : () => {}, warn: toStderr, error: toStderr };

// load returns the package's API in one shape:
//   newClient(addr), newWorker(addr, {filters}) - the SDK's TaskHubGrpcClient and TaskHubGrpcWorker
//   OrchestrationStatus, PurgeInstanceCriteria, whenAll
//   callSubOrchestrator(ctx, name, input, instanceId)
//   RetryPolicy, terminateOptions, HistoryEventType, TaskEntity, EntityInstanceId (Microsoft
//   only, else undefined)
export function load(pkg) {
    switch (pkg) {
        case MICROSOFT: {
            const sdk = require(pkg);
            return {
                pkg,
                newClient: (addr) => new sdk.TaskHubGrpcClient({ hostAddress: addr, logger: quiet }),
                // filters: the SDK's own work-item filters, built from what the worker registered
                // ("auto"); without them the SDK sends none and gets every work item.
                newWorker: (addr, { filters = false } = {}) =>
                    new sdk.TaskHubGrpcWorker({
                        hostAddress: addr,
                        logger: quiet,
                        ...(filters ? { workItemFilters: "auto" } : {}),
                    }),
                OrchestrationStatus: sdk.OrchestrationStatus,
                PurgeInstanceCriteria: sdk.PurgeInstanceCriteria,
                whenAll: sdk.whenAll,
                callSubOrchestrator: (ctx, name, input, instanceId) =>
                    ctx.callSubOrchestrator(name, input, instanceId ? { instanceId } : undefined),
                RetryPolicy: sdk.RetryPolicy,
                terminateOptions: sdk.terminateOptions,
                HistoryEventType: sdk.HistoryEventType,
                // Durable entities: entity classes, their IDs and the worker's addNamedEntity.
                TaskEntity: sdk.TaskEntity,
                EntityInstanceId: sdk.EntityInstanceId,
            };
        }
        case DAPR: {
            const sdk = require(pkg);
            return {
                pkg,
                newClient: (addr) => new sdk.TaskHubGrpcClient(addr),
                newWorker: (addr, { filters = false } = {}) => {
                    if (filters) {
                        throw new Error(`${pkg} has no work-item filters`);
                    }
                    return new sdk.TaskHubGrpcWorker(addr);
                },
                OrchestrationStatus: require(`${pkg}/orchestration/enum/orchestration-status.enum`).OrchestrationStatus,
                PurgeInstanceCriteria: require(`${pkg}/orchestration/orchestration-purge-criteria`).PurgeInstanceCriteria,
                whenAll: require(`${pkg}/task`).whenAll,
                callSubOrchestrator: (ctx, name, input, instanceId) => ctx.callSubOrchestrator(name, input, instanceId),
            };
        }
        default:
            throw new Error(`${pkg} is not a package these scripts know (${MICROSOFT}, ${DAPR})`);
    }
}

// silenceConsole sends console.log, console.info and console.debug (which the Dapr SDK calls for
// every call and work item) to stderr, and returns a printer to stdout for the script's lines.
export function silenceConsole() {
    const print = console.log.bind(console);
    console.log = verbose ? toStderr : () => {};
    console.info = console.log;
    console.debug = console.log;
    return print;
}
