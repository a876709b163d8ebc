// The orchestrators, activities and entities that worker.mjs registers, in sets (FUNCTION_SETS),
// written once for both packages through the adapter of sdk.mjs (entities only for
// @microsoft/durabletask-js, which has them). Activities that say who ran them return the
// worker's name (worker.mjs --name), so the scenarios can tell which worker did the work.

// attempts counts, per orchestration instance, the calls of the activities that fail on purpose
// (Flaky, FailOnce). It lives in the worker process: the scenarios that use it run on one worker.
const attempts = new Map();

function attempt(key) {
    const n = (attempts.get(key) || 0) + 1;
    attempts.set(key, n);
    return n;
}

// Hold blocks until the test releases the worker (a "release" line on its stdin, see worker.mjs),
// after printing "hold <worker> <instance> <input>" on stdout: that line is how the test knows an
// activity is in flight on that worker. After the release, holds pass at once.
let released = false;
const waiting = [];

export function release() {
    released = true;
    for (const resolve of waiting.splice(0)) {
        resolve();
    }
}

// hold waits for the release, after printing "hold <worker> <what> <input>".
async function hold(print, name, what, input) {
    print(`hold ${name} ${what} ${input}`);
    if (!released) {
        await new Promise((resolve) => waiting.push(resolve));
    }
}

// entityFunctions returns the entities (@microsoft/durabletask-js only; {} for a package without
// them) and the orchestrations that use them.
function entityFunctions(sdk, name, print) {
    if (!sdk.TaskEntity) {
        return { entities: {}, orchestrators: {} };
    }
    const { TaskEntity, EntityInstanceId } = sdk;
    const counterID = (key) => new EntityInstanceId("counter", key);
    // Counter: a number; each operation returns the state after it.
    class Counter extends TaskEntity {
        initializeState() {
            return 0;
        }
        add(n) {
            this.state += n;
            return this.state;
        }
        get() {
            return this.state;
        }
        // hold adds n once the test releases the worker (see Hold).
        async hold(n) {
            await hold(print, name, this.context.id.toString(), n);
            this.state += n;
            return this.state;
        }
        // fail changes the state and fails: the change is rolled back.
        fail() {
            this.state += 1000;
            throw new Error("fail: on purpose, after changing the state");
        }
        // relay adds n here and signals the counter `to` to add it too.
        relay({ to, n }) {
            this.context.signalEntity(counterID(to), "add", n);
            this.state += n;
            return this.state;
        }
        // start starts the orchestration Sequence under the ID.
        start(id) {
            this.context.scheduleNewOrchestration("Sequence", [id], { instanceId: id });
            return id;
        }
    }
    return {
        entities: { counter: () => new Counter() },
        orchestrators: {
            // An orchestration's entity traffic: a signal, then calls (which run after it, as
            // messages from one sender run in order), and a failing call.
            async *CounterOrch(ctx, key) {
                const id = counterID(key);
                ctx.entities.signalEntity(id, "add", 5);
                const added = yield ctx.entities.callEntity(id, "add", 1);
                let failure = null;
                try {
                    yield ctx.entities.callEntity(id, "fail");
                } catch (err) {
                    failure = err.message.includes("on purpose") ? "failed on purpose" : err.message;
                }
                const value = yield ctx.entities.callEntity(id, "get");
                return { added, failure, value };
            },
            // A critical section over two counters: move amount from one to the other.
            async *Transfer(ctx, { from, to, amount }) {
                const lock = yield ctx.entities.lockEntities(counterID(from), counterID(to));
                const inSection = ctx.entities.isInCriticalSection().inSection;
                const balance = yield ctx.entities.callEntity(counterID(from), "get");
                yield ctx.entities.callEntity(counterID(from), "add", -amount);
                yield ctx.entities.callEntity(counterID(to), "add", amount);
                lock.release();
                return { balance, inSection, after: ctx.entities.isInCriticalSection().inSection };
            },
            // A critical section that waits for an event that never comes: terminated, its lock
            // must be released.
            async *LockAndWait(ctx, key) {
                yield ctx.entities.lockEntities(counterID(key));
                return yield ctx.waitForExternalEvent("never");
            },
            // A critical section whose call holds its worker (Counter.hold): for a worker killed
            // while it holds an entity batch under a lock.
            async *HoldUnderLock(ctx, key) {
                const lock = yield ctx.entities.lockEntities(counterID(key));
                const value = yield ctx.entities.callEntity(counterID(key), "hold", 1);
                lock.release();
                return value;
            },
        },
    };
}

