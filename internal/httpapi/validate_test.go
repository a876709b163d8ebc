package httpapi

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/reprise-dev/reprise/internal/control"
)

// TestHostileInput sends what no route may pass on to the backend: text that is not UTF-8 or
// holds NUL, text past its length limit, bodies that are not UTF-8 and dates outside the stores'
// range. Each is a 400 naming the problem, and the backend sees nothing (no start, no command,
// no purge, no query).
func TestHostileInput(t *testing.T) {
	untouched := func(t *testing.T, f *fakeBackend, _ *httptest.ResponseRecorder) {
		t.Helper()
		if len(f.instances) != 8 || len(f.callLog()) != 0 || !f.lastPurge.CreatedFrom.IsZero() || !f.lastQuery.CreatedFrom.IsZero() ||
			f.lastQuery.IDPrefix != "" || f.lastQuery.Versions != nil || f.lastQuery.ContinuationToken != "" || len(f.signalLog()) != 0 || f.lastEntityQ != (control.EntityQuery{}) {
			t.Errorf("the backend was reached: %d instances, calls %q, purge %+v, query %+v, signals %+v, entity query %+v",
				len(f.instances), f.callLog(), f.lastPurge, f.lastQuery, f.signalLog(), f.lastEntityQ)
		}
	}
	long := strings.Repeat("a", 2049)
	notUTF8 := []string{"not valid UTF-8", "URL path segment", "must be UTF-8 without NUL"}
	nul := []string{"contains a NUL character"}
	outOfRange := []string{"want a date from 1678-01-01 to 2261-12-31"}
	cases := []routeCase{
		// Instance IDs and orchestrator names in the path.
		{name: "start, ID not UTF-8", req: request{method: "POST", target: wh + "/orchestrators/hello/x-%FF"}, contains: notUTF8},
		{name: "start, ID with truncated UTF-8", req: request{method: "POST", target: wh + "/orchestrators/hello/x-%E2%82"}, contains: notUTF8},
		{name: "start, ID with NUL", req: request{method: "POST", target: wh + "/orchestrators/hello/x%00y"}, contains: nul},
		{name: "start, huge ID", req: request{method: "POST", target: wh + "/orchestrators/hello/" + long}, contains: []string{"2049 bytes long, the limit is 2048"}},
		{name: "start, name not UTF-8", req: request{method: "POST", target: wh + "/orchestrators/hel%FFlo"}, contains: notUTF8},
		{name: "status, ID not UTF-8", req: request{target: wh + "/instances/run%FF"}, contains: notUTF8},
		{name: "status, ID with NUL", req: request{target: wh + "/instances/run1%00"}, contains: nul},
		{name: "purge, ID not UTF-8", req: request{method: "DELETE", target: wh + "/instances/done%FF"}, contains: notUTF8},
		{name: "terminate, ID not UTF-8", req: request{method: "POST", target: wh + "/instances/run%FF/terminate"}, contains: notUTF8},
		{name: "raise, event name not UTF-8", req: request{method: "POST", target: wh + "/instances/run1/raiseEvent/ev%FF", header: jsonHeader, body: "1"}, contains: notUTF8},
		{name: "raise, event name with NUL", req: request{method: "POST", target: wh + "/instances/run1/raiseEvent/ev%00", header: jsonHeader, body: "1"}, contains: nul},
		{name: "raise, huge event name", req: request{method: "POST", target: wh + "/instances/run1/raiseEvent/" + long, header: jsonHeader, body: "1"}, contains: []string{"limit is 2048"}},
		// Entity names and keys in the path, the operation name, the entity listing's token.
		{name: "entity read, key not UTF-8", req: request{target: wh + "/entities/counter/x%FF"}, contains: notUTF8},
		{name: "entity read, name not UTF-8", req: request{target: wh + "/entities/cou%C3nter/x"}, contains: notUTF8},
		{name: "entity signal, key with NUL", req: request{method: "POST", target: wh + "/entities/counter/x%00?op=add"}, contains: nul},
		{name: "entity signal, huge key", req: request{method: "POST", target: wh + "/entities/counter/" + long + "?op=add"}, contains: []string{"limit is 2048"}},
		{name: "entity delete, key not UTF-8", req: request{method: "DELETE", target: wh + "/entities/counter/%FE"}, contains: notUTF8},
		{name: "entity signal, op not UTF-8", req: request{method: "POST", target: wh + "/entities/counter/x?op=%FF"}, contains: []string{"operation name (op)", "not valid UTF-8"}},
		{name: "entity signal, op with NUL", req: request{method: "POST", target: wh + "/entities/counter/x?op=a%00"}, contains: []string{"operation name (op)", "NUL"}},
		{name: "entity list, name with NUL", req: request{target: wh + "/entities/co%00unter"}, contains: nul},
		{name: "entity list, token not UTF-8", req: request{target: wh + "/entities", header: map[string]string{"x-ms-continuation-token": "epos-\xff"}}, contains: []string{"continuation token", "not valid UTF-8"}},
		{name: "entity list, huge token", req: request{target: wh + "/entities/counter", header: map[string]string{"x-ms-continuation-token": strings.Repeat("t", 8193)}}, contains: []string{"limit is 8192"}},
		// Free-text query parameters and the continuation token.
		{name: "terminate, reason not UTF-8", req: request{method: "POST", target: wh + "/instances/run1/terminate?reason=%FF"}, contains: []string{"'reason'", "not valid UTF-8"}},
		{name: "suspend, reason with NUL", req: request{method: "POST", target: wh + "/instances/run1/suspend?reason=a%00b"}, contains: []string{"'reason'", "NUL"}},
		{name: "rewind, huge reason", req: request{method: "POST", target: wh + "/instances/fail1/rewind?reason=" + strings.Repeat("r", 64<<10+1)}, contains: []string{"'reason'", "limit is 65536"}},
		{name: "list, prefix not UTF-8", req: request{target: wh + "/instances?instanceIdPrefix=run%FF"}, contains: []string{"'instanceIdPrefix'", "not valid UTF-8"}},
		{name: "list, prefix with NUL", req: request{target: wh + "/instances?instanceIdPrefix=%00"}, contains: []string{"'instanceIdPrefix'", "NUL"}},
		{name: "list, token not UTF-8", req: request{target: wh + "/instances", header: map[string]string{"x-ms-continuation-token": "pos-\xff"}}, contains: []string{"continuation token", "not valid UTF-8"}},
		{name: "list, huge token", req: request{target: wh + "/instances", header: map[string]string{"x-ms-continuation-token": strings.Repeat("t", 8193)}}, contains: []string{"continuation token", "limit is 8192"}},
		{name: "start, version not UTF-8", req: request{method: "POST", target: wh + "/orchestrators/hello/v?version=1.%FF"}, contains: []string{"'version'", "not valid UTF-8"}},
		{name: "start, version with NUL", req: request{method: "POST", target: wh + "/orchestrators/hello?version=1%00"}, contains: []string{"'version'", "NUL"}},
		{name: "start, huge version", req: request{method: "POST", target: RPCBase + "/orchestrators/hello?version=" + long, remote: "127.0.0.1:5000"},
			contains: []string{"'version'", "2049 bytes long, the limit is 2048"}},
		{name: "list, version not UTF-8", req: request{target: wh + "/instances?version=1.0&version=%E2%82"}, contains: []string{"'version'", "not valid UTF-8"}},
		{name: "list, version with NUL", req: request{target: wh + "/instances?version=%00"}, contains: []string{"'version'", "NUL"}},
		{name: "list, huge version", req: request{target: wh + "/instances?version=" + long}, contains: []string{"'version'", "limit is 2048"}},
		{name: "task hub not UTF-8", req: request{target: wh + "/instances/run1?taskHub=%FF"}, contains: []string{"'taskHub'"}},
		// Bodies: JSON text must be UTF-8 (encoding/json would pass it on).
		{name: "start, input not UTF-8", req: request{method: "POST", target: wh + "/orchestrators/hello", body: "\"\xff\""}, contains: []string{"Invalid JSON content", "not valid UTF-8"}},
		{name: "raise, data not UTF-8", req: request{method: "POST", target: wh + "/instances/run1/raiseEvent/ev", header: jsonHeader, body: "[\"a\xc3\"]"}, contains: []string{"not valid UTF-8"}},
		{name: "entity signal, text not UTF-8", req: request{method: "POST", target: wh + "/entities/counter/x?op=add", body: "a\xffb",
			header: map[string]string{"Content-Type": "text/plain"}}, contains: []string{"not valid UTF-8"}},
		{name: "entity signal, JSON not UTF-8", req: request{method: "POST", target: wh + "/entities/counter/x?op=add", body: "\"\xc3\"", header: jsonHeader},
			contains: []string{"not valid UTF-8"}},
		// Dates outside the stores' range, including Go's zero time: a bound given is a bound.
		{name: "list, from 9999", req: request{target: wh + "/instances?createdTimeFrom=9999-01-01"}, contains: append([]string{"'createdTimeFrom'"}, outOfRange...)},
		{name: "list, to year 1", req: request{target: wh + "/instances?createdTimeTo=0001-01-01T00:00:00Z"}, contains: append([]string{"'createdTimeTo'"}, outOfRange...)},
		{name: "list, just past the range", req: request{target: wh + "/instances?createdTimeTo=2262-01-01"}, contains: outOfRange},
		{name: "list, just before the range", req: request{target: wh + "/instances?createdTimeFrom=1677-12-31T23:59:59.999999999Z"}, contains: outOfRange},
		{name: "entities, from 9999", req: request{target: wh + "/entities?lastOperationTimeFrom=9999-01-01"}, contains: append([]string{"'lastOperationTimeFrom'"}, outOfRange...)},
		{name: "entities, to year 1", req: request{target: wh + "/entities/counter?lastOperationTimeTo=0001-01-01"}, contains: outOfRange},
		{name: "purge, from 9999", req: request{method: "DELETE", target: wh + "/instances?createdTimeFrom=9999-01-01"}, contains: outOfRange},
		{name: "purge, from and to year 1", req: request{method: "DELETE", target: wh + "/instances?createdTimeFrom=0001-01-01&createdTimeTo=0001-01-01"}, contains: outOfRange},
		{name: "purge, to 9999", req: request{method: "DELETE", target: wh + "/instances?createdTimeFrom=2024-01-01&createdTimeTo=9999-12-31"}, contains: append([]string{"'createdTimeTo'"}, outOfRange...)},
	}
	for i := range cases {
		cases[i].code = 400
		cases[i].check = untouched
		cases[i].contains = append(cases[i].contains, `"ExceptionType"`)
	}
	runRoutes(t, cases)

	// The edges of the range are in it.
	runRoutes(t, []routeCase{
		{name: "list, the whole range", req: request{target: wh + "/instances?createdTimeFrom=1678-01-01&createdTimeTo=2261-12-31T23:59:59.999999Z"}, code: 200,
			check: func(t *testing.T, f *fakeBackend, w *httptest.ResponseRecorder) {
				if f.lastQuery.CreatedFrom.Year() != 1678 || f.lastQuery.CreatedTo.Year() != 2261 || !strings.Contains(w.Body.String(), "run1") {
					t.Errorf("query %+v, body %s", f.lastQuery, w.Body)
				}
			}},
		{name: "purge, the whole range", req: request{method: "DELETE", target: wh + "/instances?createdTimeFrom=1678-01-01&createdTimeTo=2261-12-31"}, code: 200,
			body: `{"instancesDeleted":4}`},
	})
}
