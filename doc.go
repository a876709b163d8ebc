// Package reprise runs durable workflows written as ordinary Go code, in the model of Azure
// Durable Functions: orchestrators coordinate activities, timers, external events and
// sub-orchestrations, and are replayed from their stored history after every step, so they
// survive crashes and restarts.
//
// # Activities and orchestrators
//
// An activity is a Go function that does real work. It runs at least once: if the process dies
// before its result is stored, it runs again.
//
//	var SayHello = reprise.NewActivity("say_hello",
//		func(ctx context.Context, city string) (string, error) {
//			return "Hello " + city + "!", nil
//		})
//
// An orchestrator is a deterministic Go function that calls activities and awaits their results.
// It is replayed: after each step, Reprise runs it again from the start against its history, and
// the calls it already made complete at once from what was recorded. (Live orchestrators are
// cached in memory, so in practice replay only happens after a restart or a cache eviction.)
//
//	var HelloSequence = reprise.NewOrchestrator("hello_sequence_orchestrator",
//		func(ctx *reprise.OrchestrationContext, _ reprise.None) ([]string, error) {
//			var out []string
//			for _, city := range []string{"Tokyo", "Seattle", "London"} {
//				greeting, err := SayHello.Call(ctx, city).Await()
//				if err != nil {
//					return nil, err
//				}
//				out = append(out, greeting)
//			}
//			return out, nil
//		})
//
// Orchestrator code must make the same durable calls in the same order on every replay. So it
// must not do I/O, read the clock (use ctx.Now), draw random numbers (use ctx.NewUUID), start
// goroutines or let map iteration order decide what it calls. When code changes under running
// instances in a way that breaks this, the instance fails with a non-determinism error naming
// the recorded call and the new one; deploy matching code and Client.Rewind it. Guard a change
// that running instances must not see with ctx.IsPatched, and check new code against histories
// exported from production with ReplayHistory or reprisetest.CheckReplay in your tests
// (docs/patching.md). Nor may it block except in Await: an
// orchestrator that runs for more than a second (WithDeadlockTimeout) without yielding is logged
// as deadlocked, and its episode is given up and tried again later.
//
// # Running them
//
// An App holds the definitions and runs them from a store: by default the embedded SQLite file
// reprise.db in the working directory, durable on disk.
//
//	app := reprise.NewApp()
//	app.Register(SayHello, HelloSequence)
//	if err := app.Start(ctx); err != nil { ... }
//	defer app.Shutdown(ctx)
//
//	id, err := HelloSequence.Start(ctx, app.Client(), reprise.None{})
//	inst, err := app.Client().WaitForCompletion(ctx, id)
//	// inst.Status == reprise.StatusCompleted
//	// inst.Output == ["Hello Tokyo!","Hello Seattle!","Hello London!"]
//
// # What orchestrators can do
//
//   - call activities (Activity.Call, CallActivity), optionally with a RetryPolicy whose waits are
//     durable timers;
//   - call sub-orchestrations (Orchestrator.Call, CallSubOrchestrator), with a chosen instance ID
//     or a derived one, and retries;
//   - wait on durable timers (CreateTimer, CreateTimerAt), which fire on time also after a
//     restart, and can be cancelled;
//   - wait for external events (WaitForEvent), with an optional timeout; events raised before the
//     wait are kept;
//   - fan out and in (All) and race tasks (Any);
//   - start over with a new input (ContinueAsNew), optionally keeping unprocessed events;
//   - publish a custom status (SetCustomStatus), log without duplicates on replay (Logger), and
//     read the replay-safe time (Now) and IDs (InstanceID, ParentInstanceID, NewUUID);
//   - signal, call and lock durable entities (below).
//
// # Durable entities
//
// An entity is a small actor with durable state of its own, reached by a name and a key
// (EntityID): a counter, a cart, an account. NewEntity defines one; its function runs each
// operation, one at a time per entity, and the state is saved after each batch. An operation
// that fails is rolled back. Clients and orchestrations signal entities (Client.SignalEntity,
// OrchestrationContext.SignalEntity; WithSignalTime delays a signal), orchestrations call them
// and await the result (CallEntity), and lock several in a critical section
// (OrchestrationContext.LockEntities) that no other caller enters until it is released or the
// orchestration ends. Client.GetEntity, QueryEntities and CleanEntityStorage read and tidy
// them. See docs/entities.md.
//
//	counter := reprise.NewEntity("counter", func(ctx *reprise.EntityContext[int]) (any, error) {
//		var n int
//		if err := ctx.GetInput(&n); err != nil {
//			return nil, err
//		}
//		ctx.SetState(ctx.State() + n) // every operation adds, in this one
//		return ctx.State(), nil
//	})
//
// Activities get a context.Context that is cancelled on shutdown, and ActivityInfoFrom tells them
// the instance, task and attempt they run for. An activity's error reaches the orchestrator as a
// *TaskFailedError with the failure's type, message and details (return an *Error to choose
// them); a panic in an activity or orchestrator is recorded as a failure with its stack.
//
// # Managing instances
//
// The Client starts instances (with an ID, a scheduled start time and an ID reuse policy), reads
// their status and history, lists them with filters and paging, raises events, terminates
// (recursively), suspends, resumes, restarts, rewinds and purges them, and waits for their start
// or completion without polling.
//
// # Testing orchestrators
//
// Package reprisetest runs orchestrators in unit tests on this engine, in the test's process,
// with a virtual clock (WithClock) that jumps to the next timer as soon as nothing else can
// happen, so that a 30-day timer completes in milliseconds; it mocks activities and
// sub-orchestrators and schedules callbacks at virtual times:
//
//	h := reprisetest.New(t, SayHello, HelloSequence)
//	r := h.Run(HelloSequence, reprise.None{})
//	r.RequireStatus(reprise.StatusCompleted)
//	greetings := reprisetest.Output[[]string](r)
//
// # Versions
//
// Each instance carries the orchestration version it was started with (WithVersion, or the App's
// default from WithVersioning or host.json's defaultVersion), for its whole life; orchestrators
// read it with OrchestrationContext.Version and sub-orchestrations inherit it. A host with a
// default version runs only the instances its match strategy allows (CurrentOrOlder by default)
// and leaves the others for a host of their version (Reject) or fails them (Fail), so that two
// builds of an app can share a task hub during a rolling deploy. See docs/versioning.md.
//
// # Function apps over HTTP
//
// An App is also a function app. HandleFunc adds HTTP starters (with the Functions auth levels
// AuthAnonymous, AuthFunction and AuthAdmin); Client.WriteCheckStatusResponse answers 202
// Accepted with the management URLs; ListenAndServe serves the routes and the Durable Functions
// HTTP management API on 127.0.0.1:7071 until its context ends:
//
//	app.HandleFunc("POST /api/start-sequence", func(w http.ResponseWriter, r *http.Request) {
//		id, err := HelloSequence.Start(r.Context(), app.Client(), reprise.None{})
//		switch {
//		case errors.Is(err, reprise.ErrInstanceExists): // an ID given with WithInstanceID is active
//			http.Error(w, err.Error(), http.StatusConflict)
//			return
//		case err != nil:
//			http.Error(w, err.Error(), http.StatusInternalServerError)
//			return
//		}
//		app.Client().WriteCheckStatusResponse(w, r, id)
//	}, reprise.AuthAnonymous)
//	if err := app.ListenAndServe(ctx); err != nil { // nil after a graceful shutdown
//		log.Fatal(err)
//	}
//
// The same listener serves a web dashboard at /dashboard/ (the instances, their timelines and the
// management actions; its data needs the master key unless the management API is anonymous).
// REPRISE_* environment variables and host.json (extensions.durableTask) configure what the
// options leave open; keys the configuration leaves open are generated once and kept in the
// store (`reprise keys` prints them). See docs/http-api.md and docs/dashboard.md in the
// repository for the settings, the keys and the API's routes.
package reprise