// registerFunctions adds the functions of the set to worker; name is the worker's name.
export function registerFunctions(sdk, worker, set, name, print) {
    const ents = entityFunctions(sdk, name, print);
    const all = {
        orchestrators: {
            // sequence: activities one after another, each result feeding the output.
            async *Sequence(ctx, cities) {
                const out = [];
                for (const city of cities) {
                    out.push(yield ctx.callActivity("Hello", city));
                }
                return out;
            },
            // fan-out/fan-in: n activities at once, then their sum.
            async *FanOut(ctx, n) {
                const tasks = [];
                for (let i = 1; i <= n; i++) {
                    tasks.push(ctx.callActivity("Double", i));
                }
                const results = yield sdk.whenAll(tasks);
                return { results, sum: results.reduce((a, b) => a + b, 0) };
            },
            // sub-orchestrations: one under an ID of the parent's choosing, one under the SDK's.
            async *Parent(ctx, names) {
                const named = yield sdk.callSubOrchestrator(ctx, "Child", names[0], `${ctx.instanceId}-child`);
                const unnamed = yield sdk.callSubOrchestrator(ctx, "Child", names[1]);
                return [named, unnamed];
            },
            async *Child(ctx, name) {
                const greeting = yield ctx.callActivity("Hello", name);
                return `${greeting} from ${ctx.instanceId}`;
            },
            // timers: a durable timer of the given seconds; the times the orchestration saw.
            async *Timer(ctx, seconds) {
                const start = ctx.currentUtcDateTime;
                yield ctx.createTimer(new Date(start.getTime() + seconds * 1000));
                return { start: start.toISOString(), fired: ctx.currentUtcDateTime.toISOString() };
            },
            // external events: the data of the event "approval".
            async *Approval(ctx) {
                return yield ctx.waitForExternalEvent("approval");
            },
            // external events, in an order other than the one they were raised in.
            async *TwoEvents(ctx) {
                const first = yield ctx.waitForExternalEvent("first");
                const second = yield ctx.waitForExternalEvent("second");
                return [first, second];
            },
            // continue-as-new: counts up to 3, one generation per step.
            async *Counter(ctx, n) {
                if (n < 3) {
                    ctx.continueAsNew(n + 1, false);
                    return;
                }
                return n;
            },
            // terminate: a parent waiting on a child that waits for an event that never comes.
            async *ParentOfWaiter(ctx) {
                return yield sdk.callSubOrchestrator(ctx, "Approval", null, `${ctx.instanceId}-child`);
            },
            // rewind: fails on the first run of FailOnce, succeeds once rewound.
            async *Rewindable(ctx) {
                return yield ctx.callActivity("FailOnce");
            },
            // a worker killed mid-run, and two workers sharing the load: n Holds at once, with
            // inputs 1 to n (the Dapr SDK drops a falsy input such as 0).
            async *HoldFanOut(ctx, n) {
                const tasks = [];
                for (let i = 1; i <= n; i++) {
                    tasks.push(ctx.callActivity("Hold", i));
                }
                return yield sdk.whenAll(tasks);
            },
        },
        activities: {
            Hello: (_ctx, name) => `Hello ${name}`,
            Double: (_ctx, n) => 2 * n,
            // Flaky fails its first `failures` calls for an instance, then returns the count.
            Flaky: (ctx, failures) => {
                const n = attempt(`Flaky/${ctx.orchestrationId}`);
                if (n <= failures) {
                    throw new Error(`Flaky: attempt ${n} of ${ctx.orchestrationId} fails on purpose`);
                }
                return { attempts: n, worker: name };
            },
            FailOnce: (ctx) => {
                const n = attempt(`FailOnce/${ctx.orchestrationId}`);
                if (n === 1) {
                    throw new Error(`FailOnce: the first attempt of ${ctx.orchestrationId} fails on purpose`);
                }
                return { attempts: n, worker: name };
            },
            Hold: async (ctx, i) => {
                await hold(print, name, ctx.orchestrationId, i);
                return { i, worker: name };
            },
        },
        entities: ents.entities,
    };
    Object.assign(all.orchestrators, ents.orchestrators);
    if (sdk.RetryPolicy) {
        // activity retries: Flaky under a retry policy of `maxAttempts` attempts.
        all.orchestrators.Retry = async function* (ctx, { failures, maxAttempts }) {
            const retry = new sdk.RetryPolicy({ maxNumberOfAttempts: maxAttempts, firstRetryIntervalInMilliseconds: 100 });
            return yield ctx.callActivity("Flaky", failures, { retry });
        };
    }

    // work-item filters: two workers, each with half of what FilterOrch needs.
    const filterFirst = {
        orchestrators: {
            async *FilterOrch(ctx) {
                const mine = yield ctx.callActivity("FilterAct");
                ctx.setCustomStatus("FilterAct done");
                const other = yield ctx.callActivity("FilterOtherAct");
                return [mine, other];
            },
        },
        activities: { FilterAct: () => name },
    };
    const filterSecond = {
        orchestrators: {
            async *FilterUnowned(ctx) {
                return yield ctx.callActivity("FilterOtherAct");
            },
        },
        activities: { FilterOtherAct: () => name },
    };

    // mixed: beside a Go App (cmd/reprise TestInteropDurableTaskJSMixed), which registers the
    // orchestrator GoCallsJS and the activity GoReverse; this worker has neither, and sends no
    // filters: it runs Shout for the Go orchestrator and JSCallsGo, which calls the Go activity.
    const mixed = {
        orchestrators: {
            async *JSCallsGo(ctx, text) {
                return yield ctx.callActivity("GoReverse", text);
            },
            // Calls the App's Go entity GoCounter (an entity name the worker does not run).
            async *JSCallsGoEntity(ctx, n) {
                const id = new sdk.EntityInstanceId("GoCounter", "js");
                ctx.entities.signalEntity(id, "add", n);
                return yield ctx.entities.callEntity(id, "add", n);
            },
        },
        activities: { Shout: (ctx, text) => `${String(text).toUpperCase()}! (${name})` },
        // The Go orchestrator GoCallsJSEntity calls, signals and locks it.
        entities: ents.entities,
    };

    const sets = { all, "filter-first": filterFirst, "filter-second": filterSecond, mixed };
    const chosen = sets[set];
    if (!chosen) {
        throw new Error(`no function set ${set} (sets: ${Object.keys(sets).join(", ")})`);
    }
    for (const [fnName, fn] of Object.entries(chosen.orchestrators)) {
        worker.addNamedOrchestrator(fnName, fn);
    }
    for (const [fnName, fn] of Object.entries(chosen.activities)) {
        worker.addNamedActivity(fnName, fn);
    }
    const entities = chosen.entities ?? {};
    for (const [entName, factory] of Object.entries(entities)) {
        worker.addNamedEntity(entName, factory);
    }
    return Object.keys(chosen.orchestrators)
        .concat(Object.keys(chosen.activities))
        .concat(Object.keys(entities).map((n) => `entity:${n}`));
}
